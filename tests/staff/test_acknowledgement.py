"""Decision 4's acknowledgement clock: stopped by the first contact with the referrer or family
(a contact note, a request for information, a decision they are told of, a message answered),
never by assigning the case; family messages run on it too (decision 11)."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain import statuses
from intake.extensions import db
from intake.models import Notification, Referral, TimelineEvent, User
from intake.services import casework, escalation, notifications
from intake.services.referrals import run_triage
from tests.families.family_data import message
from tests.staff.helpers import (
    Account,
    audit_count,
    get_referral,
    make_referral,
    make_user,
    set_referral,
    sign_in,
)


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Account:
    account = make_user(app, "ack-coordinator@program.test")
    sign_in(app, client, account)
    return account


def _note_events(app: Flask, reference: str) -> list[dict[str, object]]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(TimelineEvent)
            .join(Referral, Referral.id == TimelineEvent.referral_id)
            .where(Referral.reference == reference, TimelineEvent.action == "note_added")
            .order_by(TimelineEvent.id)
        )
        return [dict(e.detail or {}) for e in rows]


def _send_message(app: Flask, **overrides: str) -> str:
    """A family's message through the public form, triaged (rule R0); its case reference."""
    response = app.test_client().post(
        "/message", data={"submission_id": str(uuid.uuid4()), **message(**overrides)}
    )
    assert response.status_code == 303
    with app.app_context():
        row = db.session.execute(
            sa.select(Referral.id, Referral.reference)
            .where(Referral.kind == casework.MESSAGE_KIND)
            .order_by(Referral.id.desc())
            .limit(1)
        ).one()
        assert run_triage(row.id) == "triaged"
        return str(row.reference)


def _queue(client: FlaskClient, **args: str) -> str:
    response = client.get("/coordinator/", query_string=args)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def _row(page: str, reference: str) -> str:
    link = page.index(f"/coordinator/referrals/{reference}")
    return page[page.rindex("<tr", 0, link) : page.index("</tr>", link)]


# -- what stops the clock ------------------------------------------------------------------------


def test_assigning_does_not_acknowledge(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        actor = db.session.get(User, coordinator.id)
        assert referral is not None and actor is not None
        assert casework.assign(referral, actor, actor, None) == ["assignee"]
    after = get_referral(app, reference)
    assert after.assignee_id == coordinator.id and after.acknowledged_at is None


def test_a_contact_note_acknowledges_and_records_when(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app)
    url = f"/coordinator/referrals/{reference}/notes"
    # A channel without the box ticked is a plain note; the box without a channel is an error.
    assert (
        client.post(url, data={"body": "Left a voicemail.", "channel": "phone"}).status_code == 303
    )
    refused = client.post(url, data={"body": "Called.", "contact": "y", "channel": ""})
    assert refused.status_code == 400
    assert "Say how you contacted them." in html.unescape(refused.get_data(as_text=True))
    assert client.post(url, data={"body": "x", "contact": "y", "channel": "fax"}).status_code == 400
    assert get_referral(app, reference).acknowledged_at is None

    before = datetime.now(UTC)
    response = client.post(
        url, data={"body": "Called Dr. Okafor's office.", "contact": "y", "channel": "phone"}
    )
    assert response.status_code == 303
    acknowledged = get_referral(app, reference).acknowledged_at
    assert acknowledged is not None and before <= acknowledged <= datetime.now(UTC)
    assert _note_events(app, reference)[-1] == {
        "note_id": _note_events(app, reference)[-1]["note_id"],
        "contact": "phone",
        "acknowledged": True,
    }
    assert "contact" not in _note_events(app, reference)[0]  # the plain note
    assert audit_count(app, resource_type="case_note", detail=f"{reference} contact:phone") == 1

    # A later contact is recorded but keeps the first time.
    client.post(url, data={"body": "Emailed the family.", "contact": "y", "channel": "email"})
    assert get_referral(app, reference).acknowledged_at == acknowledged
    assert _note_events(app, reference)[-1]["contact"] == "email"
    assert "acknowledged" not in _note_events(app, reference)[-1]

    page = html.unescape(client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True))
    assert 'id="case-acknowledged"' in page and 'id="case-ack-due"' not in page
    assert "contact (Phone)</strong>: Called Dr. Okafor's office." in page
    assert "contact (Email)</strong>: Emailed the family." in page
    assert "Left a voicemail." in page
    assert "This note records contact with the referrer or family" in page


def test_a_request_for_information_acknowledges(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = make_referral(app)
    response = client.post(
        f"/coordinator/referrals/{reference}/request-info",
        data={"items": ["insurance_card"], "audience": "referrer"},
    )
    assert response.status_code == 303
    assert get_referral(app, reference).acknowledged_at is not None


@pytest.mark.parametrize(
    ("target", "contact"),
    [
        (statuses.ACCEPTED, True),
        (statuses.DECLINED, True),
        (statuses.REDIRECTED, True),
        (statuses.WITHDRAWN, False),
    ],
)
def test_a_status_change_acknowledges_only_a_decision_the_referrer_is_told(
    app: Flask, target: str, contact: bool
) -> None:
    reviewer = make_user(app, f"ack-rev-{target}@program.test", role="reviewer")
    reference = make_referral(app)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        actor = db.session.get(User, reviewer.id)
        assert referral is not None and actor is not None
        reason = "other" if target in statuses.REASON_REQUIRED else None
        casework.change_status(referral, actor, target, reason)
    assert (get_referral(app, reference).acknowledged_at is not None) == contact
    assert target in casework.CONTACT_STATUSES or not contact


# -- the clock keeps running after assignment ----------------------------------------------------


def test_acknowledgement_escalates_after_assignment_until_a_contact_note(app: Flask) -> None:
    app.config["PROGRAM_LEAD_EMAILS"] = ["lead@program.test"]
    coordinator = make_user(app, "ack-assignee@program.test")
    reference = make_referral(app)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        actor = db.session.get(User, coordinator.id)
        assert referral is not None and actor is not None and referral.ack_due_at is not None
        casework.assign(referral, actor, actor, None)
        due = referral.ack_due_at
        ack = ("ack",)
        assert escalation.sweep(due + timedelta(minutes=1), clocks=ack) == {1: 1, 2: 1, 3: 0}
        level_1 = db.session.scalar(
            sa.select(Notification).where(Notification.kind == "escalation.ack.1")
        )
        assert level_1 is not None and level_1.recipients == ["ack-assignee@program.test"]
        casework.add_note(referral, actor, "Called the referrer.", contact="phone")
        assert referral.acknowledged_at is not None
        assert escalation.sweep(due + timedelta(hours=9), clocks=ack) == {1: 0, 2: 0, 3: 0}


def test_an_unknown_contact_channel_is_refused(app: Flask, coordinator: Account) -> None:
    reference = make_referral(app)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        actor = db.session.get(User, coordinator.id)
        assert referral is not None and actor is not None
        with pytest.raises(ValueError, match="unknown contact channel"):
            casework.add_note(referral, actor, "x", contact="pigeon")


# -- "Overdue only" covers a late acknowledgement -------------------------------------------------


def test_overdue_filter_includes_a_late_acknowledgement(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    late = make_referral(app, patient_given_name="Tomas")
    on_time = make_referral(app, patient_given_name="Lucia")
    past = datetime.now(UTC) - timedelta(days=2)
    future = datetime.now(UTC) + timedelta(days=2)
    set_referral(app, late, ack_due_at=past, review_due_at=future)
    set_referral(app, on_time, ack_due_at=future, review_due_at=future)
    page = _queue(client, overdue="1")
    assert "Tomas" in page and "Lucia" not in page
    # The row says which clock is late, though the review is still on time.
    assert "acknowledge: overdue" in _row(page, late)
    set_referral(app, late, acknowledged_at=past)
    page = _queue(client, overdue="1")
    assert "Tomas" not in page
    assert "acknowledge:" not in _row(_queue(client), late)


# -- family messages (decision 11) ---------------------------------------------------------------


def test_a_family_message_runs_the_acknowledgement_clock(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    app.config["PROGRAM_LEAD_EMAILS"] = ["lead@program.test"]
    reference = _send_message(app, patient_given_name="Lucas", patient_family_name="Ortega")
    case = get_referral(app, reference)
    assert case.triage_priority is None and case.review_due_at is None
    assert case.ack_due_at is not None and case.ack_due_at > case.created_at

    row = _row(_queue(client), reference)
    assert "untriaged" in row and "acknowledge: " in row and " left" in row
    assert "Ortega" not in _queue(client, overdue="1")

    # Late: listed under "Overdue only" and escalated like any case.
    set_referral(app, reference, ack_due_at=datetime.now(UTC) - timedelta(hours=1))
    page = _queue(client, overdue="1")
    assert "Ortega" in page and "acknowledge: overdue" in _row(page, reference)
    with app.app_context():
        due = db.session.scalar(sa.select(Referral.ack_due_at).where(Referral.id == case.id))
        assert due is not None
        assert escalation.sweep(due + timedelta(minutes=1), clocks=("ack",)) == {1: 1, 2: 1, 3: 0}
        sent = {
            n.kind: n
            for n in db.session.scalars(
                sa.select(Notification).where(Notification.referral_id == case.id)
            )
        }
        # Level 1 goes to the message's queue, as its new-case email did.
        assert sent["escalation.ack.1"].recipients == sent["family_message_new"].recipients
        assert sent["escalation.ack.2"].recipients == ["lead@program.test"]
        referral = db.session.get(Referral, case.id)
        assert referral is not None
        email = notifications.render(sent["escalation.ack.2"], referral)
        assert "Priority: untriaged" in email.text and "None" not in email.text
        assert "Lucas" not in email.text and "Ortega" not in email.text

    # Marking it in progress is not contact; answering the family is.
    move = f"/coordinator/referrals/{reference}/message-state"
    assert client.post(move, data={"target": "in_progress"}).status_code == 303
    assert get_referral(app, reference).acknowledged_at is None
    assert client.post(move, data={"target": "answered"}).status_code == 303
    assert get_referral(app, reference).acknowledged_at is not None
    assert "Ortega" not in _queue(client, overdue="1")


def test_a_message_case_page_has_no_triage_missing_items_or_reviewer(
    app: Flask, client: FlaskClient, coordinator: Account
) -> None:
    reference = _send_message(app)
    page = html.unescape(client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True))
    assert "Family message" in page and 'id="case-ack-due"' in page
    for gone in ('id="triage-h"', 'id="missing-h"', "<strong>Reviewer:</strong>", 'id="reviewer"'):
        assert gone not in page, gone
    # Saving the assignment still works without the reviewer field.
    response = client.post(
        f"/coordinator/referrals/{reference}/assign",
        data={"assignee": str(coordinator.id), "reviewer": ""},
    )
    assert response.status_code == 303
    assert get_referral(app, reference).assignee_id == coordinator.id
    # A physician referral keeps all three.
    referral = make_referral(app)
    page = html.unescape(client.get(f"/coordinator/referrals/{referral}").get_data(as_text=True))
    for kept in ('id="triage-h"', 'id="missing-h"', "<strong>Reviewer:</strong>", 'id="reviewer"'):
        assert kept in page, kept
