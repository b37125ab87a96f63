"""Shared helpers for the coordinator workspace tests: accounts, sign-in, cases.

Requests run outside any test-held app context (as in production, each request gets its own),
so these helpers open a short app context for their database work.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pyotp
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake.extensions import db
from intake.models import AuditEvent, InfoRequest, Referral, User
from intake.services import auth
from intake.services.referrals import Submission, UploadedFile, run_triage, submit_referral
from tests.referral_data import valid_referral
from tests.samples import tiny_pdf

PASSWORD = "Correct-Horse-Battery-42"


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    secret: str | None


def make_user(
    app: Flask,
    email: str,
    role: str = "coordinator",
    *,
    enrolled: bool = True,
    queues: list[str] | None = None,
) -> Account:
    with app.app_context():
        user = auth.create_user(email, role, PASSWORD, queues=queues)
        if enrolled:
            user.totp_secret = pyotp.random_base32()
            user.totp_enrolled_at = auth.now()
            db.session.commit()
        return Account(user.id, user.email, user.role, user.totp_secret)


def next_code(app: Flask, account: Account) -> str:
    """A valid code for a time step the account has not used yet."""
    with app.app_context():
        user = db.session.get(User, account.id)
        assert user is not None and user.totp_secret
        totp = pyotp.TOTP(user.totp_secret)
        clock = auth.now().timestamp()
        current = int(clock) // totp.interval
        steps = [current - 1, current, current + 1]
        if totp.interval - clock % totp.interval < 2:
            # A step boundary may pass before the server checks: the previous step would then
            # be two behind and refused. Near a boundary it is the last resort.
            steps = [current, current + 1, current - 1]
        for step in steps:
            if step > user.totp_last_step:
                return totp.generate_otp(step)
    raise AssertionError("no unused TOTP step left in the window; advance the clock")


def wrong_code(app: Flask, account: Account) -> str:
    """A six-digit code that is not valid for the account anywhere in the accepted window."""
    with app.app_context():
        user = db.session.get(User, account.id)
        assert user is not None and user.totp_secret
        totp = pyotp.TOTP(user.totp_secret)
        current = int(auth.now().timestamp()) // totp.interval
        valid = {totp.generate_otp(step) for step in range(current - 2, current + 3)}
    return next(code for code in ("000000", "123456", "999999", "314159") if code not in valid)


def sign_in(app: Flask, client: FlaskClient, account: Account, password: str = PASSWORD) -> None:
    response = client.post(
        "/coordinator/login", data={"email": account.email, "password": password}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert response.headers["Location"].endswith("/coordinator/login/code")
    response = client.post("/coordinator/login/code", data={"code": next_code(app, account)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def make_referral(app: Flask, *, flow_report: bool = True, **overrides: Any) -> str:
    """Submit and triage a referral (with its flow cytometry report unless told otherwise)."""
    files = [UploadedFile("flow_cytometry", "flow.pdf", "application/pdf", tiny_pdf())]
    with app.app_context():
        referral, _created = submit_referral(
            Submission(
                submission_id=str(uuid.uuid4()),
                answers=valid_referral(**overrides),
                files=files if flow_report else [],
            )
        )
        run_triage(referral.id)
        return referral.reference


def get_referral(app: Flask, reference: str) -> Referral:
    with app.app_context():
        referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
        assert referral is not None
        db.session.expunge(referral)
        return referral


def info_request_of(app: Flask, reference: str) -> InfoRequest:
    """The case's one information request (detached, to read its columns)."""
    with app.app_context():
        link = db.session.scalars(
            sa.select(InfoRequest)
            .join(Referral, Referral.id == InfoRequest.referral_id)
            .where(Referral.reference == reference)
        ).one()
        db.session.expunge(link)
        return link


def set_referral(app: Flask, reference: str, **values: Any) -> None:
    """Write columns of a case directly (a clock moved, a status set) for a test's setup."""
    with app.app_context():
        db.session.execute(
            sa.update(Referral).where(Referral.reference == reference).values(**values)
        )
        db.session.commit()


def audit_count(app: Flask, **where: Any) -> int:
    with app.app_context():
        statement = sa.select(sa.func.count()).select_from(AuditEvent)
        for key, value in where.items():
            statement = statement.where(getattr(AuditEvent, key) == value)
        return int(db.session.scalar(statement) or 0)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found, "the form carries a CSRF token"
    return found.group(1)
