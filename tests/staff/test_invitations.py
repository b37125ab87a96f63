"""Admins create accounts without choosing a password: the new account gets an invitation email
with a single-use link to set its own (ASVS: no admin-known initial passwords; HIPAA unique user
accountability), then enrols its second factor at the first sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.extensions import db
from intake.models import OutboxEvent, PasswordReset, User
from intake.services import auth, staff_mail
from tests.stack import SmtpServer
from tests.staff.helpers import (
    PASSWORD,
    Account,
    audit_count,
    csrf_token,
    make_user,
    next_code,
    sign_in,
)

NEW_PASSWORD = "Plum-Orchard-Lantern-77"
LINK = re.compile(r"http://intake\.test(/coordinator/login/reset/[A-Za-z0-9_-]+)")


@pytest.fixture
def mail_app(app: Flask, smtp: SmtpServer) -> Iterator[Flask]:
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    yield app


@pytest.fixture
def admin_client(mail_app: Flask) -> tuple[Account, FlaskClient]:
    admin = make_user(mail_app, "inviting-admin@program.test", role="admin")
    client = mail_app.test_client()
    sign_in(mail_app, client, admin)
    return admin, client


def _invite_events(app: Flask) -> list[list[Any]]:
    with app.app_context():
        return [
            list(args)
            for args in db.session.scalars(
                sa.select(OutboxEvent.args)
                .where(OutboxEvent.task_name == staff_mail.INVITE_TASK)
                .order_by(OutboxEvent.id)
            )
        ]


def _create(client: FlaskClient, email: str, **extra: str) -> str:
    response = client.post(
        "/coordinator/admin/users",
        data={"email": email, "role": "coordinator", "queues": "physician_referral", **extra},
    )
    # (The form refuses special-use domains such as .test, so these accounts use .org.)
    assert response.status_code == 303, response.get_data(as_text=True).split("New account")[-1]
    return client.get("/coordinator/admin/users").get_data(as_text=True)


def _account(app: Flask, email: str) -> User:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        db.session.expunge(user)
        return user


def _send(app: Flask, args: list[Any]) -> str:
    with app.test_request_context():
        return staff_mail.send_invite(int(args[0]), int(args[1]))


def _link_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)


def _url(app: Flask, reset_id: int) -> str:
    with app.test_request_context():
        reset = db.session.get(PasswordReset, reset_id)
        assert reset is not None
        return staff_mail.reset_url(reset).replace("http://intake.test", "")


def test_new_account_form_has_no_password_field(
    mail_app: Flask, admin_client: tuple[Account, FlaskClient]
) -> None:
    _admin, client = admin_client
    page = client.get("/coordinator/admin/users").get_data(as_text=True)
    new_account = page.split("<h2>New account</h2>", 1)[1]
    assert 'type="password"' not in new_account and 'name="password"' not in new_account
    assert "Initial password" not in page
    # A password smuggled into the POST is ignored: the account still has none.
    _create(client, "smuggled@hospital.org", password=PASSWORD)
    user = _account(mail_app, "smuggled@hospital.org")
    assert not auth.has_usable_password(user)
    assert user.password_hash.startswith(auth.UNUSABLE_HASH_PREFIX)
    with mail_app.app_context():
        assert auth.check_password(user.email, PASSWORD).status == "invalid"


class _CountingHasher:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.verified = 0

    def verify(self, password_hash: str, password: str) -> bool:
        # Only a real argon2 hash costs time; an unusable one would fail at once.
        self.verified += password_hash.startswith("$argon2id$")
        return bool(self.real.verify(password_hash, password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_an_account_without_a_password_cannot_sign_in(
    mail_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mail_app.app_context():
        # Refusing costs a real argon2 check, so timing does not tell invited accounts apart.
        counting = _CountingHasher(auth._hasher)
        monkeypatch.setattr(auth, "_hasher", counting)
        ghost = auth.create_user("ghost@program.test", "coordinator")
        assert auth.check_password(ghost.email, PASSWORD).status == "invalid"
        assert counting.verified == 1
        user = auth.create_user("nopass@program.test", "coordinator")
        assert not auth.has_usable_password(user)
        other = auth.create_user("nopass2@program.test", "coordinator")
        assert user.password_hash != other.password_hash  # random, not a shared marker
        for guess in ("", PASSWORD, user.password_hash, user.password_hash[1:], "!"):
            # Failures count (and lock) as for any account.
            assert auth.check_password(user.email, guess).status in ("invalid", "locked")
    anyone = mail_app.test_client()
    refused = anyone.post(
        "/coordinator/login", data={"email": "nopass@program.test", "password": PASSWORD}
    )
    assert refused.status_code == 401


def test_invitation_email_link_sets_the_password_once_then_totp_enrolment(
    mail_app: Flask, admin_client: tuple[Account, FlaskClient], smtp: SmtpServer
) -> None:
    admin, client = admin_client
    page = _create(client, "newcomer@hospital.org", display_name="New Comer")
    assert "invitation emailed" in page and "newcomer@hospital.org" in page
    assert "first sign-in." in page
    user = _account(mail_app, "newcomer@hospital.org")
    assert "invited, no password set yet" in page and 'value="invite"' in page
    # Before the invitation is used nobody can sign in, with any password.
    for guess in (PASSWORD, NEW_PASSWORD):
        assert (
            mail_app.test_client()
            .post("/coordinator/login", data={"email": user.email, "password": guess})
            .status_code
            == 401
        )
    # Exactly one invitation, queued in the request (a worker sends it), naming the admin.
    [args] = _invite_events(mail_app)
    assert int(args[1]) == admin.id
    assert smtp.messages == []
    assert _send(mail_app, args) == "sent"
    assert _send(mail_app, args) == "skipped"  # a redelivered task sends nothing twice
    [message] = smtp.messages
    assert message["To"] == "newcomer@hospital.org"
    assert "set your password" in str(message["Subject"])
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    words = " ".join(text.get_content().split())
    assert f"An account was created for you on the {mail_app.config['PROGRAM_NAME']}" in words
    assert "The link works once and expires in 72 hours." in words
    assert admin.email in words and mail_app.config["PROGRAM_PHONE"] in words
    link = _link_of(message)
    assert link in html.get_content()
    assert audit_count(mail_app, action="C", resource_id=str(user.id), user_id=admin.id) == 1
    assert audit_count(mail_app, detail="invite_sent", resource_id=str(user.id)) == 1

    browser = mail_app.test_client()
    opened = browser.get(link)
    assert opened.status_code == 303
    assert opened.headers["Location"] == "/coordinator/login/reset/new"
    form = browser.get("/coordinator/login/reset/new").get_data(as_text=True)
    assert "<h1>Set your password</h1>" in form
    done = browser.post(
        "/coordinator/login/reset/new", data={"password": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/coordinator/login"
    assert "Your password is set" in browser.get("/coordinator/login").get_data(as_text=True)
    assert audit_count(mail_app, detail="password_set", user_id=user.id) == 1
    # The link works once.
    assert mail_app.test_client().get(link).status_code == 410
    # Now the owner signs in and enrols the second factor, as for any new account.
    fresh = mail_app.test_client()
    step = fresh.post("/coordinator/login", data={"email": user.email, "password": NEW_PASSWORD})
    assert step.status_code == 302
    assert step.headers["Location"].endswith("/coordinator/login/enrol")
    assert fresh.get("/coordinator/login/enrol").status_code == 200
    # With a password set, the account is no longer offered an invitation.
    after = client.get("/coordinator/admin/users").get_data(as_text=True)
    assert "invited, no password set yet" not in after


def test_sending_the_invitation_again_spends_the_older_link(
    mail_app: Flask, admin_client: tuple[Account, FlaskClient], smtp: SmtpServer
) -> None:
    admin, client = admin_client
    _create(client, "slowpoke@hospital.org")
    user = _account(mail_app, "slowpoke@hospital.org")
    [first] = _invite_events(mail_app)
    assert _send(mail_app, first) == "sent"
    old_link = _link_of(smtp.messages[0])
    again = client.post(f"/coordinator/admin/users/{user.id}", data={"action": "invite"})
    assert again.status_code == 303
    assert "earlier links no longer work" in client.get("/coordinator/admin/users").get_data(
        as_text=True
    )
    assert audit_count(mail_app, detail="invite_resent", user_id=admin.id) == 1
    first_args, second_args = _invite_events(mail_app)
    assert first_args == first
    # The first task, if it only runs now, sends nothing: its link is spent.
    assert _send(mail_app, first) == "skipped"
    assert _send(mail_app, second_args) == "sent"
    assert mail_app.test_client().get(old_link).status_code == 410
    new_link = _link_of(smtp.messages[-1])
    assert new_link != old_link
    assert mail_app.test_client().get(new_link).status_code == 303


def test_no_invitation_for_an_account_that_has_a_password(
    mail_app: Flask, admin_client: tuple[Account, FlaskClient]
) -> None:
    _admin, client = admin_client
    veteran = make_user(mail_app, "veteran@program.test")
    page = client.get("/coordinator/admin/users").get_data(as_text=True)
    row = page.split("veteran@program.test", 1)[1].split("</tr>", 1)[0]
    assert 'value="invite"' not in row
    refused = client.post(f"/coordinator/admin/users/{veteran.id}", data={"action": "invite"})
    assert refused.status_code == 303
    assert "no invitation sent" in client.get("/coordinator/admin/users").get_data(as_text=True)
    assert _invite_events(mail_app) == []
    # A deactivated invited account gets no invitation either.
    _create(client, "leaver@hospital.org")
    leaver = _account(mail_app, "leaver@hospital.org")
    client.post(f"/coordinator/admin/users/{leaver.id}", data={"action": "deactivate"})
    client.post(f"/coordinator/admin/users/{leaver.id}", data={"action": "invite"})
    [only] = _invite_events(mail_app)
    assert _send(mail_app, only) == "skipped"


def test_an_expired_invitation_is_refused(
    mail_app: Flask, admin_client: tuple[Account, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _admin, client = admin_client
    mail_app.config["INVITE_HOURS"] = 5
    _create(client, "late@hospital.org")
    [args] = _invite_events(mail_app)
    with mail_app.app_context():
        reset = db.session.get(PasswordReset, int(args[0]))
        assert reset is not None
        assert reset.expires_at - reset.created_at == timedelta(hours=5)
        last_moment = reset.expires_at - timedelta(seconds=1)
        later = reset.expires_at + timedelta(seconds=1)
    link = _url(mail_app, int(args[0]))
    monkeypatch.setattr(auth, "_clock", lambda: last_moment)
    assert mail_app.test_client().get(link).status_code == 303
    monkeypatch.setattr(auth, "_clock", lambda: later)
    assert mail_app.test_client().get(link).status_code == 410
    assert _send(mail_app, args) == "skipped"  # a task that ran too late sends a dead link
    user = _account(mail_app, "late@hospital.org")
    assert not auth.has_usable_password(user)


def test_invite_hours_is_configurable_and_a_reset_stays_short() -> None:
    from intake.config import load_config

    assert load_config({})["INVITE_HOURS"] == 72
    assert load_config({"INVITE_HOURS": "24"})["INVITE_HOURS"] == 24
    assert staff_mail.RESET_MINUTES == 30


def test_the_invitation_task_is_registered_under_the_outbox_name() -> None:
    from workers.account_tasks import staff_invite

    assert staff_invite.name == staff_mail.INVITE_TASK


def test_the_resend_button_needs_csrf(app_config: dict[str, Any], mail_app: Flask) -> None:
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    admin = make_user(mail_app, "csrf-admin@program.test", role="admin")
    with mail_app.app_context():
        invited = auth.create_user("csrf-invited@program.test", "coordinator")
        invited_id = invited.id
    client = csrf_app.test_client()
    token = csrf_token(client.get("/coordinator/login").get_data(as_text=True))
    step = client.post(
        "/coordinator/login",
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert step.status_code == 302
    token = csrf_token(client.get("/coordinator/login/code").get_data(as_text=True))
    signed = client.post(
        "/coordinator/login/code",
        data={"code": next_code(mail_app, admin), "csrf_token": token},
    )
    assert signed.status_code == 302
    url = f"/coordinator/admin/users/{invited_id}"
    assert client.post(url, data={"action": "invite"}).status_code in (400, 404)
    assert _invite_events(mail_app) == []
    token = csrf_token(client.get("/coordinator/admin/users").get_data(as_text=True))
    sent = client.post(url, data={"action": "invite", "csrf_token": token})
    assert sent.status_code == 303
    assert len(_invite_events(mail_app)) == 1
