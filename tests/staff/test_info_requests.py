"""Request more information: PHI-free email with a single-use link, upload without an account,
clock paused and resumed, back to review, re-triage, reminders and closing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import InfoRequest, Notification, Referral
from intake.services import auth, info_requests, notifications
from tests.referral_data import PHI_VALUES
from tests.samples import tiny_pdf
from tests.staff.helpers import csrf_token, get_referral, make_referral, make_user, sign_in


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> Any:
    account = make_user(app, "coord@program.test")
    sign_in(app, client, account)
    return account


def _request(client: FlaskClient, reference: str, items: list[str]) -> Any:
    return client.post(
        f"/coordinator/referrals/{reference}/request-info",
        data={"items": items, "audience": "referrer"},
    )


def _email_for(app: Flask, reference: str) -> tuple[str, str]:
    """The rendered information-request email (subject, text) as the worker would send it."""
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        notification = db.session.scalar(
            sa.select(Notification).where(
                Notification.referral_id == referral.id,
                Notification.kind.like("info_request.%"),
            )
        )
        assert notification is not None
        assert notification.recipients == [referral.referrer_email]
        email = notifications.render(notification, referral)
        return email.subject, email.text


def test_request_upload_resume_and_retriage(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = make_referral(app, flow_report=False)  # the flow cytometry report is missing
    before = get_referral(app, reference)
    assert "flow_report" in before.missing_items
    assert before.review_due_at is None  # decision 4: the clock starts with a complete packet

    response = _request(client, reference, ["flow_report"])
    assert response.status_code == 303
    paused = get_referral(app, reference)
    assert paused.status == "needs_info" and paused.clock_paused_at is not None
    queue_html = client.get("/coordinator/?status=needs_info").get_data(as_text=True)
    assert "paused" in queue_html

    subject, text = _email_for(app, reference)
    for value in PHI_VALUES:
        assert value not in subject and value not in text, value
    link = re.search(r"http://intake\.test(/upload/[A-Za-z0-9_-]+)", text)
    assert link, text
    assert "Flow cytometry report" in text

    family = app.test_client()
    opened = family.get(link.group(1))
    assert opened.status_code == 303 and opened.headers["Location"] == "/upload"
    # Opening (a mail scanner, say) does not spend the link.
    assert app.test_client().get(link.group(1)).status_code == 303
    page = family.get("/upload")
    assert page.status_code == 200 and "Flow cytometry report" in page.get_data(as_text=True)
    empty = family.post("/upload", data={})
    assert empty.status_code == 400
    bad = family.post(
        "/upload",
        data={"doc_flow_cytometry": (__import__("io").BytesIO(b"MZ\x90\x00"), "x.pdf")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400
    done = family.post(
        "/upload",
        data={"doc_flow_cytometry": (__import__("io").BytesIO(tiny_pdf()), "flow.pdf")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303 and done.headers["Location"] == "/upload/thanks"

    after = get_referral(app, reference)
    assert after.status == "under_review"
    assert after.clock_paused_at is None
    assert after.review_due_at is not None  # the packet is complete: the review clock runs
    assert "flow_report" not in after.missing_items  # re-triaged with the new document
    # The link is single use.
    assert app.test_client().get(link.group(1)).status_code == 410
    html = client.get(f"/coordinator/referrals/{reference}").get_data(as_text=True)
    for action in ("info requested", "info received", "clock resumed", "retriaged"):
        assert action in html, action
    assert "flow.pdf" in html


def test_request_needs_items_and_a_movable_case(
    app: Flask, client: FlaskClient, coordinator: Any
) -> None:
    reference = make_referral(app)
    assert _request(client, reference, []).status_code == 400
    assert _request(client, reference, ["not_an_item"]).status_code == 400
    assert get_referral(app, reference).status == "under_review"


def test_resume_gives_back_the_business_time_left(app: Flask, monkeypatch: Any) -> None:
    from datetime import UTC, datetime

    reference = make_referral(app)
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
    monkeypatch.setattr(auth, "_clock", lambda: start)
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        referral.review_due_at = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 15:00 local: 5 h left
        info_requests.pause_clock(referral)
        db.session.commit()
        resumed = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # Wednesday 09:00
        monkeypatch.setattr(auth, "_clock", lambda: resumed)
        info_requests.resume_clock(referral)
        db.session.commit()
        assert referral.review_due_at == datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # 14:00
        # Paused Monday 10:00 to Wednesday 09:00: 7 h + 9 h + 1 h of business time.
        assert referral.clock_paused_seconds == 17 * 3600


def test_reminders_then_closed_no_response(
    app: Flask, client: FlaskClient, coordinator: Any, monkeypatch: Any
) -> None:
    reference = make_referral(app, flow_report=False)
    _request(client, reference, ["flow_report"])
    app.config["INFO_MAX_REMINDERS"] = 2
    with app.app_context():
        request = db.session.scalar(sa.select(InfoRequest))
        assert request is not None
        created = request.created_at
        step = timedelta(hours=app.config["INFO_REMINDER_HOURS"])
        assert info_requests.sweep(created + step / 2) == {"reminders": 0, "closed": 0}
        assert info_requests.sweep(created + step) == {"reminders": 1, "closed": 0}
        assert info_requests.sweep(created + step) == {"reminders": 0, "closed": 0}  # idempotent
        assert info_requests.sweep(created + 2 * step) == {"reminders": 1, "closed": 0}
        assert info_requests.sweep(created + 3 * step) == {"reminders": 0, "closed": 0}
        kinds = db.session.scalars(
            sa.select(Notification.kind).where(Notification.kind.like("info_reminder.%"))
        ).all()
        assert len(kinds) == 2
        expires = request.expires_at
        assert info_requests.sweep(expires + timedelta(seconds=1)) == {"reminders": 0, "closed": 1}
    referral = get_referral(app, reference)
    assert referral.status == "closed_no_response"


def test_upload_form_requires_csrf(app_config: dict[str, Any], app: Flask) -> None:
    account = make_user(app, "csrf-coord@program.test")
    staff = app.test_client()
    sign_in(app, staff, account)
    reference = make_referral(app, flow_report=False)
    _request(staff, reference, ["flow_report"])
    _subject, text = _email_for(app, reference)
    link = re.search(r"http://intake\.test(/upload/[A-Za-z0-9_-]+)", text)
    assert link
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    family = csrf_app.test_client()
    family.get(link.group(1))
    refused = family.post(
        "/upload",
        data={"doc_flow_cytometry": (__import__("io").BytesIO(tiny_pdf()), "flow.pdf")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400
    token = csrf_token(family.get("/upload").get_data(as_text=True))
    accepted = family.post(
        "/upload",
        data={
            "csrf_token": token,
            "doc_flow_cytometry": (__import__("io").BytesIO(tiny_pdf()), "flow.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert accepted.status_code == 303
