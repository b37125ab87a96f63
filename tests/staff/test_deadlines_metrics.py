"""Deadlines (pure), escalation sweep (once per case and level), metrics and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from flask import Flask

from intake.domain.calendar import BusinessCalendar
from intake.domain.deadlines import (
    add_business_seconds,
    escalation_level,
    format_business,
    time_left,
)
from intake.extensions import db
from intake.models import Escalation, Notification, Referral
from intake.services import escalation, metrics
from tests.staff.helpers import make_referral, make_user, sign_in

CAL = BusinessCalendar(tz="America/New_York", day_start=time(8), day_end=time(17))
MONDAY_10 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 New York


def test_add_business_seconds_skips_nights_and_weekends() -> None:
    assert add_business_seconds(CAL, MONDAY_10, 3600) == MONDAY_10 + timedelta(hours=1)
    # 8 h from Monday 10:00: 7 h on Monday, 1 h on Tuesday morning -> Tuesday 09:00.
    assert add_business_seconds(CAL, MONDAY_10, 8 * 3600) == datetime(
        2026, 11, 24, 14, 0, tzinfo=UTC
    )
    friday_16 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert add_business_seconds(CAL, friday_16, 2 * 3600) == datetime(
        2026, 11, 30, 14, 0, tzinfo=UTC
    )


def test_time_left_in_business_days_and_hours() -> None:
    due = MONDAY_10 + timedelta(days=1, hours=3)  # Tuesday 13:00
    left = time_left(CAL, MONDAY_10, due)
    assert not left.overdue and left.label == "1 d 3 h left"
    late = time_left(CAL, due + timedelta(hours=2), due)
    assert late.overdue and late.label.startswith("overdue by 2 h")
    assert format_business(45 * 60, CAL) == "45 min"


def test_escalation_levels() -> None:
    start, due = MONDAY_10, MONDAY_10 + timedelta(hours=4)
    assert escalation_level(CAL, start, due, start + timedelta(hours=2)) == 0
    assert escalation_level(CAL, start, due, start + timedelta(hours=3)) == 1
    assert escalation_level(CAL, start, due, due) == 2
    assert escalation_level(CAL, start, due, due + timedelta(hours=4)) == 3


def review(at: datetime) -> dict[int, int]:
    return escalation.sweep(at, clocks=("review",))


def test_escalation_sweep_is_once_per_case_and_level(app: Flask) -> None:
    app.config["PROGRAM_LEAD_EMAILS"] = ["lead@program.test"]
    reference = make_referral(app, urgent=True, urgency_reason="x", rising_peripheral_blasts="y")
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None and referral.review_due_at is not None
        due = referral.review_due_at
        assert review(referral.created_at) == {1: 0, 2: 0, 3: 0}
        assert review(due + timedelta(minutes=1)) == {1: 1, 2: 1, 3: 0}
        assert review(due + timedelta(minutes=2)) == {1: 0, 2: 0, 3: 0}
        assert review(due + timedelta(hours=5)) == {1: 0, 2: 0, 3: 1}
        assert review(due + timedelta(hours=6)) == {1: 0, 2: 0, 3: 0}
        levels = db.session.scalars(sa.select(Escalation.level).order_by(Escalation.level)).all()
        assert levels == [1, 2, 3]
        lead = db.session.scalar(
            sa.select(Notification).where(Notification.kind == "escalation.review.2")
        )
        assert lead is not None and lead.recipients == ["lead@program.test"]
        first = db.session.scalar(
            sa.select(Notification).where(Notification.kind == "escalation.review.1")
        )
        assert first is not None and first.recipients == ["coordinators@program.test"]
        from intake.services import notifications

        email = notifications.render(lead, referral)
        assert "Mateo" not in email.text and "level 2" in email.text


def test_paused_cases_do_not_escalate(app: Flask) -> None:
    reference = make_referral(app, urgent=True, urgency_reason="x", rising_peripheral_blasts="y")
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None and referral.review_due_at is not None
        referral.clock_paused_at = referral.created_at
        db.session.commit()
        assert review(referral.review_due_at + timedelta(hours=9)) == {1: 0, 2: 0, 3: 0}


def test_unacknowledged_cases_escalate_to_assignee_then_lead(app: Flask) -> None:
    """The acknowledgement clock (1 business day) escalates too, until someone acts."""
    app.config["PROGRAM_LEAD_EMAILS"] = ["lead@program.test"]
    coordinator = make_user(app, "ack-coord@program.test")
    reference = make_referral(app)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None and referral.ack_due_at is not None
        due = referral.ack_due_at
        referral.assignee_id = coordinator.id  # assigned by routing, but nobody acted yet
        db.session.commit()
        ack = ("ack",)
        assert escalation.sweep(referral.created_at, clocks=ack) == {1: 0, 2: 0, 3: 0}
        assert escalation.sweep(due + timedelta(minutes=1), clocks=ack) == {1: 1, 2: 1, 3: 0}
        assert escalation.sweep(due + timedelta(minutes=2), clocks=ack) == {1: 0, 2: 0, 3: 0}
        to = dict(
            db.session.execute(
                sa.select(Notification.kind, Notification.recipients).where(
                    Notification.kind.like("escalation.ack.%")
                )
            ).all()
        )
        assert to == {
            "escalation.ack.1": ["ack-coord@program.test"],
            "escalation.ack.2": ["lead@program.test"],
        }
        lead = db.session.scalar(
            sa.select(Notification).where(Notification.kind == "escalation.ack.2")
        )
        assert lead is not None
        from intake.services import notifications

        email = notifications.render(lead, referral)
        assert "acknowledgement deadline has passed" in email.text and "Mateo" not in email.text
        # The first coordinator action stops the clock: no level 3.
        referral.acknowledged_at = due + timedelta(hours=1)
        db.session.commit()
        assert escalation.sweep(due + timedelta(hours=9), clocks=ack) == {1: 0, 2: 0, 3: 0}


def test_csv_neutralizes_formulas(app: Flask) -> None:
    for value in ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert metrics.neutralize(value).startswith("'")
    assert metrics.neutralize("Riverside") == "Riverside"


def test_metrics_page_and_admin_export(app: Flask) -> None:
    reference = make_referral(app, referrer_institution="=cmd|' /C calc'!A0")
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None and referral.review_due_at is not None
        # The sweep runs just after the due time; the breach is dated now (this week's bar).
        review(referral.review_due_at + timedelta(minutes=1))
        db.session.execute(sa.update(Escalation).values(at=sa.func.now()))
        db.session.commit()
        assert metrics.compute().breaches == 1
    coordinator = make_user(app, "m-coord@program.test")
    admin = make_user(app, "m-admin@program.test", role="admin")
    as_coord, as_admin = app.test_client(), app.test_client()
    sign_in(app, as_coord, coordinator)
    sign_in(app, as_admin, admin)
    page = as_coord.get("/coordinator/metrics")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count("<svg") >= 5 and "Data table" in html
    assert "Deadline breaches per week" in html and "B-cell acute lymphoblastic" in html
    assert "review deadline" in html
    # Every chart is labelled for screen readers by its own title and description.
    import re

    ids = re.findall(r'<title id="([^"]+)">', html)
    assert len(ids) >= 5 and len(set(ids)) == len(ids)
    for ident in ids:
        assert f'aria-labelledby="{ident} {ident}-d"' in html
    assert "http://" not in html.split("<svg", 1)[1].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "Export cases as CSV" not in html
    assert as_coord.get("/coordinator/metrics/export.csv").status_code == 403
    export = as_admin.get("/coordinator/metrics/export.csv")
    assert export.status_code == 200
    assert export.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][0] == "reference"
    assert rows[1][6] == "'=cmd|' /C calc'!A0"
    assert "Mateo" not in export.get_data(as_text=True)
    from tests.staff.helpers import audit_count

    assert audit_count(app, action="E", user_id=admin.id) == 1


def test_family_messages_are_counted_apart_and_the_export_carries_decisions(app: Flask) -> None:
    from intake.services import cases
    from tests.staff.test_family_casework import matched_message

    declined = make_referral(app, patient_given_name="Ines")
    message_case, child = matched_message(app)
    with app.app_context():
        case = db.session.scalar(sa.select(Referral).where(Referral.reference == declined))
        assert case is not None
        cases.change_status(
            case,
            "declined",
            actor="doc@program.test",
            role="reviewer",
            reason_code="trial_elsewhere",
        )
        message = db.session.scalar(sa.select(Referral).where(Referral.reference == message_case))
        assert message is not None
        # The message was answered late: counted as such, not as a case's deadline breach.
        db.session.add(Escalation(referral_id=message.id, level=2, clock="ack"))
        db.session.commit()
        figures = metrics.compute()
        rows = {row["reference"]: row for row in csv.DictReader(io.StringIO(metrics.export_csv()))}
    # The message is a message: not a case in the referral figures, not a disease of its own.
    assert (figures.total, figures.messages) == (2, 1)
    summary = dict(figures.summary())
    assert summary["Referrals and second opinions"] == "2" and summary["Family messages"] == "1"
    assert summary["Declined"] == "100%"
    assert (figures.breaches, figures.message_breaches) == (0, 1)
    assert summary["Family messages answered late"] == "1"
    assert [set(week) for week in figures.per_week_breaches.values()] == [{"family message"}]
    assert "" not in {name for week in figures.per_week_disease.values() for name in week}
    assert sum(sum(week.values()) for week in figures.per_week_kind.values()) == 3

    assert list(rows[declined])[-5:] == [
        "decision",
        "decided_at",
        "decision_reason",
        "deadline_breached",
        "linked_case",
    ]
    assert rows[declined]["decision"] == "declined"
    assert rows[declined]["decision_reason"] == "trial_elsewhere"
    assert rows[declined]["decided_at"] != "" and rows[declined]["deadline_breached"] == "no"
    assert rows[child]["decision"] == "" and rows[child]["decided_at"] == ""
    assert rows[message_case]["linked_case"] == child


def test_time_to_a_complete_packet_counts_from_receipt_to_the_first_complete_triage(
    app: Flask,
) -> None:
    from intake.models import TimelineEvent, User
    from intake.services import info_requests

    complete = make_referral(app)  # complete at triage
    incomplete = make_referral(app, flow_report=False)  # the flow report is missing
    coordinator = make_user(app, "packet-coord@program.test")
    with app.app_context(), app.test_request_context():
        first = db.session.scalar(sa.select(Referral).where(Referral.reference == complete))
        second = db.session.scalar(sa.select(Referral).where(Referral.reference == incomplete))
        assert first is not None and second is not None
        assert first.missing_items == [] and "flow_report" in second.missing_items
        assert metrics.compute().packet_hours and len(metrics.compute().packet_hours) == 1
        # The report arrives through the upload link three hours after the referral.
        user = db.session.get(User, coordinator.id)
        assert user is not None
        link = info_requests.request_info(second, user, ["flow_report"], "referrer")
        from intake.services.referrals import UploadedFile
        from tests.samples import tiny_pdf

        info_requests.receive_upload(
            link.id, [UploadedFile("flow_cytometry", "flow.pdf", "application/pdf", tiny_pdf())], {}
        )
        second = db.session.scalar(sa.select(Referral).where(Referral.reference == incomplete))
        assert second is not None and second.missing_items == []
        db.session.execute(
            sa.update(Referral)
            .where(Referral.id == second.id)
            .values(created_at=second.created_at - timedelta(hours=3))
        )
        db.session.commit()
        figures = metrics.compute()
        retriaged = db.session.scalars(
            sa.select(TimelineEvent).where(
                TimelineEvent.referral_id == second.id, TimelineEvent.action == "retriaged"
            )
        ).all()
        assert retriaged[-1].detail["missing_items"] == []
    assert sorted(round(h) for h in figures.packet_hours) == [0, 3]
    summary = dict(figures.summary())
    assert summary["Median time to a complete packet"] != "–"
