"""The case page from a QA walk: final moves and decisions need a ticked confirmation, reasons
go only with the moves that take one, and codes read as labels (timeline, hard flags, linked
cases, information requests), with the child's age next to the date of birth."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain import statuses
from intake.domain.reference import format_reference
from intake.domain.triage import HARD_FLAG_LABELS, age_in_years
from intake.extensions import db
from intake.models import Referral, TimelineEvent
from intake.services.referrals import program_calendar
from intake.staff.case_views import notification_label
from tests.staff.helpers import get_referral, make_referral, make_user, set_referral, sign_in


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient):  # type: ignore[no-untyped-def]
    account = make_user(app, "qa-coord@program.test")
    sign_in(app, client, account)
    return account


def _events(app: Flask, reference: str) -> list[str]:
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        return [e.action for e in referral.events]


def _text(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def test_withdrawing_needs_the_ticked_box_and_changes_nothing_without_it(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    url = f"/coordinator/referrals/{reference}"
    page = _text(client.get(url))
    # The box is on the form with what each offered final move does.
    assert "I confirm what this change does (needed for a decision or a final status)" in page
    assert "<strong>Withdrawn</strong>: nobody is emailed; this is final and cannot be undone." in (
        page
    )
    assert 'aria-describedby="confirm-hint"' in page and 'id="confirm-hint"' in page
    events_before = _events(app, reference)

    refused = client.post(f"{url}/status", data={"target": "withdrawn", "reason_code": ""})
    assert refused.status_code == 400
    text = _text(refused)
    error = re.search(r'<p class="error" id="confirm-error">(.*?)</p>', text, re.S)
    assert error and "Tick the box to confirm “Withdrawn”: nobody is emailed; this is final" in (
        error.group(1)
    )
    assert 'aria-invalid="true"' in text[text.index('id="confirm"') - 200 :]
    assert get_referral(app, reference).status == "under_review"
    assert _events(app, reference) == events_before

    done = client.post(
        f"{url}/status",
        data={"target": "withdrawn", "reason_code": "family_declined", "confirm": "y"},
    )
    assert done.status_code == 303
    after = get_referral(app, reference)
    assert after.status == "withdrawn" and after.status_reason == "family_declined"


@pytest.mark.parametrize("target", sorted(statuses.CONFIRM_REQUIRED - {"closed_no_response"}))
def test_every_final_move_and_decision_waits_for_the_box(app: Flask, target: str) -> None:
    reviewer = make_user(app, f"qa-rev-{target}@program.test", role="reviewer")
    client = app.test_client()
    sign_in(app, client, reviewer)
    reference = make_referral(app)
    start = "accepted" if target == "closed" else "under_review"
    set_referral(app, reference, reviewer_id=reviewer.id, status=start)
    reason = "other" if target in statuses.REASON_REQUIRED else ""
    move = {"target": target, "reason_code": reason}
    url = f"/coordinator/referrals/{reference}/status"
    assert client.post(url, data=move).status_code == 400
    assert get_referral(app, reference).status == start
    assert client.post(url, data={**move, "confirm": "y"}).status_code == 303
    assert get_referral(app, reference).status == target


def test_closing_for_no_response_waits_for_the_box(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    set_referral(app, reference, status="needs_info")
    url = f"/coordinator/referrals/{reference}/status"
    assert client.post(url, data={"target": "closed_no_response"}).status_code == 400
    assert get_referral(app, reference).status == "needs_info"
    move = {"target": "closed_no_response", "confirm": "y"}
    assert client.post(url, data=move).status_code == 303


def test_a_refused_move_says_why_before_asking_for_confirmation(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    response = client.post(
        f"/coordinator/referrals/{reference}/status",
        data={"target": "declined", "reason_code": "other"},
    )
    assert response.status_code == 409
    assert "only a reviewer may record" in _text(response)
    assert "Tick the box" not in _text(response)


def test_a_move_that_is_not_final_needs_no_box(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app)
    set_referral(app, reference, status="accepted")
    response = client.post(
        f"/coordinator/referrals/{reference}/status", data={"target": "consult_scheduled"}
    )
    assert response.status_code == 303
    assert get_referral(app, reference).status == "consult_scheduled"


def test_a_reason_goes_only_with_the_moves_that_take_one(app: Flask) -> None:
    reviewer = make_user(app, "qa-reason@program.test", role="reviewer")
    client = app.test_client()
    sign_in(app, client, reviewer)
    reference = make_referral(app)
    set_referral(app, reference, reviewer_id=reviewer.id)
    url = f"/coordinator/referrals/{reference}"
    page = _text(client.get(url))
    assert "Reason (only for Not a candidate, Referred to another program or Withdrawn)" in page
    accepted = client.post(
        f"{url}/status",
        data={"target": "accepted", "reason_code": "not_eligible_age", "confirm": "y"},
    )
    assert accepted.status_code == 400
    assert "“Accepted” is recorded without a reason" in _text(accepted)
    assert get_referral(app, reference).status == "under_review"
    ok = client.post(f"{url}/status", data={"target": "accepted", "confirm": "y"})
    assert ok.status_code == 303
    assert get_referral(app, reference).status_reason is None


def test_timeline_hard_flags_and_age_read_as_labels(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    reference = make_referral(app, cns_status="cns3", gvhd_grade="3")
    referral = get_referral(app, reference)
    assert set(referral.hard_flags) == {"cns3", "gvhd_grade_2_4"}
    with app.app_context():
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                actor="system",
                action="email_sent",
                detail={"notification": "referrer_acknowledgement"},
            )
        )
        db.session.commit()
    page = _text(client.get(f"/coordinator/referrals/{reference}"))
    # Hard flags: labelled, in a warning box above the category.
    box = re.search(
        r'<div class="flag-warning" role="note" id="hard-flags">(.*?)</div>', page, re.S
    )
    assert box, "the hard flags are in a warning box"
    for code in ("cns3", "gvhd_grade_2_4"):
        assert HARD_FLAG_LABELS[code] in box.group(1)
    assert "Hard flags: physician review needed" in box.group(1)
    assert page.index('id="hard-flags"') < page.index("Likely eligible - commercial")
    assert "Flags: " not in page
    # Timeline: status and email labels, not codes.
    assert "Received → Being reviewed" in page
    assert "received → under_review" not in page
    assert "email: Acknowledgement to the referrer" in page
    assert "referrer_acknowledgement" not in page
    # Age in whole years on the program-local day the case was received.
    with app.app_context():
        received_on = program_calendar().local_date(referral.created_at)
    age = age_in_years(referral.patient_dob, received_on)
    assert f'2016-03-14 <span id="patient-age">(age {age} years on the day received)</span>' in (
        page
    )


def test_linked_cases_and_information_requests_read_as_people_say_them(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    first = make_referral(app)
    second = make_referral(app)
    assert get_referral(app, second).linked_case_id == get_referral(app, first).id
    url = f"/coordinator/referrals/{second}"
    ask = {"items": ["insurance_card", "treatment_summary"], "audience": "referrer"}
    assert client.post(f"{url}/request-info", data=ask).status_code == 303
    page = _text(client.get(url))
    linked = page[
        page.index('id="linked-h"') : page.index("</section>", page.index('id="linked-h"'))
    ]
    assert f">{format_reference(first)}</a>" in linked
    assert "Waiting for more information" in page and "Being reviewed → Waiting for more" in page
    items = re.search(r'asked for: <span class="info-items">(.*?)</span>', page)
    assert items and items.group(1) == "Insurance card; Treatment summary"
    assert "item(s)" not in page


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("referrer_acknowledgement", "Acknowledgement to the referrer"),
        ("family_acknowledgement", "Acknowledgement to the family"),
        ("coordinator_new_case", "New-case alert to the coordinators"),
        ("status.41.family", "Status update to the family"),
        ("status.41.referrer", "Status update to the referrer"),
        ("info_request.7", "Request for more information"),
        ("info_reminder.7.1", "Reminder of the request for more information"),
        ("info_received.7", "Notice to staff: information arrived through an upload link"),
        ("escalation.review.2", "Deadline escalation to staff"),
        ("something_new", "something_new"),
    ],
)
def test_notification_kinds_have_labels(kind: str, label: str) -> None:
    assert notification_label(kind) == label


def test_a_p1_waiting_for_the_physician_is_bannered(
    app: Flask, client: FlaskClient, coordinator: object
) -> None:
    urgent = make_referral(app, inpatient="y")
    routine = make_referral(app)
    assert get_referral(app, urgent).triage_priority == "P1"
    assert get_referral(app, routine).triage_priority != "P1"
    page = _text(client.get(f"/coordinator/referrals/{urgent}"))
    assert 'id="p1-banner"' in page
    assert "Urgent (P1): physician review the same business day." in page
    assert 'id="p1-banner"' not in _text(client.get(f"/coordinator/referrals/{routine}"))
    # Once decided, nothing is urgent any more.
    set_referral(app, urgent, status=statuses.ACCEPTED)
    assert 'id="p1-banner"' not in _text(client.get(f"/coordinator/referrals/{urgent}"))
