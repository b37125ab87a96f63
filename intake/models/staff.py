"""Coordinator workspace: staff accounts, server-side sessions, audit trail, notes,
information requests (upload links) and escalations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from intake.models.base import Base, utcnow

STAFF_ROLES = ("coordinator", "reviewer", "admin")


class User(Base):
    """A staff account. Flask-Login's id is the current server-side session token, not this id."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100), default="")
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    # Case kinds whose queue a coordinator belongs to (decision 10).
    queues: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    is_demo: Mapped[bool] = mapped_column(default=False)
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_enrolled_at: Mapped[datetime | None]
    # The last accepted TOTP time step: a code is accepted only for a later step (single use).
    totp_last_step: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # SHA-256 of the unused one-time recovery codes (random, high entropy: no slow hash needed).
    recovery_code_hashes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    # Flask-Login protocol; the session token is attached by the loader for this request.
    session_token = None  # set per request by the loader; not a column

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        return self.session_token


class StaffSession(Base):
    """A sign-in, ended on the server at sign-out, after idling and at the absolute limit."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(sa.String(16))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    # The "new sign-in to your account" email (H-9), sent by a worker.
    notice_sent_at: Mapped[datetime | None]


class PasswordReset(Base):
    """A single-use, expiring password-reset link. As for upload links, the token is an HMAC of
    the id and nonce (the worker rebuilds it for the email); only its SHA-256 is stored."""

    __tablename__ = "password_reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id"), index=True)
    nonce: Mapped[str] = mapped_column(sa.String(32))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only (triggers refuse UPDATE/DELETE/TRUNCATE). Codes and ids only, never PHI."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # No foreign key: the trail must outlive the account it names.
    user_id: Mapped[int | None] = mapped_column(index=True)
    user_email: Mapped[str | None] = mapped_column(sa.String(254))
    role: Mapped[str | None] = mapped_column(sa.String(16))
    # C R U D E (create/read/update/delete/export) or login, logout, login_failure, denied
    action: Mapped[str] = mapped_column(sa.String(16))
    resource_type: Mapped[str] = mapped_column(sa.String(32))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(16), default="success")
    detail: Mapped[str | None] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    request_id: Mapped[str | None] = mapped_column(sa.String(36))


class CaseNote(Base):
    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[str] = mapped_column(sa.Text)


class InfoRequest(Base):
    """A request for more information with a single-use, expiring upload link (decision 15).

    The link token is HMAC(SECRET_KEY, id + nonce): the worker can rebuild it for the email,
    and only its SHA-256 is stored for lookup, so a database copy alone does not open links.
    """

    __tablename__ = "info_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    requested_by: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id"))
    items: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    audience: Mapped[str] = mapped_column(sa.String(16), default="referrer")
    recipients: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    nonce: Mapped[str] = mapped_column(sa.String(32))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    spent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(sa.String(24))
    reminders_sent: Mapped[int] = mapped_column(default=0)
    last_reminder_at: Mapped[datetime | None]


class BreakGlassGrant(Base):
    """Emergency access (H-2): one user, one case reference, a stated reason, a short expiry.

    Asking for it raises an alert; every read under it is audited as such.
    """

    __tablename__ = "break_glass_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id"), index=True)
    # The normalized reference asked for (it may not exist: asking reveals nothing).
    reference: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Escalation(Base):
    """One row per (case, level): the sweep can run any number of times (decision 14)."""

    __tablename__ = "escalation"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(sa.ForeignKey("referral.id"), index=True)
    level: Mapped[int]
    clock: Mapped[str] = mapped_column(sa.String(8), default="review")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    recipients: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)

    __table_args__ = (
        sa.UniqueConstraint("referral_id", "clock", "level", name="uq_escalation_case_level"),
    )
