"""Time left under one business day in hours and minutes with the due clock time, in the queue
and on the case page: a P1 due at 17:00 today reads apart from a P2 due at 08:00 tomorrow."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import Referral
from tests.staff.helpers import get_referral, make_referral, make_user, sign_in

TUESDAY_10 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 New York
TUESDAY_17 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
WEDNESDAY_08 = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


@pytest.fixture
def coordinator(app: Flask, client: FlaskClient) -> object:
    account = make_user(app, "timeleft-coord@program.test")
    sign_in(app, client, account)
    return account


def _due(app: Flask, reference: str, due: datetime) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(Referral).where(Referral.reference == reference).values(review_due_at=due)
        )
        db.session.commit()


def _row(html: str, reference: str) -> str:
    shown = f"{reference[:4]}-{reference[4:8]}-{reference[8:]}"
    found = re.search(r"<tr[^>]*>(?:(?!</tr>).)*" + re.escape(shown) + r".*?</tr>", html, re.S)
    assert found, shown
    return found.group(0)


def test_queue_and_case_page_show_hours_and_the_due_time(
    app: Flask, client: FlaskClient, coordinator: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.config["PROGRAM_TZ"] == "America/New_York"
    p1 = make_referral(
        app, urgent=True, urgency_reason="Rising blasts", rising_peripheral_blasts="y"
    )
    p2 = make_referral(app)
    assert get_referral(app, p1).triage_priority == "P1"
    assert get_referral(app, p2).triage_priority == "P2"
    _due(app, p1, TUESDAY_17)
    _due(app, p2, WEDNESDAY_08)
    monkeypatch.setattr("intake.services.queue.now", lambda: TUESDAY_10)
    monkeypatch.setattr("intake.staff.case_views.now", lambda: TUESDAY_10)

    html = client.get("/coordinator/").get_data(as_text=True)
    assert "7 h left, due 17:00" in _row(html, p1)
    assert "7 h left, due tomorrow 08:00" in _row(html, p2)
    assert "1 d" not in _row(html, p1)

    page = client.get(f"/coordinator/referrals/{p1}").get_data(as_text=True)
    left = re.search(r'<span id="case-review-left"[^>]*>\(([^)]*)\)</span>', page)
    assert left and left.group(1) == "7 h left, due 17:00"
