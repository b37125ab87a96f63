"""Helpers for staff tests against a real stack (gunicorn, Celery worker and beat, SMTP).

The accounts are created in-process in the stack's own database (as `flask users create`
would); everything else goes over HTTP to the real web process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pyotp
import requests
import sqlalchemy as sa

from intake import create_app
from intake.extensions import db
from intake.services import auth
from tests.conftest import base_config
from tests.stack import Stack, wait_for
from tests.staff.helpers import PASSWORD

# Links in emails point at PUBLIC_BASE_URL (see tests/stack.py); tests swap in the real host.
PUBLIC_BASE = "http://intake.test"


@dataclass(frozen=True)
class LiveAccount:
    email: str
    role: str
    secret: str

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


def create_account(stack: Stack, tmp: Path, email: str, role: str) -> LiveAccount:
    """An account with an enrolled authenticator, written to the stack's database."""
    app = create_app(base_config(stack.database_url, tmp))
    with app.app_context():
        user = auth.create_user(email, role, PASSWORD)
        user.totp_secret = pyotp.random_base32()
        user.totp_enrolled_at = auth.now()
        secret = user.totp_secret
        db.session.commit()
        db.engine.dispose()
    return LiveAccount(email, role, secret)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def sign_in(base: str, account: LiveAccount) -> requests.Session:
    """Password, then a TOTP code, over HTTP with CSRF tokens, like a browser."""
    session = requests.Session()
    page = session.get(f"{base}/coordinator/login", timeout=10)
    response = session.post(
        f"{base}/coordinator/login",
        data={"email": account.email, "password": PASSWORD, "csrf_token": csrf(page.text)},
        timeout=10,
    )
    assert response.url.endswith("/coordinator/login/code"), response.text[:300]
    response = session.post(
        response.url, data={"code": account.code(), "csrf_token": csrf(response.text)}, timeout=10
    )
    assert response.url.rstrip("/").endswith("/coordinator"), response.text[:300]
    return session


def submit_referral(base: str, data: dict[str, Any], files: dict[str, Any]) -> str:
    """Submit the public form; returns the reference shown on the confirmation page."""
    session = requests.Session()
    page = session.get(f"{base}/refer", timeout=10)
    submission = re.search(r'name="submission_id" type="hidden" value="([^"]+)"', page.text)
    assert submission
    form = {**data, "csrf_token": csrf(page.text), "submission_id": submission.group(1)}
    response = session.post(f"{base}/refer", data=form, files=files, timeout=30)
    assert response.status_code == 200 and response.url.endswith("/refer/submitted")
    shown = re.search(r'class="reference">([0-9A-Z-]+)<', response.text)
    assert shown, "the confirmation page shows the reference"
    return shown.group(1).replace("-", "")


def case_row(engine: sa.Engine, reference: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT * FROM referral WHERE reference = :r"), {"r": reference}
        ).first()


def wait_for_status(engine: sa.Engine, reference: str, status: str, timeout: float = 60) -> Any:
    def reached() -> Any:
        row = case_row(engine, reference)
        return row if row is not None and row.status == status else None

    return wait_for(reached, timeout, f"case {reference} to reach {status}")


def upload_link(message: EmailMessage) -> str:
    """The path of the single-use upload link in an information-request email."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(re.escape(PUBLIC_BASE) + r"(/upload/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)
