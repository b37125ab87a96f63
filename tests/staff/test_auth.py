"""Accounts and sign-in: passwords, TOTP, lockout, server-side sessions, safe redirects."""

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
from intake.models import Alert, OutboxEvent, StaffSession, User
from intake.services import auth
from tests.staff.helpers import (
    PASSWORD,
    audit_count,
    csrf_token,
    make_user,
    next_code,
    sign_in,
    wrong_code,
)


class Clock:
    def __init__(self) -> None:
        self.now = auth.utcnow()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A controllable clock for the auth service (sessions, lockout, TOTP steps)."""
    controlled = Clock()
    monkeypatch.setattr(auth, "_clock", lambda: controlled.now)
    return controlled


def _staff_rules(app: Flask) -> list[tuple[str, str]]:
    rules = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/coordinator") or rule.endpoint in (
            "staff.login",
            "staff.second_factor",
            "staff.enrol",
            "staff.logout",
            # Password reset works without a session (the emailed link is the credential).
            "staff.reset_request",
            "staff.reset_link",
            "staff.reset_password",
        ):
            continue
        # Any URL variable, whatever its name or converter, gets a value the converter accepts.
        url = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: "1" if m.group(1) in ("int", "float") else "ABCDEFGHJK0",
            rule.rule,
        )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rules.append((method, url))
    return rules


def _session_record(app: Flask, user_id: int) -> StaffSession:
    with app.app_context():
        record = db.session.query(StaffSession).filter_by(user_id=user_id).one()
        db.session.expunge(record)
        return record


def test_every_staff_route_refuses_anonymous_users(app: Flask, client: FlaskClient) -> None:
    rules = _staff_rules(app)
    # The list comes from the app's URL map, so a route added later is covered too.
    assert len(rules) >= 12
    assert not [url for _method, url in rules if "<" in url]
    for method, url in rules:
        response = client.open(url, method=method)
        assert response.status_code == 302, (method, url)
        assert "/coordinator/login" in response.headers["Location"], (method, url)


def test_password_policy_refuses_short_and_common_passwords(app: Flask) -> None:
    with app.app_context():
        assert auth.password_problem("short-pass") is not None
        assert auth.password_problem("password1234") is not None
        assert auth.password_problem("Password2026!!") is not None
        assert auth.password_problem("aaaaaaaaaaaaaaaa") is not None
        assert auth.password_problem("nurse.jones-secret", "nurse.jones@x.org") is not None
        assert auth.password_problem(PASSWORD) is None
        assert auth.password_problem("Correct-Horse-Battery-" * 5) is None  # 110 characters
        assert auth.password_problem("Correct-Horse-Battery-" * 6) is not None  # 132 > 128
        with pytest.raises(auth.AccountError):
            auth.create_user("a@program.test", "coordinator", "qwertyuiop123")
        user = auth.create_user("b@program.test", "coordinator", PASSWORD)
        assert user.password_hash.startswith("$argon2id$")


def test_cli_creates_account_with_password_from_stdin(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "--email", "Lead@Program.test", "--role", "admin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    refused = runner.invoke(
        args=["users", "create", "--email", "x@program.test", "--role", "admin"],
        input="password1234\n",
    )
    assert refused.exit_code != 0
    with app.app_context():
        user = auth.find_user("lead@program.test")
        assert user is not None and user.role == "admin"


def test_demo_admin_only_in_development(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "ensure-demo"])
    assert result.exit_code == 0, result.output
    assert "users create --email" in result.output
    app.config["INTAKE_ENV"] = "production"
    refused = runner.invoke(args=["users", "ensure-demo"])
    assert refused.exit_code != 0
    assert "production" in refused.output
    # Nor invented cases in a live queue.
    refused = runner.invoke(args=["demo-data", "--count", "3"])
    assert refused.exit_code != 0 and "refusing to load demo cases in production" in refused.output
    with app.app_context():
        from intake.models import Referral

        assert db.session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


def test_make_run_welcome_explains_first_admin_and_demo_only_in_development(app: Flask) -> None:
    """`make run` calls `users welcome`: the hint always, a demo admin only in development."""
    from intake.staff.cli import DEMO_EMAIL, DEMO_PASSWORD

    runner = app.test_cli_runner()
    app.config["INTAKE_ENV"] = "production"
    production = runner.invoke(args=["users", "welcome"])
    assert production.exit_code == 0, production.output
    assert "users create --email" in production.output and DEMO_PASSWORD not in production.output
    with app.app_context():
        assert auth.find_user(DEMO_EMAIL) is None
    app.config["INTAKE_ENV"] = "development"
    development = runner.invoke(args=["users", "welcome"])
    assert development.exit_code == 0, development.output
    assert "users create --email" in development.output
    assert DEMO_EMAIL in development.output and DEMO_PASSWORD in development.output
    with app.app_context():
        demo = auth.find_user(DEMO_EMAIL)
        assert demo is not None and demo.is_demo and demo.role == "admin"
    # Production refuses to start while the demo account is active.
    app.config["INTAKE_ENV"] = "production"
    refused = runner.invoke(args=["users", "welcome"])
    assert refused.exit_code != 0 and "demo account" in refused.output


def test_demo_admin_cannot_sign_in_in_production(app: Flask, client: FlaskClient) -> None:
    app.test_cli_runner().invoke(args=["users", "ensure-demo"])
    app.config["INTAKE_ENV"] = "production"
    from intake.staff.cli import DEMO_EMAIL, DEMO_PASSWORD

    response = client.post(
        "/coordinator/login", data={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 401


def test_sign_in_with_password_and_totp_then_sign_out(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "coord@program.test")
    assert client.get("/coordinator/").status_code == 302
    client.get("/coordinator/login")
    before = client.get_cookie("session")
    sign_in(app, client, user)
    after = client.get_cookie("session")
    assert after is not None and (before is None or before.value != after.value)
    page = client.get("/coordinator/")
    assert page.status_code == 200
    assert "Work queue" in page.get_data(as_text=True)
    assert client.post("/coordinator/logout").status_code == 302
    assert client.get("/coordinator/").status_code == 302
    record = _session_record(app, user.id)
    assert record.ended_at is not None and record.end_reason == "signed_out"
    assert audit_count(app, action="login", user_id=user.id) == 1
    assert audit_count(app, action="logout", user_id=user.id) == 1


def test_each_sign_in_gets_a_new_server_session(app: Flask, clock: Clock) -> None:
    user = make_user(app, "twice@program.test")
    first, second = app.test_client(), app.test_client()
    sign_in(app, first, user)
    clock.advance(seconds=31)
    sign_in(app, second, user)
    with app.app_context():
        hashes = {s.token_hash for s in db.session.query(StaffSession).filter_by(user_id=user.id)}
    assert len(hashes) == 2


def test_session_cookie_flags(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "flags@program.test")
    response = client.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_is_secure_outside_development(
    app_config: dict[str, Any], app: Flask
) -> None:
    production = create_app(
        {
            **app_config,
            "INTAKE_ENV": "production",
            "MAIL_PAGE_ENABLED": False,
            "SECRET_KEY": "a-real-production-secret-0123456789",
            "UPLOAD_ENCRYPTION_KEY": "11" * 32,
        }
    )
    user = make_user(app, "secure@program.test")
    client = production.test_client()
    plain = client.get("/coordinator/login")
    assert plain.status_code in (301, 302) and plain.headers["Location"].startswith("https://")
    response = client.post(
        "/coordinator/login",
        data={"email": user.email, "password": PASSWORD},
        base_url="https://intake.test",
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie, flag
    assert cookie.startswith("__Host-session=") and "Domain" not in cookie
    # The prefixed cookie carries the session: the second-factor step finds the password step.
    step = client.get(response.headers["Location"], base_url="https://intake.test")
    assert step.status_code == 200, response.headers["Location"]
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    with production.app_context():
        db.session.remove()
        db.engine.dispose()


def test_enrolment_shows_inline_qr_and_confirms_code(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "new@program.test", enrolled=False)
    response = client.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    assert response.headers["Location"].endswith("/coordinator/login/enrol")
    page = client.get("/coordinator/login/enrol")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in html and "<img" not in html
    assert "https://" not in html
    wrong = client.post("/coordinator/login/enrol", data={"code": wrong_code(app, user)})
    assert wrong.status_code == 401
    ok = client.post("/coordinator/login/enrol", data={"code": next_code(app, user)})
    assert ok.status_code == 302
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored is not None and stored.totp_enrolled_at is not None
    assert client.get("/coordinator/").status_code == 200


def test_recovery_codes_after_enrolment_each_work_once(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "lost-phone@program.test", enrolled=False)
    client.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    client.get("/coordinator/login/enrol")
    enrolled = client.post("/coordinator/login/enrol", data={"code": next_code(app, user)})
    assert enrolled.headers["Location"] == "/coordinator/account/recovery-codes"
    page = client.post("/coordinator/account/recovery-codes")
    html = page.get_data(as_text=True)
    codes = re.findall(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>", html)
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored is not None and len(stored.recovery_code_hashes) == 10
        assert not set(codes) & set(stored.recovery_code_hashes)  # only hashes are kept
    client.post("/coordinator/logout")

    def second_step(code: str) -> int:
        other = app.test_client()
        other.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
        return other.post("/coordinator/login/code", data={"code": code}).status_code

    assert second_step(codes[0].lower()) == 302  # typed in lower case: still accepted
    assert second_step(codes[0]) == 401  # used up
    assert second_step("ABCDE-FGHJK") == 401
    assert audit_count(app, detail="recovery_code_used", user_id=user.id) == 1
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored is not None and len(stored.recovery_code_hashes) == 9


def test_lockout_after_repeated_failures_looks_like_an_unknown_email(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    clock.now = clock.now.replace(hour=12)  # the whole test within one day
    user = make_user(app, "lock@program.test")

    def attempt(email: str, password: str) -> tuple[int, str]:
        response = client.post("/coordinator/login", data={"email": email, "password": password})
        return response.status_code, response.get_data(as_text=True).replace(email, "EMAIL")

    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert attempt(user.email, "wrong-password-1")[0] == 401
        assert attempt("nobody@program.test", "wrong-password-1")[0] == 401
    # Locked now, yet the right password gets the very page an unknown email gets.
    locked = attempt(user.email, PASSWORD)
    unknown = attempt("nobody@program.test", PASSWORD)
    assert locked[0] == unknown[0] == 401
    assert locked[1] == unknown[1]
    assert "Too many failed attempts" not in locked[1]
    assert audit_count(app, action="login_failure", user_id=user.id) >= 6
    # The owner and the administrators are told instead: one alert and one email a day.
    # A second lockout the same day adds neither.
    clock.advance(minutes=app.config["LOGIN_LOCKOUT_MINUTES"] + 1)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        attempt(user.email, "wrong-password-1")
    assert attempt(user.email, PASSWORD) == unknown
    with app.app_context():
        alerts = db.session.scalars(
            sa.select(Alert).where(Alert.code == "staff_account_locked")
        ).all()
        assert [alert.dedupe_key.rsplit(":", 1)[0] for alert in alerts] == [
            f"staff_account_locked:{user.id}"
        ]
        assert "lock@program.test" not in alerts[0].message
        events = db.session.scalars(
            sa.select(OutboxEvent.args).where(OutboxEvent.task_name == auth.LOCKOUT_NOTICE_TASK)
        ).all()
        assert [list(args)[0] for args in events] == [user.id]
    clock.advance(minutes=app.config["LOGIN_LOCKOUT_MINUTES"] + 1)
    sign_in(app, client, user)
    assert client.get("/coordinator/").status_code == 200


def test_sign_in_is_throttled_per_client_with_retry_after(app_config: dict[str, Any]) -> None:
    """Anti-automation before the per-account lockout: too many sign-in posts get 429."""
    limited = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "LOGIN_RATE_LIMIT": "3 per minute",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    client = limited.test_client()
    codes = [
        client.post(
            "/coordinator/login", data={"email": f"nobody{n}@program.test", "password": "x" * 12}
        ).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    last = client.post("/coordinator/login", data={"email": "a@program.test", "password": "x"})
    assert last.status_code == 429 and int(last.headers["Retry-After"]) > 0
    # The code step has its own budget.
    codes = [
        client.post("/coordinator/login/code", data={"code": "123456"}).status_code
        for _ in range(4)
    ]
    assert codes[-1] == 429
    assert client.get("/coordinator/login").status_code == 200  # reading the page is not limited
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def test_sign_in_fails_closed_while_the_limit_store_is_down(
    app_config: dict[str, Any], app: Flask
) -> None:
    """Decision traps: with Redis (the limiter's shared store) unreachable, sign-in attempts
    are refused with a clear 503 rather than counted per process; public pages still answer."""
    from intake.extensions import limiter
    from tests.services import free_port

    user = make_user(app, "store-down@program.test")
    unreachable = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0",
        }
    )
    client = unreachable.test_client()
    try:
        assert client.get("/coordinator/login").status_code == 200  # reading is not limited
        refused = client.post(
            "/coordinator/login", data={"email": user.email, "password": PASSWORD}
        )
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "60"
        assert "Sign-in is unavailable for a few minutes" in refused.get_data(as_text=True)
        # The password was not even checked: no second step is waiting.
        assert client.get("/coordinator/login/code").headers["Location"] == "/coordinator/login"
        assert client.post("/coordinator/login/code", data={"code": "1"}).status_code == 503
        # A family's page is not refused for it (the limiter falls back to memory there).
        assert client.get("/status").status_code == 200
    finally:
        # One Limiter serves every app in this process: leave it as the next test expects.
        limiter._storage_dead = False
        with unreachable.app_context():
            db.session.remove()
            db.engine.dispose()


def test_wrong_totp_codes_also_lock(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "codes@program.test")
    client.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        code = wrong_code(app, user)
        assert client.post("/coordinator/login/code", data={"code": code}).status_code == 401
    good = client.post("/coordinator/login/code", data={"code": next_code(app, user)})
    assert good.status_code == 401


def test_totp_code_cannot_be_reused(app: Flask, clock: Clock) -> None:
    user = make_user(app, "reuse@program.test")
    code = next_code(app, user)
    first = app.test_client()
    first.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    assert first.post("/coordinator/login/code", data={"code": code}).status_code == 302
    second = app.test_client()
    second.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    replay = second.post("/coordinator/login/code", data={"code": code})
    assert replay.status_code == 401
    assert second.get("/coordinator/").status_code == 302


def test_session_ends_after_15_minutes_idle(app: Flask, client: FlaskClient, clock: Clock) -> None:
    user = make_user(app, "idle@program.test")
    sign_in(app, client, user)
    clock.advance(minutes=14)
    assert client.get("/coordinator/").status_code == 200
    clock.advance(minutes=14)  # the request above reset the idle clock
    assert client.get("/coordinator/").status_code == 200
    clock.advance(minutes=15, seconds=1)
    response = client.get("/coordinator/")
    assert response.status_code == 302
    assert "/coordinator/login" in response.headers["Location"]
    assert _session_record(app, user.id).end_reason == "idle"
    # Coming back does not revive it.
    clock.advance(seconds=1)
    assert client.get("/coordinator/").status_code == 302


def test_session_ends_after_12_hours_in_all(app: Flask, client: FlaskClient, clock: Clock) -> None:
    user = make_user(app, "long@program.test")
    sign_in(app, client, user)
    for _ in range(12 * 6):
        clock.advance(minutes=10)
        assert client.get("/coordinator/login").status_code in (200, 302)
    clock.advance(minutes=1)
    assert client.get("/coordinator/").status_code == 302
    assert _session_record(app, user.id).end_reason == "absolute"


def test_exports_and_account_changes_need_a_recent_password(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    admin = make_user(app, "reauth@program.test", role="admin")
    sign_in(app, client, admin)
    export = "/coordinator/metrics/export.csv"
    assert client.get(export).status_code == 200  # the sign-in itself is recent proof
    clock.advance(minutes=6)
    stale = client.get(export)
    assert stale.status_code == 302
    assert stale.headers["Location"].startswith("/coordinator/confirm?next=")
    change = client.post(f"/coordinator/admin/users/{admin.id}", data={"action": "reset_totp"})
    assert change.status_code == 302 and "/coordinator/confirm" in change.headers["Location"]
    with app.app_context():
        unchanged = db.session.get(User, admin.id)
        assert unchanged is not None and unchanged.totp_enrolled_at is not None
    wrong = client.post(
        "/coordinator/confirm", data={"password": "not-my-password-1", "next": export}
    )
    assert wrong.status_code == 401
    assert audit_count(app, action="login_failure", user_id=admin.id) == 1
    right = client.post("/coordinator/confirm", data={"password": PASSWORD, "next": export})
    assert right.status_code == 302 and right.headers["Location"] == export
    assert client.get(export).status_code == 200
    # The confirmation page keeps only on-site targets.
    evil = client.post("/coordinator/confirm", data={"password": PASSWORD, "next": "//evil.com"})
    assert evil.headers["Location"] == "/coordinator/"


def test_cookie_replayed_after_sign_out_is_refused(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "replay@program.test")
    sign_in(app, client, user)
    stolen = client.get_cookie("session")
    assert stolen is not None
    assert client.post("/coordinator/logout").status_code == 302
    attacker = app.test_client()
    attacker.set_cookie("session", stolen.value)
    response = attacker.get("/coordinator/")
    assert response.status_code == 302
    assert "/coordinator/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "target",
    ["//evil.com", "/\\evil.com", "/%09/evil.com", "https://evil.com/", "http:evil.com", " /x"],
)
def test_next_redirect_stays_on_site(app: Flask, target: str) -> None:
    assert auth.safe_next(target, "/coordinator/") == "/coordinator/"
    assert auth.safe_next("/coordinator/metrics?x=1", "/") == "/coordinator/metrics?x=1"


def test_login_keeps_safe_next_only(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "next@program.test")
    client.post(
        "/coordinator/login",
        data={"email": user.email, "password": PASSWORD, "next": "//evil.com/x"},
    )
    response = client.post("/coordinator/login/code", data={"code": next_code(app, user)})
    assert response.headers["Location"] == "/coordinator/"


def test_anonymous_redirect_carries_next_and_returns_there(app: Flask, client: FlaskClient) -> None:
    user = make_user(app, "back@program.test")
    response = client.get("/coordinator/metrics")
    assert "next=" in response.headers["Location"]
    client.post(
        "/coordinator/login",
        data={"email": user.email, "password": PASSWORD, "next": "/coordinator/metrics"},
    )
    response = client.post("/coordinator/login/code", data={"code": next_code(app, user)})
    assert response.headers["Location"] == "/coordinator/metrics"


def test_login_form_requires_csrf(app_config: dict[str, Any], app: Flask) -> None:
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    user = make_user(app, "csrf@program.test")
    client = csrf_app.test_client()
    refused = client.post("/coordinator/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 400
    token = csrf_token(client.get("/coordinator/login").get_data(as_text=True))
    accepted = client.post(
        "/coordinator/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert accepted.status_code == 302
