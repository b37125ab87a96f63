"""Emails to staff about their own account, sent by a worker (tasks take ids only):

* a notice of every new sign-in (H-9, ASVS 2.2.3), so a stolen password shows up;
* a notice that the account was locked after failed sign-ins (the sign-in page does not say);
* password-reset links: single use, expiring, the token never stored (HMAC of id and nonce,
  like upload links) and the second factor still asked at the next sign-in;
* a notice of every change to how the account signs in (password, second factor, recovery
  codes), so a change the owner did not make shows up too;
* invitations: an account an admin creates has no password (auth.create_user); its owner gets
  the same kind of link, valid INVITE_HOURS, to set one, then enrols the second factor at the
  first sign-in. No admin ever knows a staff member's password.

No patient data is ever in them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, render_template

from intake.extensions import db
from intake.models import AuditEvent, PasswordReset, StaffSession, User
from intake.services import audit, auth, mail, outbox
from intake.services.auth import now

SIGNIN_TASK = auth.SIGNIN_NOTICE_TASK
LOCKOUT_TASK = auth.LOCKOUT_NOTICE_TASK
RESET_TASK = "staff.password_reset"
INVITE_TASK = "staff.invite"
RESET_MINUTES = 30


def _message_id(kind: str, ident: int) -> str:
    host = current_app.config["PUBLIC_BASE_URL"].split("://", 1)[-1].split("/", 1)[0]
    return f"<{kind}.{ident}.{uuid.uuid4().hex[:8]}@{host}>"


def _send(
    user: User,
    subject: str,
    template: str,
    kind: str,
    ident: int,
    *,
    html: bool = False,
    **context: object,
) -> None:
    config = current_app.config
    context["program_name"] = config["PROGRAM_NAME"]
    text = render_template(f"email/{template}.txt", **context)
    mail.send(
        mail.OutgoingEmail(
            to=(user.email,),
            subject=subject,
            text=text,
            html=render_template(f"email/{template}.html", **context) if html else None,
            message_id=_message_id(kind, ident),
        ),
        config,
    )


# -- new sign-in notice -------------------------------------------------------------------


def send_signin_notice(session_id: int) -> str:
    record = db.session.get(StaffSession, session_id)
    if record is None:
        return "missing"
    if record.notice_sent_at is not None:
        return "skipped"
    user = db.session.get(User, record.user_id)
    assert user is not None
    _send(
        user,
        "New sign-in to your coordinator account",
        "staff_signin",
        "signin",
        record.id,
        at=record.created_at,
        ip=record.ip or "unknown",
        login_url=f"{current_app.config['PUBLIC_BASE_URL']}/coordinator/login",
    )
    record.notice_sent_at = now()
    db.session.commit()
    return "sent"


# -- lockout notice -------------------------------------------------------------------------


def send_lockout_notice(user_id: int, day: str) -> str:
    """Tell the owner their account was locked; once per account and day (an audit row marks
    it sent, so a redelivered task does not send it twice)."""
    user = db.session.get(User, user_id)
    if user is None:
        return "missing"
    detail = f"lockout_notice:{day}"
    sent = db.session.scalar(
        sa.select(AuditEvent.id).where(AuditEvent.user_id == user.id, AuditEvent.detail == detail)
    )
    if sent is not None:
        return "skipped"
    base = current_app.config["PUBLIC_BASE_URL"]
    _send(
        user,
        "Your coordinator account was locked",
        "staff_locked",
        "locked",
        user.id,
        minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"],
        reset_url=f"{base}/coordinator/login/reset",
    )
    audit.record(audit.UPDATE, "staff_user", user.id, detail=detail, user=user)
    db.session.commit()
    return "sent"


# -- changes to how the account is secured (H-9, ASVS 2.5.5) -------------------------------

SECURITY_TASK = auth.SECURITY_NOTICE_TASK
# Audit details that change how an account signs in, and what the owner is told of each.
SECURITY_NOTICES: dict[str, tuple[str, str]] = {
    "password_reset": (
        "Your coordinator account's password was changed",
        "The password of your {program} coordinator account was changed with a reset link "
        "sent to this address. Every session was signed out.",
    ),
    "reset_totp": (
        "Your coordinator account's second factor was reset",
        "An administrator ({by}) reset the second factor of your {program} coordinator account. "
        "At your next sign-in you will set up your authenticator app again.",
    ),
    "totp_enrolled": (
        "An authenticator app was set up for your coordinator account",
        "An authenticator app was set up as the second factor of your {program} coordinator "
        "account.",
    ),
    "recovery_codes_new": (
        "New recovery codes were made for your coordinator account",
        "A new set of recovery codes was made for your {program} coordinator account; the "
        "earlier codes no longer work.",
    ),
    "recovery_code_used": (
        "A recovery code was used to sign in to your coordinator account",
        "A recovery code was used instead of the authenticator app to sign in to your "
        "{program} coordinator account.",
    ),
}


def send_security_notice(event_id: int) -> str:
    """Email the account's owner about one change; once (an audit row marks it sent)."""
    event = db.session.get(AuditEvent, event_id)
    if (
        event is None
        or event.resource_type != "staff_user"
        or event.detail not in SECURITY_NOTICES
        or not event.resource_id
    ):
        return "missing"
    # The owner's row locked: two deliveries of the task send one email between them.
    user = db.session.scalar(
        sa.select(User).where(User.id == int(event.resource_id)).with_for_update()
    )
    if user is None:
        return "missing"
    marker = f"security_notice:{event.id}"
    sent = db.session.scalar(
        sa.select(AuditEvent.id).where(AuditEvent.user_id == user.id, AuditEvent.detail == marker)
    )
    if sent is not None:
        db.session.rollback()
        return "skipped"
    subject, what = SECURITY_NOTICES[event.detail]
    base = current_app.config["PUBLIC_BASE_URL"]
    _send(
        user,
        subject,
        "staff_security",
        "security",
        event.id,
        what=what.format(program=current_app.config["PROGRAM_NAME"], by=event.user_email or ""),
        at=event.at,
        ip=event.ip or "unknown",
        reset_url=f"{base}/coordinator/login/reset",
    )
    audit.record(audit.UPDATE, "staff_user", user.id, detail=marker, user=user)
    db.session.commit()
    return "sent"


# -- password reset --------------------------------------------------------------------------


def _token(reset: PasswordReset) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"reset:{reset.id}:{reset.nonce}".encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def reset_url(reset: PasswordReset) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/coordinator/login/reset/{_token(reset)}"


def _new_link(user: User, lifetime: timedelta) -> PasswordReset:
    """A set-password link row (reset or invitation) in the current transaction."""
    at = now()
    reset = PasswordReset(
        user_id=user.id,
        nonce=secrets.token_hex(16),
        token_hash="pending-" + uuid.uuid4().hex,
        created_at=at,
        expires_at=at + lifetime,
    )
    db.session.add(reset)
    db.session.flush()
    reset.token_hash = _token_hash(_token(reset))
    return reset


def _spend_links(user_id: int, at: datetime) -> None:
    """Every unused link of the user stops working (one still in a mailbox would let whoever
    holds it set the password)."""
    db.session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )


def request_reset(email: str) -> None:
    """Queue a reset link for an active account; says nothing about whether it exists."""
    user = auth.find_user(email)
    if user is None or not user.active or user.is_demo:
        audit.record(
            audit.LOGIN_FAILURE,
            "staff_user",
            None,
            outcome="failure",
            detail="reset:unknown",
            commit=True,
        )
        return
    reset = _new_link(user, timedelta(minutes=RESET_MINUTES))
    outbox.add_event(db.session, RESET_TASK, reset.id)
    audit.record(audit.UPDATE, "staff_user", user.id, detail="reset_requested", user=user)
    db.session.commit()


def _usable(reset: PasswordReset | None) -> bool:
    return reset is not None and reset.used_at is None and reset.expires_at > now()


def send_reset(reset_id: int) -> str:
    reset = db.session.get(PasswordReset, reset_id)
    if reset is None or not _usable(reset):
        return "skipped"
    if reset.sent_at is not None:
        return "skipped"
    user = db.session.get(User, reset.user_id)
    assert user is not None
    _send(
        user,
        "Reset your coordinator password",
        "staff_password_reset",
        "reset",
        reset.id,
        reset_url=reset_url(reset),
        minutes=RESET_MINUTES,
    )
    reset.sent_at = now()
    db.session.commit()
    return "sent"


# -- invitation ------------------------------------------------------------------------------


def can_invite(user: User) -> bool:
    """Only an active, real account whose owner has never set a password gets invitations."""
    return user.active and not user.is_demo and not auth.has_usable_password(user)


def invite(user: User, actor: User, *, again: bool = False) -> PasswordReset:
    """Queue an invitation for a new account: a link to set its first password, valid
    INVITE_HOURS and once. Sending it again spends every older link. Audited; commits.
    Raises AccountError when the account cannot be invited."""
    if not can_invite(user):
        raise auth.AccountError(
            "email", "Only an active account that has never set a password can be invited."
        )
    _spend_links(user.id, now())
    link = _new_link(user, timedelta(hours=current_app.config["INVITE_HOURS"]))
    # The inviting admin is named in the email as the person to tell if it was unexpected.
    outbox.add_event(db.session, INVITE_TASK, link.id, actor.id)
    detail = "invite_resent" if again else "invite_sent"
    audit.record(audit.UPDATE, "staff_user", user.id, detail=detail, user=actor)
    db.session.commit()
    return link


def send_invite(reset_id: int, admin_id: int) -> str:
    reset = db.session.get(PasswordReset, reset_id)
    if reset is None or not _usable(reset) or reset.sent_at is not None:
        return "skipped"
    user = db.session.get(User, reset.user_id)
    assert user is not None
    if not can_invite(user):
        return "skipped"
    admin = db.session.get(User, admin_id)
    config = current_app.config
    _send(
        user,
        f"Your {config['PROGRAM_NAME']} coordinator account: set your password",
        "staff_invite",
        "invite",
        reset.id,
        html=True,
        reset_url=reset_url(reset),
        hours=round((reset.expires_at - reset.created_at).total_seconds() / 3600),
        admin_email=admin.email if admin is not None else None,
        program_phone=config["PROGRAM_PHONE"],
    )
    reset.sent_at = now()
    db.session.commit()
    return "sent"


# -- completing a link -----------------------------------------------------------------------


def find_reset(token: str) -> PasswordReset | None:
    if not token or len(token) > 100:
        return None
    reset = db.session.scalar(
        sa.select(PasswordReset).where(PasswordReset.token_hash == _token_hash(token))
    )
    return reset if _usable(reset) else None


def usable_reset(reset_id: int) -> PasswordReset | None:
    reset = db.session.get(PasswordReset, reset_id)
    return reset if _usable(reset) else None


def is_invitation(reset: PasswordReset) -> bool:
    """A link to set the first password of an account (the page says "Set your password")."""
    user = db.session.get(User, reset.user_id)
    return user is not None and not auth.has_usable_password(user)


def complete_reset(reset_id: int, password: str) -> User:
    """Set the new password, spend this link and every other unused one of the user, and end
    every session. Raises AccountError."""
    reset = db.session.scalar(
        sa.select(PasswordReset).where(PasswordReset.id == reset_id).with_for_update()
    )
    if reset is None or not _usable(reset):
        db.session.rollback()
        raise auth.AccountError("password", "This reset link has expired or was already used.")
    user = db.session.get(User, reset.user_id)
    assert user is not None
    problem = auth.password_problem(password, user.email)
    if problem:
        db.session.rollback()
        raise auth.AccountError("password", problem)
    first = not auth.has_usable_password(user)
    user.password_hash = auth.hash_password(password)
    user.failed_attempts = 0
    user.locked_until = None
    reset.used_at = now()
    # Any other link still in a mailbox would let whoever holds it set the password again.
    _spend_links(user.id, reset.used_at)
    auth.end_all_sessions(user, "password_reset")
    if first:
        audit.record(audit.UPDATE, "staff_user", user.id, detail="password_set", user=user)
    else:
        auth.record_security_change(user, "password_reset")
    db.session.commit()
    return user
