"""Emails about a staff member's own account, through a real SMTP server: the new sign-in
notice (H-9) and the single-use, expiring password-reset link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import OutboxEvent, PasswordReset, StaffSession
from intake.services import auth, staff_mail
from tests.stack import SmtpServer
from tests.staff.helpers import PASSWORD, audit_count, make_user, next_code, sign_in

NEW_PASSWORD = "Plum-Orchard-Lantern-77"


@pytest.fixture
def mail_app(app: Flask, smtp: SmtpServer) -> Iterator[Flask]:
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    yield app


def _events(app: Flask, task: str) -> list[list[Any]]:
    with app.app_context():
        return [
            list(args)
            for args in db.session.scalars(
                sa.select(OutboxEvent.args).where(OutboxEvent.task_name == task)
            )
        ]


def test_every_sign_in_is_notified_to_the_account_once(
    mail_app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    user = make_user(mail_app, "notice@program.test")
    sign_in(mail_app, client, user)
    events = _events(mail_app, staff_mail.SIGNIN_TASK)
    assert len(events) == 1  # queued with the sign-in, sent by a worker
    session_id = int(events[0][0])
    with mail_app.test_request_context():
        assert staff_mail.send_signin_notice(session_id) == "sent"
        assert staff_mail.send_signin_notice(session_id) == "skipped"
        record = db.session.get(StaffSession, session_id)
        assert record is not None and record.notice_sent_at is not None
    [message] = smtp.messages
    assert message["To"] == "notice@program.test"
    assert "New sign-in" in str(message["Subject"])
    assert "127.0.0.1" in message.get_content()


def test_password_reset_link_is_single_use_and_ends_every_session(
    mail_app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    user = make_user(mail_app, "forgetful@program.test")
    signed_in = mail_app.test_client()
    sign_in(mail_app, signed_in, user)
    # Unknown addresses get the same answer and no email.
    anyone = mail_app.test_client()
    unknown = anyone.post("/coordinator/login/reset", data={"email": "nobody@program.test"})
    known = anyone.post("/coordinator/login/reset", data={"email": user.email})
    assert unknown.status_code == known.status_code == 200
    assert unknown.get_data(as_text=True) == known.get_data(as_text=True)
    [[reset_id]] = _events(mail_app, staff_mail.RESET_TASK)
    with mail_app.test_request_context():
        assert staff_mail.send_reset(int(reset_id)) == "sent"
        assert staff_mail.send_reset(int(reset_id)) == "skipped"
        stored = db.session.get(PasswordReset, int(reset_id))
        assert stored is not None and stored.token_hash
    [message] = [m for m in smtp.messages if "Reset" in str(m["Subject"])]
    pattern = r"http://intake\.test(/coordinator/login/reset/[A-Za-z0-9_-]+)"
    link = re.search(pattern, message.get_content())
    assert link and link.group(1).rsplit("/", 1)[1] not in stored.token_hash

    browser = mail_app.test_client()
    opened = browser.get(link.group(1))
    assert opened.status_code == 303
    assert opened.headers["Location"] == "/coordinator/login/reset/new"  # the token left the URL
    weak = browser.post(
        "/coordinator/login/reset/new", data={"password": "password1234", "again": "password1234"}
    )
    assert weak.status_code == 400 and "too common" in weak.get_data(as_text=True)
    done = browser.post(
        "/coordinator/login/reset/new", data={"password": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/coordinator/login"
    # Single use; and whoever was signed in (maybe the attacker) is out.
    assert mail_app.test_client().get(link.group(1)).status_code == 410
    assert signed_in.get("/coordinator/").status_code == 302
    assert audit_count(mail_app, detail="password_reset", user_id=user.id) == 1
    # The old password no longer works; the new one does, still with the second factor.
    old = anyone.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    assert old.status_code == 401
    fresh = mail_app.test_client()
    step = fresh.post("/coordinator/login", data={"email": user.email, "password": NEW_PASSWORD})
    assert step.headers["Location"].endswith("/coordinator/login/code")
    second = fresh.post("/coordinator/login/code", data={"code": next_code(mail_app, user)})
    assert second.status_code == 302


def test_password_reset_link_expires(mail_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user(mail_app, "slow@program.test")
    mail_app.test_client().post("/coordinator/login/reset", data={"email": user.email})
    [[reset_id]] = _events(mail_app, staff_mail.RESET_TASK)
    with mail_app.test_request_context():
        reset = db.session.get(PasswordReset, int(reset_id))
        assert reset is not None
        link = staff_mail.reset_url(reset).replace("http://intake.test", "")
        later = reset.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(auth, "_clock", lambda: later)
    assert mail_app.test_client().get(link).status_code == 410


def test_completing_a_reset_spends_every_other_link_of_the_user(mail_app: Flask) -> None:
    user = make_user(mail_app, "twice@program.test")
    other = make_user(mail_app, "bystander@program.test")
    anyone = mail_app.test_client()
    for email in (user.email, user.email, other.email):
        anyone.post("/coordinator/login/reset", data={"email": email})
    first, second, theirs = sorted(
        int(args[0]) for args in _events(mail_app, staff_mail.RESET_TASK)
    )
    with mail_app.test_request_context():
        links = {
            ident: staff_mail.reset_url(reset).replace("http://intake.test", "")
            for ident in (first, second, theirs)
            if (reset := db.session.get(PasswordReset, ident)) is not None
        }
        staff_mail.complete_reset(first, NEW_PASSWORD)
        assert staff_mail.usable_reset(second) is None
        assert staff_mail.usable_reset(theirs) is not None  # another user's link is untouched
    assert mail_app.test_client().get(links[second]).status_code == 410
    assert mail_app.test_client().get(links[theirs]).status_code == 303


def test_a_locked_account_is_told_by_email_once(mail_app: Flask, smtp: SmtpServer) -> None:
    user = make_user(mail_app, "locked@program.test")
    anyone = mail_app.test_client()
    for _ in range(mail_app.config["LOGIN_MAX_FAILURES"]):
        anyone.post("/coordinator/login", data={"email": user.email, "password": "not-it-at-all"})
    [[user_id, day]] = _events(mail_app, staff_mail.LOCKOUT_TASK)
    with mail_app.test_request_context():
        assert staff_mail.send_lockout_notice(int(user_id), str(day)) == "sent"
        assert staff_mail.send_lockout_notice(int(user_id), str(day)) == "skipped"
    [message] = smtp.messages
    assert message["To"] == "locked@program.test"
    assert "locked" in str(message["Subject"])
    body = message.get_content()
    assert "http://intake.test/coordinator/login/reset" in body
    assert f"{mail_app.config['LOGIN_LOCKOUT_MINUTES']} minutes" in body


def _security_notices(app: Flask, smtp: SmtpServer) -> dict[str, str]:
    """Send every queued security notice twice (the second is skipped); subject → body."""
    with app.test_request_context():
        for [event_id] in _events(app, staff_mail.SECURITY_TASK):
            assert staff_mail.send_security_notice(int(event_id)) == "sent"
            assert staff_mail.send_security_notice(int(event_id)) == "skipped"
    return {
        str(m["Subject"]): m.get_content()
        for m in smtp.messages
        if "sign-in" not in str(m["Subject"]).lower()
    }


def test_changes_to_how_an_account_signs_in_are_notified_to_its_owner_once(
    mail_app: Flask, smtp: SmtpServer
) -> None:
    # H-9 (ASVS 2.5.5): enrolment, new recovery codes, a recovery code used, an admin's reset.
    user = make_user(mail_app, "owner@program.test", enrolled=False)
    client = mail_app.test_client()
    client.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    client.get("/coordinator/login/enrol")
    client.post("/coordinator/login/enrol", data={"code": next_code(mail_app, user)})
    page = client.post("/coordinator/account/recovery-codes").get_data(as_text=True)
    codes = re.findall(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>", page)
    other = mail_app.test_client()
    other.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    assert other.post("/coordinator/login/code", data={"code": codes[0]}).status_code == 302

    admin = make_user(mail_app, "owner-admin@program.test", role="admin")
    as_admin = mail_app.test_client()
    sign_in(mail_app, as_admin, admin)
    reset = as_admin.post(f"/coordinator/admin/users/{user.id}", data={"action": "reset_totp"})
    assert reset.status_code == 303

    # One audit row per change, by whoever made it, each with its notice queued beside it.
    for detail, by in (
        ("totp_enrolled", user.id),
        ("recovery_codes_new", user.id),
        ("recovery_code_used", user.id),
        ("reset_totp", admin.id),
    ):
        assert audit_count(mail_app, detail=detail, user_id=by) == 1, detail
        assert audit_count(mail_app, detail=detail) == 1, detail
    sent = _security_notices(mail_app, smtp)
    assert set(sent) == {
        "An authenticator app was set up for your coordinator account",
        "New recovery codes were made for your coordinator account",
        "A recovery code was used to sign in to your coordinator account",
        "Your coordinator account's second factor was reset",
    }
    assert "An administrator (owner-admin@program.test) reset" in " ".join(
        sent["Your coordinator account's second factor was reset"].split()
    )
    for message in smtp.messages:
        assert message["To"] == "owner@program.test"
    for body in sent.values():
        assert "/coordinator/login/reset" in body and "When:" in body


def test_a_changed_password_is_notified_but_a_first_one_is_not(
    mail_app: Flask, smtp: SmtpServer
) -> None:
    user = make_user(mail_app, "changer@program.test")
    anyone = mail_app.test_client()
    anyone.post("/coordinator/login/reset", data={"email": user.email})
    [[reset_id]] = _events(mail_app, staff_mail.RESET_TASK)
    with mail_app.test_request_context():
        staff_mail.complete_reset(int(reset_id), NEW_PASSWORD)
    assert len(_events(mail_app, staff_mail.SECURITY_TASK)) == 1
    sent = _security_notices(mail_app, smtp)
    assert list(sent) == ["Your coordinator account's password was changed"]

    # An invited account setting its first password is not a change to tell anyone of.
    with mail_app.test_request_context():
        invited = auth.create_user("invited@program.test", "coordinator")
        admin = auth.create_user("inviter@program.test", "admin", PASSWORD)
        link = staff_mail.invite(invited, admin)
        staff_mail.complete_reset(link.id, NEW_PASSWORD)
    assert len(_events(mail_app, staff_mail.SECURITY_TASK)) == 1
