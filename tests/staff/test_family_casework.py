"""The coordinator's side of the family paths: moving an existing patient's message through its
states (decision 11) with the family's one PHI-free "answered" notice, and recording that a
family revoked the records-release authorization (decision 16), after which (as after expiry)
no more records are requested from the family's doctors.

Everything runs against the real database, outbox and SMTP delivery: nothing of ours is mocked.
"""

from __future__ import annotations

import html
import io
import logging
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.domain import messages, statuses
from intake.domain.reference import format_reference
from intake.extensions import db
from intake.models import (
    AuditEvent,
    Authorization,
    Document,
    FamilyMessage,
    InfoRequest,
    Notification,
    OutboxEvent,
    Referral,
    TimelineEvent,
    User,
)
from intake.services import auth, authorization, info_requests, notifications
from intake.services.referrals import UploadedFile, run_triage
from tests.families.family_data import (
    CHILD_DOB,
    CHILD_FAMILY,
    CHILD_GIVEN,
    FAMILY_PHI,
    PARENT_EMAIL,
    message,
    second_opinion,
)
from tests.i18n.catalogue import english_left, ensure_compiled
from tests.samples import tiny_pdf
from tests.stack import SmtpServer
from tests.staff.helpers import (
    PASSWORD,
    Account,
    audit_count,
    csrf_token,
    get_referral,
    info_request_of,
    make_referral,
    make_user,
    next_code,
    sign_in,
)

FATHER_EMAIL = "jorge.ramirez@example.net"
# What the family wrote, and its topic: never in the notice.
MESSAGE_WORDS = ["dexamethasone", "prescription", "medication", "medicación", "Friday"]
ANSWERED = notifications.FAMILY_MESSAGE_ANSWERED


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Account:
    account = make_user(app, "care-coord@program.test")
    sign_in(app, client, account)
    return account


# -- making cases -------------------------------------------------------------------------------


def _newest(app: Flask, kind: str) -> str:
    with app.app_context():
        row = db.session.execute(
            sa.select(Referral.id, Referral.reference)
            .where(Referral.kind == kind)
            .order_by(Referral.id.desc())
            .limit(1)
        ).one()
        run_triage(row.id)
        return str(row.reference)


def send_message(app: Flask, **overrides: Any) -> str:
    """A family's message through the public form, triaged (rule R0); its case reference."""
    response = app.test_client().post(
        "/message", data={"submission_id": str(uuid.uuid4()), **message(**overrides)}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return _newest(app, "existing_patient_message")


def child_case(app: Flask) -> str:
    """The child's existing case (a physician referral) that a message can be matched to."""
    return make_referral(
        app,
        patient_given_name=CHILD_GIVEN,
        patient_family_name=CHILD_FAMILY,
        patient_dob=CHILD_DOB,
    )


def matched_message(app: Flask, **overrides: Any) -> tuple[str, str]:
    """(message case, the child's case) matched by reference + date of birth."""
    case = child_case(app)
    reference = send_message(app, case_reference=format_reference(case), **overrides)
    assert the_message(app, reference).match_method == "reference"
    return reference, case


def second_opinion_case(app: Flask, **overrides: Any) -> str:
    """A family's second-opinion request with its signed authorization, triaged to review."""
    response = app.test_client().post(
        "/second-opinion",
        data={"submission_id": str(uuid.uuid4()), **second_opinion(**overrides)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    reference = _newest(app, "second_opinion")
    assert get_referral(app, reference).status == "under_review"
    return reference


# -- reading state ------------------------------------------------------------------------------


def the_message(app: Flask, reference: str) -> FamilyMessage:
    with app.app_context():
        row = db.session.scalar(
            sa.select(FamilyMessage)
            .join(Referral, Referral.id == FamilyMessage.referral_id)
            .where(Referral.reference == reference)
        )
        assert row is not None
        db.session.expunge(row)
        return row


def the_authorization(app: Flask, reference: str) -> Authorization:
    with app.app_context():
        row = db.session.scalar(
            sa.select(Authorization)
            .join(Referral, Referral.id == Authorization.referral_id)
            .where(Referral.reference == reference)
        )
        assert row is not None
        db.session.expunge(row)
        return row


def events(app: Flask, reference: str, action: str) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(TimelineEvent)
            .join(Referral, Referral.id == TimelineEvent.referral_id)
            .where(Referral.reference == reference, TimelineEvent.action == action)
            .order_by(TimelineEvent.id)
        )
        return [{"actor": e.actor, **(e.detail or {})} for e in rows]


def notices(app: Flask, reference: str, kind: str = ANSWERED) -> list[Notification]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                sa.select(Notification)
                .join(Referral, Referral.id == Notification.referral_id)
                .where(Referral.reference == reference, Notification.kind == kind)
            )
        )
        db.session.expunge_all()
        return rows


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def page(client: FlaskClient, reference: str) -> str:
    response = client.get(f"/coordinator/referrals/{reference}")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def move(client: FlaskClient, reference: str, target: str, **extra: str) -> Any:
    return client.post(
        f"/coordinator/referrals/{reference}/message-state", data={"target": target, **extra}
    )


def revoke(client: FlaskClient, reference: str, **data: str) -> Any:
    return client.post(f"/coordinator/referrals/{reference}/revoke-authorization", data=data)


def ask_doctors(client: FlaskClient, reference: str, audience: str = "referrer") -> Any:
    return client.post(
        f"/coordinator/referrals/{reference}/request-info",
        data={"items": ["pathology_report"], "audience": audience},
    )


def program_today(app: Flask) -> date:
    with app.app_context():
        return authorization.program_today()


# -- message states -----------------------------------------------------------------------------

# How to bring a new message to each state through the workspace itself.
PATH_TO = {
    messages.NEW: [],
    messages.IN_PROGRESS: [messages.IN_PROGRESS],
    messages.ANSWERED: [messages.ANSWERED],
    messages.CLOSED: [messages.CLOSED],
}
ALLOWED = [(s, t) for s, nexts in messages.TRANSITIONS.items() for t in nexts]


def test_the_transition_table_has_the_documented_moves() -> None:
    assert sorted(ALLOWED) == sorted(
        [
            ("new", "in_progress"),
            ("new", "answered"),
            ("new", "closed"),
            ("in_progress", "answered"),
            ("in_progress", "closed"),
            ("answered", "in_progress"),
            ("answered", "closed"),
        ]
    )


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_each_allowed_move_is_saved_audited_and_on_both_timelines(
    app: Flask, client: FlaskClient, coordinator: Account, current: str, target: str
) -> None:
    reference, case = matched_message(app)
    for step in PATH_TO[current]:
        assert move(client, reference, step).status_code == 303
    before = len(events(app, reference, "message_state_changed"))

    response = move(client, reference, target)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/coordinator/referrals/{reference}")
    assert the_message(app, reference).state == target
    label = str(messages.STATE_LABELS[target])
    shown = page(client, reference)
    assert f'<span id="message-state">{label}</span>' in shown
    assert f"Message marked “{label}”." in shown

    change = {"message": reference, "from_state": current, "to_state": target}
    on_message = events(app, reference, "message_state_changed")
    assert len(on_message) == before + 1
    assert on_message[-1] == {"actor": coordinator.email, **change}
    # The child's own case carries the step too, and its page lists the message's state.
    assert events(app, case, "message_state_changed")[-1] == {"actor": coordinator.email, **change}
    child_page = page(client, case)
    assert "Messages from the family" in child_page
    assert f"· {label} ·" in child_page
    assert (
        audit_count(
            app,
            action="U",
            resource_type="family_message",
            resource_id=reference,  # the case's reference, as on its other rows
            outcome="success",
            detail=f"state:{target}",
            user_id=coordinator.id,
        )
        == 1
    )
    # Closing the message also closes its case, so it leaves the open queue.
    message_case = get_referral(app, reference)
    assert (message_case.status == "closed") == (target == messages.CLOSED)
    # Decision 4: answering is contact with the family; "in progress" or closing is not.
    answered = messages.ANSWERED in (*PATH_TO[current], target)
    assert (message_case.acknowledged_at is not None) == answered


@pytest.mark.parametrize(
    ("current", "target", "says"),
    [
        ("new", "new", "The message is already 'new'."),
        ("in_progress", "new", "A message in 'in_progress' cannot move to 'new'"),
        ("answered", "new", "A message in 'answered' cannot move to 'new'"),
        ("closed", "in_progress", "A closed message is final and cannot move to 'in_progress'."),
        ("closed", "answered", "A closed message is final and cannot move to 'answered'."),
    ],
)
def test_a_disallowed_move_is_refused_clearly_and_changes_nothing(
    app: Flask, client: FlaskClient, coordinator: Account, current: str, target: str, says: str
) -> None:
    reference, case = matched_message(app)
    for step in PATH_TO[current]:
        assert move(client, reference, step).status_code == 303
    timeline = (
        len(events(app, reference, "message_state_changed")),
        len(events(app, case, "message_state_changed")),
    )
    status = get_referral(app, reference).status
    sent = len(notices(app, reference))
    outbox = count(app, OutboxEvent)

    response = move(client, reference, target)
    assert response.status_code == 409
    body = html.unescape(response.get_data(as_text=True))
    assert says in body
    assert 'id="action-error"' in body
    assert the_message(app, reference).state == current
    assert get_referral(app, reference).status == status
    assert (
        len(events(app, reference, "message_state_changed")),
        len(events(app, case, "message_state_changed")),
    ) == timeline
    assert len(notices(app, reference)) == sent
    assert count(app, OutboxEvent) == outbox
    code = "same_state" if current == target else "terminal" if current == "closed" else ""
    code = code or "not_allowed"
    assert (
        audit_count(
            app,
            action="U",
            resource_type="family_message",
            resource_id=reference,
            outcome="failure",
            detail=f"state:{code}",
        )
        == 1
    )


def test_an_unknown_state_is_a_form_error(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = send_message(app)
    response = move(client, reference, "deleted")
    assert response.status_code == 400
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert the_message(app, reference).state == "new"


def test_a_message_case_does_not_take_referral_statuses(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    """Decision 11: the message's own states drive its case; the (hidden) referral status form
    cannot put the two out of step."""
    reference = send_message(app)
    status = get_referral(app, reference).status
    response = client.post(
        f"/coordinator/referrals/{reference}/status", data={"target": "withdrawn"}
    )
    assert response.status_code == 409
    assert "use 'Save message state'" in html.unescape(response.get_data(as_text=True))
    assert get_referral(app, reference).status == status
    assert the_message(app, reference).state == "new"
    assert listed(client, message="new") == {reference}


def test_a_message_case_is_not_sent_a_request_for_information(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    """Decision 11: "Request more information" would drive the message's case through
    needs_info and closed_no_response; it is neither offered nor accepted."""
    reference, case = matched_message(app)
    assert "Request more information" not in page(client, reference)
    assert "Request more information" in page(client, case)
    status = get_referral(app, reference).status

    refused = ask_doctors(client, reference)
    assert refused.status_code == 409
    body = html.unescape(refused.get_data(as_text=True))
    assert "A family's message is answered by the care team" in body
    assert 'id="action-error"' in body
    # Even with nothing picked, the answer is the refusal, not a form error.
    assert client.post(f"/coordinator/referrals/{reference}/request-info").status_code == 409
    assert get_referral(app, reference).status == status
    assert the_message(app, reference).state == "new"
    assert count(app, InfoRequest) == 0
    assert events(app, reference, "info_requested") == []
    assert audit_count(app, resource_id=reference, detail="status:family_message") == 2
    # The service refuses too, whoever calls it.
    with app.app_context():
        message_case = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        user = db.session.get(User, coordinator.id)
        assert message_case is not None and user is not None
        with pytest.raises(statuses.TransitionError, match="answered by the care team"):
            info_requests.request_info(message_case, user, ["pathology_report"])
        db.session.rollback()
    assert count(app, InfoRequest) == 0


def test_the_page_offers_only_the_moves_the_table_allows(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = send_message(app)

    def offered() -> list[str]:
        form = re.search(
            r'<select[^>]*name="target"[^>]*>(.*?)</select>', page(client, reference), re.S
        )
        assert form is not None
        return re.findall(r'<option[^>]*value="([^"]+)"', form.group(1))

    assert offered() == ["in_progress", "answered", "closed"]
    move(client, reference, "answered")
    assert offered() == ["closed", "in_progress"]
    move(client, reference, "closed")
    assert "This message is closed." in page(client, reference)
    assert "Save message state" not in page(client, reference)


def test_message_states_need_a_signed_in_care_team_member_with_the_case_in_scope(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = send_message(app)
    referral = make_referral(app)

    anonymous = app.test_client().post(
        f"/coordinator/referrals/{reference}/message-state", data={"target": "answered"}
    )
    assert anonymous.status_code == 302
    assert "/coordinator/login" in anonymous.headers["Location"]

    reviewer = make_user(app, "reviewer@program.test", role="reviewer")
    as_reviewer = app.test_client()
    sign_in(app, as_reviewer, reviewer)
    assert move(as_reviewer, reference, "answered").status_code == 403

    outsider = make_user(app, "physician-queue@program.test", queues=["physician_referral"])
    as_outsider = app.test_client()
    sign_in(app, as_outsider, outsider)
    assert move(as_outsider, reference, "answered").status_code == 404
    assert audit_count(app, action="denied", resource_type="referral", user_id=outsider.id) == 1

    # A case that is not a message has no message state.
    assert move(client, referral, "answered").status_code == 404
    assert audit_count(app, action="denied", resource_type="family_message") == 1

    assert the_message(app, reference).state == "new"
    assert notices(app, reference) == []
    assert audit_count(app, resource_type="family_message", outcome="success") == 0

    # An admin sees every queue.
    admin = make_user(app, "care-admin@program.test", role="admin")
    as_admin = app.test_client()
    sign_in(app, as_admin, admin)
    assert move(as_admin, reference, "in_progress").status_code == 303
    assert the_message(app, reference).state == "in_progress"


def test_a_matched_case_outside_the_users_queues_is_not_named(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference, case = matched_message(app)
    assert f'href="/coordinator/referrals/{case}"' in page(client, reference)

    care_team_only = make_user(
        app, "messages-only@program.test", queues=["existing_patient_message"]
    )
    narrow = app.test_client()
    sign_in(app, narrow, care_team_only)
    shown = page(narrow, reference)
    assert "Matched to a case outside your queues." in shown
    # (The reference the family typed stays among their answers; no link or match is shown.)
    assert f'href="/coordinator/referrals/{case}"' not in shown
    assert "Matched to case" not in shown
    assert narrow.get(f"/coordinator/referrals/{case}").status_code == 404
    # The message itself is theirs to move.
    assert move(narrow, reference, "in_progress").status_code == 303


def csrf_sign_in(app: Flask, client: FlaskClient, account: Account) -> None:
    token = csrf_token(client.get("/coordinator/login").get_data(as_text=True))
    response = client.post(
        "/coordinator/login",
        data={"email": account.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    token = csrf_token(client.get("/coordinator/login/code").get_data(as_text=True))
    response = client.post(
        "/coordinator/login/code", data={"code": next_code(app, account), "csrf_token": token}
    )
    assert response.status_code == 302


def test_message_state_and_revocation_need_a_csrf_token(
    app_config: dict[str, Any], app: Flask
) -> None:
    message_case = send_message(app)
    family_case = second_opinion_case(app)
    account = make_user(app, "csrf-care@program.test")
    client = create_app({**app_config, "WTF_CSRF_ENABLED": True}).test_client()
    csrf_sign_in(app, client, account)
    today = program_today(app).isoformat()

    assert move(client, message_case, "answered").status_code == 400
    assert revoke(client, family_case, received_on=today, method="written").status_code == 400
    assert the_message(app, message_case).state == "new"
    assert notices(app, message_case) == []
    assert the_authorization(app, family_case).revoked_at is None

    token = csrf_token(page(client, message_case))
    assert move(client, message_case, "answered", csrf_token=token).status_code == 303
    assert the_message(app, message_case).state == "answered"
    token = csrf_token(page(client, family_case))
    accepted = revoke(client, family_case, received_on=today, method="written", csrf_token=token)
    assert accepted.status_code == 303
    assert the_authorization(app, family_case).revoked_at is not None


# -- the family's "answered" notice -------------------------------------------------------------


def sent_with_id(smtp: SmtpServer, message_id: str) -> list[Any]:
    # The header may come back folded (a leading space): compare the id itself.
    return [m for m in smtp.messages if str(m["Message-ID"]).strip() == message_id]


def deliver(app: Flask, smtp: SmtpServer, notification: Notification) -> Any:
    """Send the notice through the real delivery path to the test SMTP server."""
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    with app.app_context():
        assert notifications.deliver(notification.id) == "sent"
    (email,) = sent_with_id(smtp, notification.message_id)
    return email


def test_answered_sends_one_phi_free_notice_in_the_family_language(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer
) -> None:
    ensure_compiled()
    reference, _case = matched_message(app, preferred_language="es")
    assert move(client, reference, "in_progress").status_code == 303
    assert notices(app, reference) == []  # only "answered" tells the family

    assert move(client, reference, "answered").status_code == 303
    (notice,) = notices(app, reference)
    assert notice.recipients == [FATHER_EMAIL]
    assert notice.language == "es"
    assert notice.status == "pending"
    with app.app_context():
        queued = db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.task_name == "notify.send")
        ).all()
        assert [notice.id] == [e.args[0] for e in queued if e.args[0] == notice.id]

    # The family writes back, the message is reopened and answered again: still one notice.
    assert move(client, reference, "in_progress").status_code == 303
    assert move(client, reference, "answered").status_code == 303
    assert [n.id for n in notices(app, reference)] == [notice.id]

    email = deliver(app, smtp, notice)
    assert email["To"] == FATHER_EMAIL
    subject = str(email["Subject"])
    text = email.get_body(("plain",)).get_content()
    body_html = email.get_body(("html",)).get_content()
    assert subject == f"Su equipo de atención respondió a su mensaje: {format_reference(reference)}"
    assert "El equipo de atención de su hijo o hija respondió a su mensaje." in text
    assert "http://intake.test/status" in text
    program = app.config["PROGRAM_NAME"]
    assert english_left(f"{subject} {text}", allowed=(program,)) == []
    for value in [*FAMILY_PHI, *MESSAGE_WORDS, "Jorge", "Sofia", CHILD_DOB]:
        for part in (subject, text, body_html):
            assert value.lower() not in part.lower(), value
    # Delivered once; delivering again is a no-op.
    with app.app_context():
        assert notifications.deliver(notice.id) == "skipped"
    assert len(sent_with_id(smtp, notice.message_id)) == 1
    assert [e["notification"] for e in events(app, reference, "email_sent")].count(ANSWERED) == 1


def test_an_english_family_gets_the_notice_in_english(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer
) -> None:
    reference = send_message(app, preferred_language="en")
    assert move(client, reference, "answered").status_code == 303
    (notice,) = notices(app, reference)
    assert notice.language == "en"
    email = deliver(app, smtp, notice)
    assert str(email["Subject"]) == (
        f"Your care team answered your message: {format_reference(reference)}"
    )
    assert (
        "Your child's care team has answered your message."
        in email.get_body(("plain",)).get_content()
    )


def test_without_email_consent_answering_sends_nothing(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = send_message(app, family_email_consent=None)
    assert move(client, reference, "answered").status_code == 303
    assert the_message(app, reference).state == "answered"
    assert notices(app, reference) == []


def test_closing_without_an_answer_sends_nothing(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = send_message(app)
    assert move(client, reference, "closed").status_code == 303
    assert notices(app, reference) == []
    assert events(app, reference, "status_changed")[-1]["reason"] == "message_closed"


# -- revocation ---------------------------------------------------------------------------------


def _revocation_form(body: str) -> str:
    found = re.search(r"<form[^>]*revoke-authorization.*?</form>", body, re.S)
    assert found, "the revocation form is shown again"
    return found.group(0)


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        ({"method": "email"}, 400, "Enter the date the revocation reached us."),
        ({"received_on": "", "method": "email"}, 400, "Enter the date the revocation reached us."),
        ({"received_on": "25/11/2026", "method": "email"}, 400, "Not a valid date value."),
        ({"received_on": "TODAY"}, 400, "Choose how the family revoked it."),
        ({"received_on": "TODAY", "method": "fax"}, 400, "Not a valid choice"),
        ({"received_on": "TOMORROW", "method": "email"}, 409, "cannot be in the future"),
        ({"received_on": "LAST_YEAR", "method": "email"}, 409, "before the authorization"),
    ],
)
def test_a_bad_revocation_keeps_the_input_and_stores_nothing(
    app: Flask,
    client: FlaskClient,
    coordinator: Account,
    data: dict[str, str],
    status: int,
    says: str,
) -> None:
    reference = second_opinion_case(app)
    today = program_today(app)
    dates = {
        "TODAY": today,
        "TOMORROW": today + timedelta(days=1),
        "LAST_YEAR": today - timedelta(days=365),
    }
    data = {k: dates[v].isoformat() if v in dates else v for k, v in data.items()}
    response = revoke(client, reference, **data)
    assert response.status_code == status
    body = html.unescape(response.get_data(as_text=True))
    assert says in body
    form = _revocation_form(body)
    if data.get("received_on"):
        assert f'value="{data["received_on"]}"' in form
    if data.get("method") in messages.REVOCATION_METHODS:
        (radio,) = re.findall(rf'<input[^>]*value="{data["method"]}"[^>]*>', form)
        assert " checked " in radio, radio
    signed = the_authorization(app, reference)
    assert signed.revoked_at is None and signed.revoked_by is None
    assert signed.revocation_method is None and signed.revocation_received_on is None
    assert events(app, reference, "authorization_revoked") == []
    assert audit_count(app, resource_type="records_authorization", outcome="success") == 0
    assert audit_count(app, resource_type="records_authorization", outcome="failure") == (
        1 if status == 409 else 0
    )
    # Requests to the doctors are still possible.
    assert ask_doctors(client, reference).status_code == 303


def test_revocation_is_recorded_audited_shown_and_final(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = second_opinion_case(app)
    received = program_today(app)
    response = revoke(client, reference, received_on=received.isoformat(), method="verbal")
    assert response.status_code == 303
    signed = the_authorization(app, reference)
    assert signed.revoked_at is not None
    assert signed.revoked_by == coordinator.id
    assert signed.revocation_method == "verbal"
    assert signed.revocation_received_on == received
    (event,) = events(app, reference, "authorization_revoked")
    assert event == {
        "actor": coordinator.email,
        "method": "verbal",
        "received_on": received.isoformat(),
        "links_closed": 0,
    }
    with app.app_context():
        row = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.resource_type == "records_authorization")
        ).one()
        assert (row.action, row.outcome, row.user_id) == ("U", "success", coordinator.id)
        assert row.resource_id == reference  # found with the case's other rows
        assert row.detail == "revoked:verbal"
        for value in FAMILY_PHI:
            assert value not in (row.detail or ""), value

    shown = page(client, reference)
    assert "No more records will be requested from the family's doctors" in shown
    assert 'id="authorization-revoked"' in shown
    assert f"received {received.isoformat()}" in shown
    assert f"Recorded by {coordinator.email}" in shown
    assert '<strong id="authorization-state">Revoked</strong>' in shown
    assert "Record a revocation" not in shown  # final: the form is gone

    again = revoke(client, reference, received_on=received.isoformat(), method="written")
    assert again.status_code == 409
    assert "already revoked" in again.get_data(as_text=True)
    assert the_authorization(app, reference).revocation_method == "verbal"
    assert len(events(app, reference, "authorization_revoked")) == 1
    assert (
        audit_count(app, resource_type="records_authorization", detail="revoke:already_revoked")
        == 1
    )


def test_a_case_without_an_authorization_has_nothing_to_revoke(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app)
    assert "Record a revocation" not in page(client, reference)
    response = revoke(
        client, reference, received_on=program_today(app).isoformat(), method="written"
    )
    assert response.status_code == 409
    assert "no records-release authorization" in response.get_data(as_text=True)
    assert events(app, reference, "authorization_revoked") == []


def test_revocation_needs_a_signed_in_care_team_member_with_the_case_in_scope(
    app: Flask, coordinator: Account
) -> None:
    reference = second_opinion_case(app)
    data = {"received_on": program_today(app).isoformat(), "method": "written"}
    anonymous = revoke(app.test_client(), reference, **data)
    assert anonymous.status_code == 302 and "/coordinator/login" in anonymous.headers["Location"]

    reviewer = make_user(app, "rev-reviewer@program.test", role="reviewer")
    as_reviewer = app.test_client()
    sign_in(app, as_reviewer, reviewer)
    assert revoke(as_reviewer, reference, **data).status_code == 403

    outsider = make_user(app, "rev-outsider@program.test", queues=["physician_referral"])
    as_outsider = app.test_client()
    sign_in(app, as_outsider, outsider)
    assert revoke(as_outsider, reference, **data).status_code == 404
    assert audit_count(app, action="denied", resource_type="referral", user_id=outsider.id) == 1

    assert the_authorization(app, reference).revoked_at is None
    assert events(app, reference, "authorization_revoked") == []


STATE_IN_EFFECT = '<strong id="authorization-state">In effect</strong>'
STATE_EXPIRED = (
    '<strong id="authorization-state">Expired: no more records can be requested from the '
    "family's doctors</strong>"
)
REVOKED_SAYS = "The family revoked the records-release authorization (received "
EXPIRED_SAYS = "The records-release authorization expired on "


def test_after_revocation_the_doctors_are_not_asked_for_records(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = second_opinion_case(app)
    received = program_today(app) - timedelta(days=1)
    with app.app_context():
        # Signed a few days ago, so a revocation received yesterday is after the signing.
        db.session.execute(
            sa.update(Authorization).values(signed_at=auth.now() - timedelta(days=3))
        )
        db.session.commit()
    assert (
        revoke(client, reference, received_on=received.isoformat(), method="email").status_code
        == 303
    )
    requests = count(app, InfoRequest)

    refused = ask_doctors(client, reference)
    assert refused.status_code == 409
    body = html.unescape(refused.get_data(as_text=True))
    assert f"{REVOKED_SAYS}{received.isoformat()}): no more records can be requested" in body
    assert 'id="action-error"' in body
    assert get_referral(app, reference).status == "under_review"
    assert count(app, InfoRequest) == requests
    with app.app_context():
        assert not db.session.scalars(
            sa.select(Notification.kind).where(Notification.kind.like("info_request.%"))
        ).all()
    assert audit_count(app, resource_type="referral", detail="status:authorization_revoked") == 1

    # The family themselves can still be asked to send what they have.
    assert ask_doctors(client, reference, audience="family").status_code == 303
    assert get_referral(app, reference).status == "needs_info"


def test_revocation_closes_open_links_to_the_doctors_and_resumes_review(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    waiting = get_referral(app, reference)
    assert waiting.status == "needs_info" and waiting.clock_paused_at is not None
    today = program_today(app).isoformat()

    assert revoke(client, reference, received_on=today, method="written").status_code == 303
    with app.app_context():
        link = db.session.scalars(sa.select(InfoRequest)).one()
        assert link.closed_at is not None and link.close_reason == "auth_revoked"
    resumed = get_referral(app, reference)
    assert resumed.status == "under_review" and resumed.clock_paused_at is None
    assert events(app, reference, "authorization_revoked")[0]["links_closed"] == 1
    assert events(app, reference, "status_changed")[-1]["reason"] == "auth_revoked"


def set_authorization(app: Flask, reference: str, **values: Any) -> None:
    """Change the case's authorization row directly (dates a test needs in the past)."""
    with app.app_context():
        db.session.execute(
            sa.update(Authorization)
            .where(
                Authorization.referral_id
                == sa.select(Referral.id).where(Referral.reference == reference).scalar_subquery()
            )
            .values(**values)
        )
        db.session.commit()


def _expire(app: Flask, reference: str, on: date) -> None:
    set_authorization(app, reference, expires_on=on)


def test_an_expired_authorization_also_stops_requests_to_the_doctors(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = second_opinion_case(app)
    expired_on = program_today(app) - timedelta(days=1)
    _expire(app, reference, expired_on)

    refused = ask_doctors(client, reference)
    assert refused.status_code == 409
    body = html.unescape(refused.get_data(as_text=True))
    assert f"{EXPIRED_SAYS}{expired_on.isoformat()}: no more records can be requested" in body
    assert count(app, InfoRequest) == 0
    assert get_referral(app, reference).status == "under_review"
    assert STATE_EXPIRED in page(client, reference)
    # The family can still be asked directly.
    assert ask_doctors(client, reference, audience="family").status_code == 303


def test_an_authorization_is_in_effect_through_its_expiry_date_in_program_time(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """9 pm in New York is already tomorrow in UTC: the program's date decides."""
    evening = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 25 Nov, 21:00 in New York
    monkeypatch.setattr(auth, "_clock", lambda: evening)
    client = app.test_client()
    sign_in(app, client, make_user(app, "evening-coord@program.test"))
    reference = second_opinion_case(app)
    _expire(app, reference, date(2026, 11, 25))
    assert STATE_IN_EFFECT in page(client, reference)
    assert ask_doctors(client, reference).status_code == 303

    other = second_opinion_case(app, patient_given_name="Lucía", patient_dob="2014-02-03")
    _expire(app, other, date(2026, 11, 24))
    assert ask_doctors(client, other).status_code == 409


def test_after_expiry_open_links_to_the_doctors_get_no_reminders_and_close(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    asks_family = second_opinion_case(app, patient_given_name="Lucía", patient_dob="2014-02-03")
    assert ask_doctors(client, asks_family, audience="family").status_code == 303
    assert STATE_IN_EFFECT in page(client, reference)
    yesterday = program_today(app) - timedelta(days=1)
    _expire(app, reference, yesterday)
    _expire(app, asks_family, yesterday)
    with app.app_context():
        created = db.session.scalar(sa.select(sa.func.max(InfoRequest.created_at)))
        assert created is not None
        later = created + timedelta(hours=app.config["INFO_REMINDER_HOURS"])
        # Only the family, who may always be asked, is reminded.
        assert info_requests.sweep(later) == {"reminders": 1, "closed": 0}
        links = {
            r.audience: r
            for r in db.session.scalars(sa.select(InfoRequest).order_by(InfoRequest.id))
        }
        assert links["referrer"].close_reason == "authorization_expired"
        assert links["referrer"].reminders_sent == 0
        assert links["family"].closed_at is None and links["family"].reminders_sent == 1
        reminders = db.session.scalars(
            sa.select(Notification.recipients).where(Notification.kind.like("info_reminder.%"))
        ).all()
        assert reminders == [[PARENT_EMAIL]]
        assert info_requests.sweep(later) == {"reminders": 0, "closed": 0}  # idempotent
    back = get_referral(app, reference)
    assert back.status == "under_review" and back.clock_paused_at is None
    assert events(app, reference, "status_changed")[-1] == {
        "actor": "system",
        "reason": "authorization_expired",
    }
    assert get_referral(app, asks_family).status == "needs_info"


# -- open upload links after the authorization ends --------------------------------------------

CLOSED_SAYS = "This link is closed"


def _end_authorization(app: Flask, reference: str, how: str) -> None:
    """Expired (the real gap: the sweep has not run yet) or revoked without the links being
    closed (belt and braces: whatever records a revocation, the link checks it itself)."""
    if how == "expired":
        _expire(app, reference, program_today(app) - timedelta(days=1))
        return
    with app.app_context():
        db.session.execute(
            sa.update(Authorization).values(
                revoked_at=auth.now(), revocation_received_on=authorization.program_today()
            )
        )
        db.session.commit()


def _open_link(app: Flask, reference: str) -> tuple[InfoRequest, str]:
    link = info_request_of(app, reference)
    with app.app_context():
        return link, info_requests.token_for(link)


def _the_link(app: Flask, link_id: int) -> InfoRequest:
    with app.app_context():
        link = db.session.get(InfoRequest, link_id)
        assert link is not None
        db.session.expunge(link)
        return link


def _post_pdf(client: FlaskClient, slot: str = "other") -> Any:
    """A doctor's page offers the clinical slots ("other"), a family's its own ("records")."""
    return client.post(
        "/upload",
        data={f"doc_{slot}": (io.BytesIO(tiny_pdf()), "pathology.pdf")},
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_an_open_link_to_the_doctors_closes_when_the_authorization_ends(
    app: Flask, client: FlaskClient, coordinator: Account, how: str
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    link, token = _open_link(app, reference)
    doctor = app.test_client()
    assert doctor.get(f"/upload/{token}").status_code == 303
    assert doctor.get("/upload").status_code == 200
    documents = count(app, Document)

    _end_authorization(app, reference, how)
    # A mail scanner opening the link changes nothing; the page says the link is closed.
    shown = app.test_client().get(f"/upload/{token}")
    assert shown.status_code == 410 and CLOSED_SAYS in shown.get_data(as_text=True)
    page_now = doctor.get("/upload")
    assert page_now.status_code == 410
    assert CLOSED_SAYS in page_now.get_data(as_text=True)
    assert app.config["PROGRAM_PHONE"] in page_now.get_data(as_text=True)
    assert _the_link(app, link.id).closed_at is None

    # The page the doctor opened before: an upload stores nothing and closes the link at once
    # (as the sweep would).
    refused = _post_pdf(doctor)
    assert refused.status_code == 410
    assert CLOSED_SAYS in refused.get_data(as_text=True)
    assert count(app, Document) == documents
    closed = _the_link(app, link.id)
    assert closed.closed_at is not None and closed.spent_at is None
    assert closed.close_reason == f"authorization_{how}"
    back = get_referral(app, reference)
    assert back.status == "under_review" and back.clock_paused_at is None
    assert events(app, reference, "info_received") == []
    assert audit_count(app, outcome="denied", detail=f"upload_link:authorization_{how}") == 1
    # Closed for good: the ordinary "cannot be used" page from now on.
    again = app.test_client().get(f"/upload/{token}")
    assert again.status_code == 410 and "This link cannot be used" in again.get_data(as_text=True)


def test_an_upload_racing_the_end_of_the_authorization_stores_nothing(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    """The page was checked before the authorization ended; the service checks again under
    the link's lock."""
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    link, _token = _open_link(app, reference)
    _end_authorization(app, reference, "expired")
    upload_dir = Path(app.config["UPLOAD_DIR"])
    blobs = sorted(upload_dir.rglob("*")) if upload_dir.exists() else []
    with app.app_context():
        files = [UploadedFile("other", "pathology.pdf", "application/pdf", tiny_pdf())]
        with pytest.raises(info_requests.LinkClosed) as refused:
            info_requests.receive_upload(link.id, files)
        assert refused.value.reason == "authorization_expired"
    assert count(app, Document) == 0
    assert (sorted(upload_dir.rglob("*")) if upload_dir.exists() else []) == blobs
    assert _the_link(app, link.id).close_reason == "authorization_expired"


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_a_link_to_the_family_keeps_working_after_the_authorization_ends(
    app: Flask, client: FlaskClient, coordinator: Account, how: str
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference, audience="family").status_code == 303
    link, token = _open_link(app, reference)
    _end_authorization(app, reference, how)
    family = app.test_client()
    assert family.get(f"/upload/{token}").status_code == 303
    assert family.get("/upload").status_code == 200
    done = _post_pdf(family, "records")
    assert done.status_code == 303 and done.headers["Location"] == "/upload/thanks"
    assert _the_link(app, link.id).spent_at is not None
    assert count(app, Document) >= 1
    assert get_referral(app, reference).status == "under_review"


def test_the_closed_link_page_is_in_spanish(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    ensure_compiled()
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    _link, token = _open_link(app, reference)
    _end_authorization(app, reference, "expired")
    shown = app.test_client().get(f"/upload/{token}", headers={"Accept-Language": "es"})
    assert shown.status_code == 410
    text = html.unescape(shown.get_data(as_text=True))
    assert "Este enlace está cerrado" in text
    assert english_left(text, allowed=(app.config["PROGRAM_PHONE"],)) == []


def test_physician_referrals_are_not_affected(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app)
    assert ask_doctors(client, reference).status_code == 303


# -- request emails not yet sent when the authorization ends ------------------------------------


def link_emails(app: Flask, reference: str) -> dict[str, Notification]:
    """The case's request and reminder emails by kind prefix and number: `info_request`,
    `info_reminder.1`, …"""
    with app.app_context():
        rows = db.session.scalars(
            sa.select(Notification)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.reference == reference, Notification.kind.like("info_%"))
        ).all()
        db.session.expunge_all()
    named = {}
    for row in rows:
        prefix, _link, *n = row.kind.split(".")
        named[".".join([prefix, *n])] = row
    return named


def deliver_now(app: Flask, smtp: SmtpServer, notification: Notification) -> str:
    """The worker's delivery of one email to the test SMTP server; its outcome."""
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    with app.app_context():
        return notifications.deliver(notification.id)


def status_of(app: Flask, notification: Notification) -> str:
    with app.app_context():
        row = db.session.get(Notification, notification.id)
        assert row is not None
        return row.status


def queue_reminder(app: Flask, reference: str) -> Notification:
    """Run the beat's sweep once a reminder is due; the reminder it queued."""
    with app.app_context():
        created = db.session.scalar(sa.select(sa.func.max(InfoRequest.created_at)))
        assert created is not None
        later = created + timedelta(hours=app.config["INFO_REMINDER_HOURS"])
        assert info_requests.sweep(later)["reminders"] >= 1
    return link_emails(app, reference)["info_reminder.1"]


@pytest.mark.parametrize("waiting", ["pending", "retry"])
def test_revocation_cancels_the_request_email_not_yet_sent_to_the_doctors(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer, waiting: str
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    request = link_emails(app, reference)["info_request"]
    if waiting == "retry":
        # An earlier attempt met a busy SMTP server and the email waits for its next try.
        with app.app_context():
            db.session.execute(
                sa.update(Notification)
                .where(Notification.id == request.id)
                .values(status="retry", attempts=1, next_attempt_at=auth.now())
            )
            db.session.commit()

    today = program_today(app).isoformat()
    assert revoke(client, reference, received_on=today, method="written").status_code == 303
    # Cancelled with the link, by the revocation itself.
    assert status_of(app, request) == "cancelled"
    assert events(app, reference, "email_cancelled") == [
        {"actor": "system", "notification": request.kind, "reason": "auth_revoked"}
    ]
    # The worker's task, and its redelivery, send nothing.
    assert deliver_now(app, smtp, request) == "skipped"
    assert deliver_now(app, smtp, request) == "skipped"
    assert smtp.messages == []
    assert status_of(app, request) == "cancelled"
    assert events(app, reference, "email_sent") == []


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_a_request_email_is_checked_again_when_it_is_sent(
    app: Flask,
    client: FlaskClient,
    coordinator: Account,
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """The authorization ended but nothing closed the link yet (the sweep has not run, or the
    revocation was recorded some other way): the worker checks before sending."""
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    request = link_emails(app, reference)["info_request"]
    _end_authorization(app, reference, how)

    # Alembic's logging setup (the test database's migrations) disables existing loggers.
    monkeypatch.setattr(logging.getLogger("intake.notifications"), "disabled", False)
    caplog.set_level("INFO", logger="intake.notifications")
    assert deliver_now(app, smtp, request) == "cancelled"
    assert smtp.messages == []
    assert status_of(app, request) == "cancelled"
    assert events(app, reference, "email_cancelled") == [
        {"actor": "system", "notification": request.kind, "reason": f"authorization_{how}"}
    ]
    (line,) = [r.getMessage() for r in caplog.records if "notification_cancelled" in r.getMessage()]
    assert request.id in line
    for value in [*FAMILY_PHI, PARENT_EMAIL, *request.recipients, reference]:
        assert value.lower() not in line.lower(), value

    # Redelivered: nothing is sent and nothing more is recorded.
    assert deliver_now(app, smtp, request) == "skipped"
    assert smtp.messages == []
    assert len(events(app, reference, "email_cancelled")) == 1
    assert events(app, reference, "email_sent") == []


@pytest.mark.parametrize("sweep_first", [True, False], ids=["sweep-first", "worker-first"])
def test_a_queued_reminder_to_the_doctors_is_not_sent_after_expiry(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer, sweep_first: bool
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference).status_code == 303
    request = link_emails(app, reference)["info_request"]
    assert deliver_now(app, smtp, request) == "sent"
    reminder = queue_reminder(app, reference)
    assert status_of(app, reminder) == "pending"

    _expire(app, reference, program_today(app) - timedelta(days=1))
    if sweep_first:
        # The sweep closes the link and cancels its reminder in the same transaction.
        with app.app_context():
            info_requests.sweep()
        assert status_of(app, reminder) == "cancelled"
        assert deliver_now(app, smtp, reminder) == "skipped"
    else:
        assert deliver_now(app, smtp, reminder) == "cancelled"
    assert deliver_now(app, smtp, reminder) == "skipped"
    assert [str(m["Message-ID"]).strip() for m in smtp.messages] == [request.message_id]
    assert status_of(app, reminder) == "cancelled"
    assert events(app, reference, "email_cancelled") == [
        {"actor": "system", "notification": reminder.kind, "reason": "authorization_expired"}
    ]


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_the_familys_request_email_still_goes_out_after_the_authorization_ends(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer, how: str
) -> None:
    ensure_compiled()
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference, audience="family").status_code == 303
    request = link_emails(app, reference)["info_request"]
    if how == "revoked":
        today = program_today(app).isoformat()
        assert revoke(client, reference, received_on=today, method="email").status_code == 303
    else:
        _expire(app, reference, program_today(app) - timedelta(days=1))
    assert status_of(app, request) == "pending"

    assert deliver_now(app, smtp, request) == "sent"
    (email,) = smtp.messages
    assert email["To"] == PARENT_EMAIL
    assert str(email["Subject"]).startswith("Necesitamos más información")
    assert deliver_now(app, smtp, request) == "skipped"
    assert len(smtp.messages) == 1
    assert events(app, reference, "email_cancelled") == []
    # And so does the family's reminder.
    reminder = queue_reminder(app, reference)
    assert deliver_now(app, smtp, reminder) == "sent"
    assert len(smtp.messages) == 2


def test_a_reminder_for_a_link_already_used_is_not_sent(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer
) -> None:
    reference = second_opinion_case(app)
    assert ask_doctors(client, reference, audience="family").status_code == 303
    request = link_emails(app, reference)["info_request"]
    reminder = queue_reminder(app, reference)
    link, _token = _open_link(app, reference)
    with app.app_context():
        files = [UploadedFile("other", "pathology.pdf", "application/pdf", tiny_pdf())]
        info_requests.receive_upload(link.id, files)
    assert status_of(app, reminder) == "cancelled"
    assert deliver_now(app, smtp, reminder) == "skipped"
    assert smtp.messages == []
    # The request email still waiting goes with it.
    assert status_of(app, request) == "cancelled"
    assert events(app, reference, "email_cancelled") == [
        {"actor": "system", "notification": request.kind, "reason": "link_used"},
        {"actor": "system", "notification": reminder.kind, "reason": "link_used"},
    ]


def test_request_emails_to_the_doctors_use_the_clinician_language_and_the_family_theirs(
    app: Flask, client: FlaskClient, coordinator: Account, smtp: SmtpServer
) -> None:
    """A Spanish-speaking family's case: their doctors get the program's default language, as
    with the case's status emails; the family gets Spanish."""
    ensure_compiled()
    doctors = second_opinion_case(app, preferred_language="es")
    assert get_referral(app, doctors).preferred_language == "es"
    assert ask_doctors(client, doctors).status_code == 303
    request = link_emails(app, doctors)["info_request"]
    assert request.language == app.config["BABEL_DEFAULT_LOCALE"] == "en"
    assert deliver_now(app, smtp, request) == "sent"
    (email,) = smtp.messages
    assert email["To"] == "h.whitfield@lakeside-childrens.org"
    assert str(email["Subject"]) == (
        f"More information needed for request {format_reference(doctors)}"
    )
    text = email.get_body(("plain",)).get_content()
    assert "We need a little more information to review request" in text
    assert "Pathology or bone marrow report" in text
    reminder = queue_reminder(app, doctors)
    assert reminder.language == "en"
    assert reminder.recipients == ["h.whitfield@lakeside-childrens.org"]

    family = second_opinion_case(
        app, preferred_language="es", patient_given_name="Lucía", patient_dob="2014-02-03"
    )
    assert ask_doctors(client, family, audience="family").status_code == 303
    request = link_emails(app, family)["info_request"]
    assert request.language == "es"
    assert deliver_now(app, smtp, request) == "sent"
    email = smtp.messages[-1]
    assert email["To"] == PARENT_EMAIL
    assert str(email["Subject"]) == (
        f"Necesitamos más información para la solicitud {format_reference(family)}"
    )
    # The family's plain-language name for the item, in their language.
    assert "Los informes del hospital que tenga, como informes de médula ósea o de patología" in (
        email.get_body(("plain",)).get_content()
    )
    assert queue_reminder(app, family).language == "es"


# -- the queue's family-message filters ---------------------------------------------------------


def listed(client: FlaskClient, **args: str) -> set[str]:
    response = client.get("/coordinator/", query_string=args)
    assert response.status_code == 200
    return set(
        re.findall(r'href="/coordinator/referrals/([0-9A-Z]+)"', response.get_data(as_text=True))
    )


def test_queue_filters_for_family_messages_and_unmatched_messages(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    referral = make_referral(app)
    family_case = second_opinion_case(app)
    unmatched = send_message(app, patient_given_name="Lucas", patient_family_name="Ortega")
    matched, child = matched_message(app)
    working = send_message(app, topic="appointment")
    closed = send_message(app, topic="other")
    assert the_message(app, unmatched).match_method == "unmatched"
    assert the_message(app, working).match_method == "same_child"
    move(client, working, "in_progress")
    move(client, closed, "closed")

    everything = listed(client)
    assert {referral, family_case, unmatched, matched, child, working} <= everything
    assert closed not in everything  # closed messages leave the open queue

    assert listed(client, message="unmatched") == {unmatched}
    assert listed(client, message="new") == {unmatched, matched}
    assert listed(client, message="in_progress") == {working}
    assert listed(client, message="answered") == set()
    assert listed(client, message="closed") == {closed}
    assert listed(client, message="unmatched", q="Ortega") == {unmatched}
    assert listed(client, message="new", q="Ortega") == {unmatched}
    assert listed(client, message="bogus") == everything  # an unknown filter is ignored

    body = html.unescape(client.get("/coordinator/?message=unmatched").get_data(as_text=True))
    assert '<label for="f-message">Family messages</label>' in body
    assert '<option value="unmatched" selected>Unmatched messages</option>' in body
    assert "Unmatched: find the child's case" in page(client, unmatched)

    # A coordinator outside the message queue sees none of them.
    outsider = make_user(app, "filters-outsider@program.test", queues=["physician_referral"])
    as_outsider = app.test_client()
    sign_in(app, as_outsider, outsider)
    assert listed(as_outsider, message="new") == set()
    assert listed(as_outsider, message="unmatched") == set()
