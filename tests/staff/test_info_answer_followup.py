"""What happens when a request for information is answered: the case is back under review
with a running review clock even when items are still missing (decision 4), and a coordinator
is told once per answer (PHI-free email + timeline entry)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from intake.domain.triage import REVIEW_BUSINESS_DAYS
from intake.extensions import db
from intake.models import Notification, Referral, TimelineEvent, User
from intake.services import info_requests, notifications
from intake.services.referrals import program_calendar
from tests.referral_data import PHI_VALUES
from tests.staff.helpers import make_referral, make_user


@pytest.fixture
def coordinator(app: Flask) -> Any:
    return make_user(app, "followup-coord@program.test")


def _incomplete_case(app: Flask) -> str:
    """Missing the flow report and the performance score: no review clock yet."""
    return make_referral(app, flow_report=False, performance_score="")


def _ask_and_answer(app: Flask, coordinator: Any, reference: str, item: str = "") -> int:
    """Ask for the score only and answer it in words (the flow report is still missing), or
    ask for the document ``item`` and send nothing for it."""
    with app.app_context(), app.test_request_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        user = db.session.get(User, coordinator.id)
        assert referral is not None and user is not None
        items = [item or "performance_score"]
        info = info_requests.request_info(referral, user, items, "referrer")
        answers = {} if item else {"performance_score": "Lansky 80"}
        info_requests.receive_upload(info.id, [], answers)
        return info.id


def _case(reference: str) -> Referral:
    referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
    assert referral is not None
    return referral


def _notices(referral: Referral) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification).where(
                Notification.referral_id == referral.id,
                Notification.kind.like(f"{info_requests.RECEIVED_KIND}.%"),
            )
        )
    )


def test_an_answer_that_leaves_items_missing_starts_the_review_clock(
    app: Flask, coordinator: Any
) -> None:
    reference = _incomplete_case(app)
    with app.app_context():
        before = _case(reference)
        assert before.review_due_at is None and "flow_report" in before.missing_items
    _ask_and_answer(app, coordinator, reference)
    with app.app_context():
        after = _case(reference)
        assert after.status == "under_review" and after.clock_paused_at is None
        assert "flow_report" in after.missing_items  # still listed
        assert after.review_due_at is not None  # ... but the clock runs
        answered_at = max(e.at for e in after.events if e.action == "info_received")
        days = REVIEW_BUSINESS_DAYS.get(after.triage_priority or "", 2)
        expected = program_calendar().deadline(answered_at, days)
        assert abs((after.review_due_at - expected).total_seconds()) < 60
        started = [e for e in after.events if e.action == "review_clock_started"]
        assert len(started) == 1
        assert started[0].detail["reason"] == "answer_received"
        assert "flow_report" in started[0].detail["missing_items"]


def test_a_running_clock_resumes_rather_than_restarts(app: Flask, coordinator: Any) -> None:
    reference = make_referral(app)  # complete packet: the clock already runs
    with app.app_context():
        due = _case(reference).review_due_at
        assert due is not None
    _ask_and_answer(app, coordinator, reference, "treatment_summary")
    with app.app_context():
        after = _case(reference)
        assert after.review_due_at is not None
        # The business time left is given back (17:00 today and 08:00 tomorrow are the same
        # business instant), not a fresh deadline.
        calendar = program_calendar()
        left_before = calendar.business_seconds_between(min(due, after.review_due_at), due)
        left_after = calendar.business_seconds_between(
            min(due, after.review_due_at), after.review_due_at
        )
        assert abs(left_before - left_after) < 120
        assert not [e for e in after.events if e.action == "review_clock_started"]


def test_the_queue_is_told_once_per_answer(app: Flask, coordinator: Any) -> None:
    reference = _incomplete_case(app)
    first = _ask_and_answer(app, coordinator, reference)
    with app.app_context():
        referral = _case(reference)
        notices = _notices(referral)
        assert [n.kind for n in notices] == [f"info_received.{first}"]
        assert notices[0].recipients == notifications.coordinator_recipients(referral)
        queued = [e for e in referral.events if e.action == "answer_notice_queued"]
        assert [e.detail for e in queued] == [{"info_request": first, "to": "queue"}]
        email = notifications.render(notices[0], referral)
        body = email.subject + email.text + email.html
        for value in PHI_VALUES:
            assert value not in body, value
        assert "Lansky 80" not in body  # the answer stays in the case
        assert f"/coordinator/referrals/{referral.reference}" in email.text
        assert "the referrer" in email.text and "still missing" in email.text
        assert "review due" in email.text
    # A second round is a second answer: a second notice, to the assignee now.
    with app.app_context():
        referral = _case(reference)
        referral.assignee_id = coordinator.id
        db.session.commit()
    second = _ask_and_answer(app, coordinator, reference)
    with app.app_context():
        referral = _case(reference)
        by_kind = {n.kind: n for n in _notices(referral)}
        assert sorted(by_kind) == sorted([f"info_received.{first}", f"info_received.{second}"])
        assert by_kind[f"info_received.{second}"].recipients == ["followup-coord@program.test"]
        queued = db.session.scalars(
            sa.select(TimelineEvent).where(
                TimelineEvent.referral_id == referral.id,
                TimelineEvent.action == "answer_notice_queued",
            )
        ).all()
        assert len(queued) == 2 and queued[-1].detail["to"] == "assignee"


def test_an_inactive_assignee_leaves_the_notice_to_the_queue(app: Flask, coordinator: Any) -> None:
    reference = _incomplete_case(app)
    with app.app_context():
        referral = _case(reference)
        referral.assignee_id = coordinator.id
        user = db.session.get(User, coordinator.id)
        assert user is not None
        user.active = False
        db.session.commit()
        assert info_requests.answer_notice_recipients(referral) == (
            "queue",
            notifications.coordinator_recipients(referral),
        )


def test_closing_the_links_to_the_doctors_also_starts_the_clock(
    app: Flask, coordinator: Any
) -> None:
    from tests.staff.test_family_casework import second_opinion_case

    reference = second_opinion_case(app)  # the family's request: clinical items missing
    with app.app_context(), app.test_request_context():
        referral = _case(reference)
        assert referral.review_due_at is None and referral.missing_items
        user = db.session.get(User, coordinator.id)
        assert user is not None
        info_requests.request_info(referral, user, ["pathology_report"], "referrer")
        closed = info_requests.close_links_to_doctors(
            referral, "revoked", actor="coord", role="coordinator"
        )
        db.session.commit()
        assert closed == 1
    with app.app_context():
        after = _case(reference)
        assert after.status == "under_review" and after.review_due_at is not None
        started = [e for e in after.events if e.action == "review_clock_started"]
        assert [e.detail["reason"] for e in started] == ["links_closed"]
        assert _notices(after) == []  # nothing arrived: nobody is told of an answer


def test_moving_a_case_back_to_review_by_hand_starts_a_missing_clock(
    app: Flask, coordinator: Any
) -> None:
    # The referrer phoned instead of using the link: the coordinator moves the case back.
    from intake.services import casework

    reference = _incomplete_case(app)
    with app.app_context(), app.test_request_context():
        referral = _case(reference)
        user = db.session.get(User, coordinator.id)
        assert user is not None and referral.review_due_at is None
        info_requests.request_info(referral, user, ["flow_report"], "referrer")
        casework.change_status(_case(reference), user, "under_review", None)
    with app.app_context():
        after = _case(reference)
        assert after.status == "under_review" and after.clock_paused_at is None
        assert after.review_due_at is not None  # it escalates like any case under review
        started = [e for e in after.events if e.action == "review_clock_started"]
        assert [e.detail["reason"] for e in started] == ["moved_back_by_hand"]
