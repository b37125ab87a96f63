"""Staff accounts and sign-in: argon2id passwords, TOTP, lockout, server-side sessions.

A sign-in creates a StaffSession row whose random token is what Flask-Login keeps in the
cookie; the row ends at sign-out, after STAFF_IDLE_MINUTES without a request and after
STAFF_ABSOLUTE_HOURS in all, so a copied cookie stops working on the server.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyotp
import segno
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from intake.extensions import db
from intake.models import StaffSession, User, utcnow
from intake.models.staff import STAFF_ROLES
from intake.services import alerts, audit, outbox
from intake.services.routing import CASE_KINDS

MIN_PASSWORD_LENGTH = 12
SIGNIN_NOTICE_TASK = "staff.signin_notice"
SECURITY_NOTICE_TASK = "staff.security_notice"
LOCKOUT_NOTICE_TASK = "staff.lockout_notice"
# How stale a staff session's last-seen time may get before a request records it again.
TOUCH_SECONDS = 30
# ASVS 2.1.2: long passphrases are welcome, but past 128 characters they are refused.
MAX_PASSWORD_LENGTH = 128
# argon2-cffi's defaults are argon2id (RFC 9106 low-memory profile).
_hasher = PasswordHasher()
# A hash to verify against when the email is unknown, so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))
# An account created by an admin has no password until its owner sets one from the invitation
# link: its hash is this prefix and random text, which no password matches (never disclosed).
UNUSABLE_HASH_PREFIX = "!"

# Injectable clock: tests move time forward without touching the system clock.
_clock: Callable[[], datetime] = utcnow


def now() -> datetime:
    return _clock()


class AccountError(ValueError):
    """A refused account change; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@cache
def common_passwords() -> frozenset[str]:
    path = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line and not line.startswith("#"))


def password_problem(password: str, email: str = "") -> str | None:
    """Why ``password`` is refused, or None (ASVS: length, breached/common list, no context)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    folded = password.casefold()
    common = common_passwords()
    stripped = folded.rstrip("0123456789!@#$%^&*.?")
    if folded in common or stripped in common or len(set(folded)) < 4:
        return "This password is too common. Choose a longer, less predictable one."
    local = email.split("@", 1)[0].casefold()
    if local and len(local) >= 4 and local in folded:
        return "The password must not contain your email name."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def unusable_password_hash() -> str:
    return UNUSABLE_HASH_PREFIX + secrets.token_urlsafe(32)


def has_usable_password(user: User) -> bool:
    """False until the owner of an invited account sets a password."""
    return not user.password_hash.startswith(UNUSABLE_HASH_PREFIX)


def _verify_hash(password_hash: str, password: str) -> bool:
    if password_hash.startswith(UNUSABLE_HASH_PREFIX):
        # As long as a real check, so timing does not tell which accounts are still invited.
        _verify_hash(_DUMMY_HASH, password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    email: str,
    role: str,
    password: str | None = None,
    *,
    display_name: str = "",
    queues: list[str] | None = None,
    is_demo: bool = False,
) -> User:
    """Create an account (TOTP is enrolled at its first sign-in). Commits.

    Without ``password`` the account gets an unusable one: nobody can sign in to it until its
    owner sets a password from an invitation link (staff_mail.invite); no admin ever knows it.
    """
    email = normalize_email(email)
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise AccountError("email", "Enter a valid email address.")
    if role not in STAFF_ROLES:
        raise AccountError("role", f"Role must be one of: {', '.join(STAFF_ROLES)}.")
    problem = password_problem(password, email) if password is not None else None
    if problem:
        raise AccountError("password", problem)
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise AccountError("email", "An account with this email already exists.")
    user = User(
        email=email,
        role=role,
        display_name=display_name.strip()[:100],
        password_hash=unusable_password_hash() if password is None else hash_password(password),
        queues=list(queues) if queues is not None else list(CASE_KINDS),
        is_demo=is_demo,
        active=True,
        totp_last_step=0,
        recovery_code_hashes=[],
        failed_attempts=0,
    )
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalize_email(email)))


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    status: str  # ok | invalid | locked | inactive


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > now()


def record_failure(user: User) -> None:
    """Count a failed password or code; lock the account for a while after too many."""
    config = current_app.config
    user.failed_attempts += 1
    if user.failed_attempts >= config["LOGIN_MAX_FAILURES"]:
        user.locked_until = now() + timedelta(minutes=config["LOGIN_LOCKOUT_MINUTES"])
        user.failed_attempts = 0
        _tell_of_lockout(user)
    db.session.commit()


def _tell_of_lockout(user: User) -> None:
    """The sign-in page never says an account is locked (that would tell which emails exist),
    so the administrators and the account's owner are told instead, once per account and day."""
    day = now().date().isoformat()
    raised = alerts.raise_alert(
        code="staff_account_locked",
        dedupe_key=f"staff_account_locked:{user.id}:{day}",
        message=f"Staff account {user.id} was locked after repeated failed sign-ins.",
    )
    if raised:
        outbox.add_event(db.session, LOCKOUT_NOTICE_TASK, user.id, day)


def check_password(email: str, password: str) -> LoginOutcome:
    """First factor. Failures are counted per account. The caller must answer "locked" like
    "invalid" (and this takes as long), so neither tells whether the account exists."""
    user = find_user(email)
    if user is None:
        _verify_hash(_DUMMY_HASH, password)
        return LoginOutcome(None, "invalid")
    if is_locked(user):
        _verify_hash(_DUMMY_HASH, password)
        return LoginOutcome(user, "locked")
    if not _verify_hash(user.password_hash, password):
        record_failure(user)
        return LoginOutcome(user, "locked" if is_locked(user) else "invalid")
    if not user.active or (user.is_demo and current_app.config["INTAKE_ENV"] == "production"):
        return LoginOutcome(user, "inactive")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return LoginOutcome(user, "ok")


# -- TOTP ------------------------------------------------------------------------------


def start_enrolment(user: User) -> str:
    """A new secret for a user who has not enrolled yet (kept until confirmed)."""
    if user.totp_enrolled_at is not None:
        raise AccountError("code", "This account already has an authenticator.")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        db.session.commit()
    return user.totp_secret


def provisioning_uri(user: User) -> str:
    assert user.totp_secret
    return pyotp.TOTP(user.totp_secret).provisioning_uri(
        name=user.email, issuer_name=current_app.config["PROGRAM_NAME"]
    )


def qr_svg(uri: str) -> str:
    """The enrolment QR code as inline SVG markup (no outside hosts, CSP-safe)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, title="QR code"))


def verify_totp(user: User, code: str) -> bool:
    """Second factor: a code is accepted once, for a time step after the last accepted one."""
    code = "".join(code.split())
    if not user.totp_secret or not code.isdigit() or len(code) != 6 or is_locked(user):
        return False
    totp = pyotp.TOTP(user.totp_secret)
    current = int(now().timestamp()) // totp.interval
    for step in (current, current - 1, current + 1):
        if step <= user.totp_last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            user.totp_last_step = step
            user.failed_attempts = 0
            if user.totp_enrolled_at is None:
                user.totp_enrolled_at = now()
                record_security_change(user, "totp_enrolled")
            db.session.commit()
            return True
    record_failure(user)
    return False


RECOVERY_CODE_COUNT = 10
# 10 characters of 32 (50 bits) each; no 0/O or 1/I/L to misread.
_RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()


def normalize_recovery_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    return len(normalize_recovery_code(code)) == 10 and not code.strip().isdigit()


def new_recovery_codes(user: User) -> list[str]:
    """A fresh set of one-time codes for when the authenticator is lost; old ones stop working.

    Only their hashes are kept; the codes are shown once. Commits.
    """
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    user.recovery_code_hashes = [_recovery_hash(code) for code in codes]
    record_security_change(user, "recovery_codes_new")
    db.session.commit()
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Second factor by a recovery code: each works once. A wrong one counts as a failure."""
    digest = _recovery_hash(code)
    if is_locked(user) or digest not in (user.recovery_code_hashes or []):
        record_failure(user)
        return False
    user.recovery_code_hashes = [h for h in user.recovery_code_hashes if h != digest]
    user.failed_attempts = 0
    record_security_change(user, "recovery_code_used")
    db.session.commit()
    return True


def reset_totp(user: User, admin: User) -> None:
    """An admin's reset of ``user``'s second factor (enrolled again at the next sign-in)."""
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = 0
    user.recovery_code_hashes = []
    end_all_sessions(user, "totp_reset")
    record_security_change(user, "reset_totp", by=admin)
    db.session.commit()


def record_security_change(user: User, detail: str, *, by: User | None = None) -> None:
    """The audit row of a change to how ``user`` signs in, and the owner's notice of it
    (staff_mail.SECURITY_NOTICES), in the change's own transaction: committed together or
    not at all (H-9, ASVS 2.5.5)."""
    event = audit.record(audit.UPDATE, "staff_user", user.id, detail=detail, user=by or user)
    db.session.flush()
    outbox.add_event(db.session, SECURITY_NOTICE_TASK, event.id)


# -- sessions --------------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: User, ip: str | None) -> str:
    """A fresh server-side session (a new id at every sign-in). Commits."""
    token = secrets.token_urlsafe(32)
    at = now()
    record = StaffSession(
        token_hash=_hash_token(token), user_id=user.id, created_at=at, last_seen_at=at, ip=ip
    )
    db.session.add(record)
    db.session.flush()
    # H-9: the account's owner hears of every new sign-in (a worker sends it).
    outbox.add_event(db.session, SIGNIN_NOTICE_TASK, record.id)
    user.last_login_at = at
    user.failed_attempts = 0
    user.locked_until = None
    db.session.commit()
    user.session_token = token
    return token


def session_end_reason(record: StaffSession) -> str | None:
    config = current_app.config
    at = now()
    if record.ended_at is not None:
        return record.end_reason or "ended"
    if at - record.last_seen_at > timedelta(minutes=config["STAFF_IDLE_MINUTES"]):
        return "idle"
    if at - record.created_at > timedelta(hours=config["STAFF_ABSOLUTE_HOURS"]):
        return "absolute"
    return None


def load_session(token: str | None) -> User | None:
    """The signed-in user for a cookie's token, or None; touches the idle clock."""
    if not token:
        return None
    record = db.session.scalar(
        sa.select(StaffSession).where(StaffSession.token_hash == _hash_token(token))
    )
    if record is None:
        return None
    reason = session_end_reason(record)
    if reason is not None:
        if record.ended_at is None:
            record.ended_at = now()
            record.end_reason = reason
            db.session.commit()
        return None
    # The idle clock moves at most every TOUCH_SECONDS: a write (and a commit) per page view
    # was a fifth of a signed-in page's time in the profile (bench/README.md).
    at = now()
    if at - record.last_seen_at >= timedelta(seconds=TOUCH_SECONDS):
        record.last_seen_at = at
        db.session.commit()
    user = db.session.get(User, record.user_id)
    if user is None or not user.active:
        return None
    user.session_token = token
    return user


def end_session(token: str | None, reason: str = "signed_out") -> None:
    if not token:
        return
    db.session.execute(
        sa.update(StaffSession)
        .where(StaffSession.token_hash == _hash_token(token), StaffSession.ended_at.is_(None))
        .values(ended_at=now(), end_reason=reason)
    )
    db.session.commit()


def end_all_sessions(user: User, reason: str) -> None:
    db.session.execute(
        sa.update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now(), end_reason=reason)
    )


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: no scheme, no host, no `//` or `/\\` tricks, no controls."""
    if not target:
        return default
    return target if _safe_path(target) and _safe_path(unquote(target)) else default


def _safe_path(target: str) -> bool:
    if any(ord(c) < 32 or c in "\\\x7f" for c in target) or target != target.strip():
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc)
