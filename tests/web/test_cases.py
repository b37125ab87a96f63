"""Service-level tests of triage storage, the status workflow and the emails it queues."""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.domain.statuses import TransitionError
from intake.extensions import db
from intake.models import Notification, Referral, TimelineEvent
from intake.services import cases, notifications, referrals
from tests.referral_data import PHI_VALUES, valid_referral
from tests.samples import tiny_pdf


def submit(client: FlaskClient, **overrides: Any) -> None:
    data = {"submission_id": "5b8cbe8e-8a7e-4f55-b2cf-0e7b0e8c1d11", **valid_referral(**overrides)}
    data["doc_flow_cytometry"] = (io.BytesIO(tiny_pdf()), "flow.pdf")
    assert client.post("/refer", data=data, content_type="multipart/form-data").status_code == 303


def only_referral() -> Referral:
    return db.session.scalars(sa.select(Referral)).one()


def test_triage_stores_result_moves_to_review_and_is_idempotent(
    app: Flask, client: FlaskClient
) -> None:
    submit(client, inpatient="y")
    with app.app_context():
        referral_id = only_referral().id
        assert referrals.run_triage(referral_id) == "triaged"
        assert referrals.run_triage(referral_id) == "already_triaged"
        referral = only_referral()
        assert referral.status == "under_review"
        assert referral.triage_priority == "P1"
        assert {r["rule_id"] for r in referral.triage_reasons} >= {"R4", "P1"}
        assert referral.review_due_at is not None and referral.ack_due_at is not None
        kinds = sorted(db.session.scalars(sa.select(Notification.kind)))
        assert kinds == [notifications.COORDINATOR_NEW, notifications.REFERRER_ACK]
        in_order = sa.select(TimelineEvent.action).order_by(TimelineEvent.id)
        actions = list(db.session.scalars(in_order))
        assert actions == ["created", "triaged", "status_changed"]


def test_incomplete_referral_lists_missing_items(app: Flask, client: FlaskClient) -> None:
    submit(client, cd19_status="", marrow_blasts_pct="")
    with app.app_context():
        referral_id = only_referral().id
        referrals.run_triage(referral_id)
        referral = only_referral()
        assert referral.triage_category == "needs_info"
        assert {"cd19_status", "marrow_blasts_pct"} <= set(referral.missing_items)
        assert referral.status == "under_review", "triage never sets needs_info (decision 5)"


def test_status_change_queues_phi_free_referrer_email(app: Flask, client: FlaskClient) -> None:
    submit(client)
    with app.app_context():
        referral = only_referral()
        referrals.run_triage(referral.id)
        referral = only_referral()
        with app.test_request_context():
            cases.change_status(referral, "needs_info", actor="user:1", role="coordinator")
            db.session.commit()
            notification = db.session.scalars(
                sa.select(Notification).where(Notification.kind.like("status.%"))
            ).one()
            assert notification.recipients == ["a.okafor@riverside-childrens.org"]
            email = notifications.render(notification, referral)
        assert referral.reference[:4] in email.subject
        for value in PHI_VALUES:
            assert value not in email.text and value not in (email.html or "")
            assert value not in email.subject
        assert "more information" in email.text


def test_only_reviewers_decline_with_a_reason(app: Flask, client: FlaskClient) -> None:
    submit(client)
    with app.app_context():
        referral = only_referral()
        referrals.run_triage(referral.id)
        referral = only_referral()
        with pytest.raises(TransitionError):
            cases.change_status(
                referral,
                "declined",
                actor="user:1",
                role="coordinator",
                reason_code="not_eligible_age",
            )
        with pytest.raises(TransitionError):
            cases.change_status(referral, "declined", actor="user:2", role="reviewer")
        cases.change_status(
            referral,
            "declined",
            actor="user:2",
            role="reviewer",
            reason_code="not_eligible_disease",
        )
        db.session.commit()
        assert only_referral().status == "declined"
        with pytest.raises(TransitionError):
            cases.change_status(only_referral(), "accepted", actor="user:2", role="reviewer")


def test_p1_after_hours_also_pages_on_call(app: Flask, client: FlaskClient) -> None:
    submit(client, inpatient="y")
    with app.app_context():
        from intake.models import RoutingRule

        db.session.add(
            RoutingRule(
                kind="physician_referral", priority="P1", role="oncall", email="oncall@program.test"
            )
        )
        db.session.commit()
        referral = only_referral()
        referral.triage_priority = "P1"
        daytime = notifications.coordinator_recipients(referral, business_hours=True)
        night = notifications.coordinator_recipients(referral, business_hours=False)
        assert "oncall@program.test" not in daytime
        assert night == [*daytime, "oncall@program.test"]


def test_acknowledgements_are_capped_per_referrer_per_day(app: Flask, client: FlaskClient) -> None:
    app.config["ACK_DAILY_CAP"] = 2
    for i in range(3):
        data = {
            "submission_id": f"5b8cbe8e-8a7e-4f55-b2cf-0e7b0e8c1d2{i}",
            **valid_referral(patient_given_name=f"Child{i}"),
        }
        assert (
            client.post("/refer", data=data, content_type="multipart/form-data").status_code == 303
        )
    with app.app_context():
        kinds = db.session.scalars(sa.select(Notification.kind)).all()
        assert kinds.count(notifications.REFERRER_ACK) == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 3


def test_an_answer_leaving_a_p1_after_hours_pages_on_call_too(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from intake.models import RoutingRule, User
    from intake.services import info_requests

    submit(client, inpatient="y")
    with app.app_context():
        db.session.add(
            RoutingRule(
                kind="physician_referral", priority="P1", role="oncall", email="oncall@program.test"
            )
        )
        assignee = User(email="assignee@program.test", role="coordinator", password_hash="x")
        db.session.add(assignee)
        db.session.commit()
        referral = only_referral()
        referral.triage_priority = "P1"
        saturday_night = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # 22:00 Saturday in New York
        monday_ten = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        monkeypatch.setattr(info_requests, "now", lambda: saturday_night)
        assert info_requests.answer_notice_recipients(referral)[1][-1] == "oncall@program.test"
        referral.assignee_id = assignee.id
        assert info_requests.answer_notice_recipients(referral) == (
            "assignee",
            ["assignee@program.test", "oncall@program.test"],
        )
        monkeypatch.setattr(info_requests, "now", lambda: monday_ten)
        assert info_requests.answer_notice_recipients(referral) == (
            "assignee",
            ["assignee@program.test"],
        )
        referral.triage_priority = "P2"
        monkeypatch.setattr(info_requests, "now", lambda: saturday_night)
        assert info_requests.answer_notice_recipients(referral) == (
            "assignee",
            ["assignee@program.test"],
        )
        db.session.rollback()
