"""Decision 7 for admins: the banner of unacknowledged alerts on every staff page, the Alerts
page's Acknowledge actions (admin only, CSRF, audited), and what break-glass says it does."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import Alert, OutboxEvent
from intake.services import alerts
from tests.staff.helpers import (
    PASSWORD,
    Account,
    audit_count,
    csrf_token,
    make_referral,
    make_user,
    next_code,
    sign_in,
)

ALERTS_URL = "/coordinator/admin/alerts"
ACK_URL = "/coordinator/admin/alerts/acknowledge"


def _raise(app: Flask, key: str, message: str, code: str = "notification_failed") -> bool:
    with app.app_context():
        raised = alerts.raise_alert(code=code, dedupe_key=key, message=message)
        db.session.commit()
        return raised


def _alert(app: Flask, key: str) -> Alert:
    with app.app_context():
        alert = db.session.scalar(sa.select(Alert).where(Alert.dedupe_key == key))
        assert alert is not None
        db.session.expunge(alert)
        return alert


def _signed_in(app: Flask, account: Account) -> FlaskClient:
    client = app.test_client()
    sign_in(app, client, account)
    return client


def _banner(page: str) -> str | None:
    found = re.search(r'<aside class="alert-banner".*?</aside>', page, re.S)
    return html.unescape(found.group(0)) if found else None


@contextmanager
def _alert_queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements touching the alert table while the block runs."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if re.search(r"\bFROM alert\b", statement):
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


def test_banner_shows_admins_the_count_newest_text_and_link_and_nobody_else(app: Flask) -> None:
    admin = _signed_in(app, make_user(app, "banner-admin@program.test", role="admin"))
    coordinator = _signed_in(app, make_user(app, "banner-coord@program.test"))
    reviewer = _signed_in(app, make_user(app, "banner-rev@program.test", role="reviewer"))
    assert _banner(admin.get("/coordinator/").get_data(as_text=True)) is None  # none yet
    _raise(app, "test:older", "Email 'ack' for case 1 failed after 8 attempts.")
    _raise(app, "test:newer", "Task outbox.publish was dead-lettered after 5 attempts.")
    for url in ("/coordinator/", "/coordinator/metrics", "/coordinator/admin/users", ALERTS_URL):
        banner = _banner(admin.get(url).get_data(as_text=True))
        assert banner is not None, url
        assert "2 unacknowledged alerts" in banner
        assert "Task outbox.publish was dead-lettered" in banner  # the newest one's text
        assert "Email 'ack'" not in banner
        assert f'href="{ALERTS_URL}"' in banner
    for other in (coordinator, reviewer):
        page = other.get("/coordinator/metrics").get_data(as_text=True)
        assert page.startswith("<!doctype html>") and _banner(page) is None
        assert "unacknowledged" not in page


def test_the_banner_costs_one_query_for_admins_and_none_for_others(app: Flask) -> None:
    admin = _signed_in(app, make_user(app, "cost-admin@program.test", role="admin"))
    coordinator = _signed_in(app, make_user(app, "cost-coord@program.test"))
    _raise(app, "test:cost", "Document 7 failed its integrity check on download.")
    with _alert_queries(app) as seen:
        assert coordinator.get("/coordinator/").status_code == 200
    assert seen == []
    with _alert_queries(app) as seen:
        assert admin.get("/coordinator/").status_code == 200
    assert len(seen) == 1 and "acknowledged_at IS NULL" in seen[0]
    with app.app_context():
        # The banner's query has the partial index of unacknowledged alerts to read.
        indexes = {i["name"]: i for i in sa.inspect(db.engine).get_indexes("alert")}
        assert indexes["ix_alert_unacknowledged"]["column_names"] == ["id"]


def test_acknowledging_one_then_all_shown_clears_the_banner_records_who_and_audits(
    app: Flask,
) -> None:
    account = make_user(app, "ack-admin@program.test", role="admin")
    admin = _signed_in(app, account)
    for n in range(3):
        _raise(app, f"test:ack:{n}", f"Document {n} failed its integrity check on download.")
    first = _alert(app, "test:ack:0")
    before = audit_count(app, action="U", resource_type="alert")

    page = admin.get(ALERTS_URL).get_data(as_text=True)
    assert page.count("Acknowledge<span") == 3 and "Acknowledge all shown" in page
    done = admin.post(ACK_URL, data={"ids": str(first.id)})
    assert done.status_code == 303 and done.headers["Location"] == ALERTS_URL
    acknowledged = _alert(app, "test:ack:0")
    assert acknowledged.acknowledged_at is not None
    assert acknowledged.acknowledged_by_id == account.id
    assert _alert(app, "test:ack:1").acknowledged_at is None
    assert (
        audit_count(
            app,
            action="U",
            resource_type="alert",
            resource_id=str(first.id),
            detail="acknowledge",
            user_id=account.id,
        )
        == 1
    )
    page = admin.get(ALERTS_URL).get_data(as_text=True)
    assert "1 alert acknowledged." in page
    assert "2 unacknowledged alerts" in (_banner(page) or "")
    assert "by ack-admin@program.test" in page
    # Unacknowledged alerts come first; "all shown" posts exactly their ids.
    shown = re.search(r'name="ids" value="(\d+(?: \d+)+)"', page)
    assert shown is not None
    ids = shown.group(1).split()
    assert sorted(ids) == sorted(str(_alert(app, f"test:ack:{n}").id) for n in (1, 2))
    assert admin.post(ACK_URL, data={"ids": shown.group(1)}).status_code == 303
    page = admin.get(ALERTS_URL).get_data(as_text=True)
    assert _banner(page) is None and "2 alerts acknowledged." in page
    assert "Acknowledge all shown" not in page and "Acknowledge<span" not in page
    assert audit_count(app, action="U", resource_type="alert") == before + 3
    # Acknowledged already: kept as first recorded, no second audit row.
    again = admin.post(ACK_URL, data={"ids": str(first.id)}, follow_redirects=True)
    assert "acknowledged already" in again.get_data(as_text=True)
    assert _alert(app, "test:ack:0").acknowledged_at == acknowledged.acknowledged_at
    assert audit_count(app, action="U", resource_type="alert") == before + 3
    for bad in ("", "1;2", "x", " ".join(["1"] * 201)):
        assert admin.post(ACK_URL, data={"ids": bad}).status_code == 400


def test_acknowledging_is_for_admins_only(app: Flask) -> None:
    _raise(app, "test:only-admins", "Staff account 3 was locked after repeated failed sign-ins.")
    alert = _alert(app, "test:only-admins")
    for role in ("coordinator", "reviewer"):
        other = _signed_in(app, make_user(app, f"ack-{role}@program.test", role=role))
        assert other.post(ACK_URL, data={"ids": str(alert.id)}).status_code == 403
        assert other.get(ALERTS_URL).status_code == 403
    assert _alert(app, "test:only-admins").acknowledged_at is None
    assert audit_count(app, action="U", resource_type="alert") == 0
    anonymous = app.test_client().post(ACK_URL, data={"ids": str(alert.id)})
    assert anonymous.status_code == 302 and "/coordinator/login" in anonymous.headers["Location"]
    assert _alert(app, "test:only-admins").acknowledged_at is None


def test_acknowledging_needs_csrf(app_config: dict[str, Any], app: Flask) -> None:
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    account = make_user(app, "ack-csrf@program.test", role="admin")
    _raise(app, "test:csrf", "Task referrals.triage was dead-lettered after 5 attempts.")
    alert = _alert(app, "test:csrf")
    client = csrf_app.test_client()
    token = csrf_token(client.get("/coordinator/login").get_data(as_text=True))
    step = client.post(
        "/coordinator/login",
        data={"email": account.email, "password": PASSWORD, "csrf_token": token},
    )
    assert step.status_code == 302
    token = csrf_token(client.get("/coordinator/login/code").get_data(as_text=True))
    signed = client.post(
        "/coordinator/login/code", data={"code": next_code(app, account), "csrf_token": token}
    )
    assert signed.status_code == 302
    assert client.post(ACK_URL, data={"ids": str(alert.id)}).status_code == 400
    assert _alert(app, "test:csrf").acknowledged_at is None
    token = csrf_token(client.get(ALERTS_URL).get_data(as_text=True))
    done = client.post(ACK_URL, data={"ids": str(alert.id), "csrf_token": token})
    assert done.status_code == 303
    assert _alert(app, "test:csrf").acknowledged_at is not None


def test_a_repeat_of_an_acknowledged_alert_stays_acknowledged_a_new_window_is_new(
    app: Flask,
) -> None:
    """raise_alert dedupes per key for good: the key names one incident (see its docstring)."""
    account = make_user(app, "repeat-admin@program.test", role="admin")
    admin = _signed_in(app, account)
    key = "staff_account_locked:9:2026-12-01"
    assert _raise(app, key, "Staff account 9 was locked after repeated failed sign-ins.")
    assert admin.post(ACK_URL, data={"ids": str(_alert(app, key).id)}).status_code == 303
    assert not _raise(app, key, "Staff account 9 was locked after repeated failed sign-ins.")
    assert _banner(admin.get("/coordinator/").get_data(as_text=True)) is None
    tomorrow = "staff_account_locked:9:2026-12-02"
    assert _raise(app, tomorrow, "Staff account 9 was locked after repeated failed sign-ins.")
    assert "1 unacknowledged alert" in (
        _banner(admin.get("/coordinator/").get_data(as_text=True)) or ""
    )


def test_break_glass_says_what_happens_an_alert_for_the_admins_and_no_email(app: Flask) -> None:
    reference = make_referral(app)
    outsider = _signed_in(app, make_user(app, "glass-msg@program.test", queues=["second_opinion"]))
    admin = _signed_in(app, make_user(app, "glass-msg-admin@program.test", role="admin"))
    form = outsider.get("/coordinator/break-glass").get_data(as_text=True)
    assert "on-call" not in form and "an alert is raised for the admins" in form
    with app.app_context():
        outbox_before = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent))
    reason = "Family called the night line; their coordinator is off sick."
    granted = outsider.post(
        "/coordinator/break-glass",
        data={"reference": reference, "reason": reason},
        follow_redirects=True,
    )
    page = granted.get_data(as_text=True)
    assert "An alert has been raised for the admins and every view is recorded." in page
    assert "on-call" not in page
    with app.app_context():
        # What the message promises, and nothing more: no email is queued.
        outbox_after = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent))
        assert outbox_after == outbox_before
    banner = _banner(admin.get("/coordinator/").get_data(as_text=True)) or ""
    assert "1 unacknowledged alert" in banner and "glass-msg@program.test" in banner
    assert "night line" not in banner
