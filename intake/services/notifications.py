"""PHI-free emails, at most one per (case, kind), delivered at least once.

A notification row moves pending → sending → sent, or → retry (with a growing, jittered gap)
and finally → failed with a dead letter and an alert. It moves to cancelled instead, for good,
when what it announces no longer holds (an upload link closed before its email went out). The
Message-ID is derived from the row, so the one duplicate that can still happen (a worker killed
after the SMTP server accepted the message but before the row was marked sent) carries the same
Message-ID and can be recognised.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DBAPIError

from intake.domain.reference import format_reference
from intake.extensions import db
from intake.models import DeadLetter, Notification, Referral, TimelineEvent, utcnow
from intake.services import alerts, mail, outbox
from intake.services.db import is_database_unavailable
from intake.services.routing import recipients_for

log = logging.getLogger("intake.notifications")

COORDINATOR_NEW = "coordinator_new_case"
REFERRER_ACK = "referrer_acknowledgement"
FAMILY_ACK = "family_acknowledgement"
FAMILY_MESSAGE_ACK = "family_message_acknowledgement"
# The care team's "new message" email: R0 cases have no priority and no review deadline.
CARE_TEAM_NEW = "family_message_new"
# The family's "your care team has answered" notice: once per message (decision 11).
FAMILY_MESSAGE_ANSWERED = "family_message_answered"

CANCELLED = "cancelled"
# Not yet handed to a worker (or waiting to be tried again): what a cancellation may stop.
UNSENT = ("pending", "retry")

# Family kinds counted against the per-recipient daily acknowledgement cap (decision 8).
FAMILY_ACKNOWLEDGEMENT_KINDS = frozenset({FAMILY_ACK, FAMILY_MESSAGE_ACK})


def ensure_notification(
    referral: Referral,
    kind: str,
    recipients: list[str],
    language: str = "en",
    *,
    new_case: bool = False,
) -> Notification:
    """Create the notification and its outbox event, unless the case already has one.

    ``new_case``: the case was created in this transaction, so it has none yet and the lookup
    is skipped (one query less per submission; the unique (case, kind) key still holds).
    """
    if not new_case:
        existing = db.session.scalar(
            sa.select(Notification).where(
                Notification.referral_id == referral.id, Notification.kind == kind
            )
        )
        if existing is not None:
            return existing
    notification_id = str(uuid.uuid4())
    host = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "intake.local"
    notification = Notification(
        id=notification_id,
        referral_id=referral.id,
        kind=kind,
        recipients=recipients,
        language=language,
        message_id=f"<{kind}.{notification_id}@{host}>",
    )
    db.session.add(notification)
    outbox.add_event(db.session, "notify.send", notification_id)
    return notification


def coordinator_recipients(referral: Referral, *, business_hours: bool = True) -> list[str]:
    """The queue's coordinators; outside business hours a P1 also pages on-call (decision 13)."""
    recipients = recipients_for(referral.kind, referral.triage_priority) or list(
        current_app.config["COORDINATOR_EMAILS"]
    )
    return with_oncall_out_of_hours(referral, recipients, business_hours=business_hours)


def with_oncall_out_of_hours(
    referral: Referral, recipients: list[str], *, business_hours: bool
) -> list[str]:
    """``recipients``, plus the on-call for a P1 outside business hours (decision 13)."""
    if referral.triage_priority != "P1" or business_hours:
        return recipients
    return recipients + [
        email
        for email in recipients_for(referral.kind, "P1", role="oncall")
        if email not in recipients
    ]


def new_case_kind(referral: Referral) -> str:
    """The staff email for a newly triaged case: the care team's for R0 messages."""
    return CARE_TEAM_NEW if referral.kind == "existing_patient_message" else COORDINATOR_NEW


def acknowledgements_sent_today(email: str) -> int:
    """Decision 8: acknowledgements are capped per recipient per day (abuse of the form).

    Counts referrer acknowledgements to ``email`` as the referrer and family acknowledgements
    to it as the family's address (both columns indexed).
    """
    since = utcnow() - timedelta(days=1)
    return int(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(
                Notification.created_at >= since,
                sa.or_(
                    sa.and_(Notification.kind == REFERRER_ACK, Referral.referrer_email == email),
                    sa.and_(
                        Notification.kind.in_(sorted(FAMILY_ACKNOWLEDGEMENT_KINDS)),
                        Referral.family_email == email,
                    ),
                ),
            )
        )
        or 0
    )


def render(notification: Notification, referral: Referral) -> mail.OutgoingEmail:
    """Reference, priority, due time and a link: never a name, DOB, diagnosis or category."""
    config = current_app.config
    reference = format_reference(referral.reference)
    base = config["PUBLIC_BASE_URL"]
    context: dict[str, Any] = {
        "reference": reference,
        "priority": referral.triage_priority,
        "due_at": referral.review_due_at or referral.ack_due_at,
        "case_url": f"{base}/coordinator/referrals/{referral.reference}",
        "status_url": _status_url(base, notification.language),
        "program_name": config["PROGRAM_NAME"],
        "urgent_phone": config["URGENT_PHONE"],
        "program_tz": config["PROGRAM_TZ"],
    }
    template, subject = _template_and_subject(notification, context)
    with force_locale(notification.language):
        subject_text = str(subject)
        text = render_template(f"email/{template}.txt", **context)
        html = render_template(f"email/{template}.html", **context)
    return mail.OutgoingEmail(
        to=tuple(notification.recipients),
        subject=subject_text,
        text=text,
        html=html,
        message_id=notification.message_id,
    )


def _status_url(base: str, language: str) -> str:
    """The status page, opening in the email's language (?lang= is the site's switch) when that
    is not the default, whatever the reader's browser prefers."""
    config = current_app.config
    if language != config["BABEL_DEFAULT_LOCALE"] and language in config["LANGUAGES"]:
        return f"{base}/status?lang={language}"
    return f"{base}/status"


def _template_and_subject(notification: Notification, context: dict[str, Any]) -> tuple[str, Any]:
    """Kinds are `<template>` or `status.<event id>.<audience>` (one per status change)."""
    kind = notification.kind
    if kind.startswith("status."):
        _prefix, event_id, audience = kind.split(".", 2)
        event = db.session.get(TimelineEvent, int(event_id))
        context["new_status"] = event.to_status if event else None
        context["audience"] = audience
        # Who a request for information went to (needs_info): the other audience is told so.
        context["info_audience"] = ((event.detail or {}) if event else {}).get("info_audience")
        kind = "status_update"
    elif kind.startswith("review_assigned."):
        kind = "review_assigned"
    elif kind.split(".", 1)[0] in KIND_RENDERERS:
        kind = KIND_RENDERERS[kind.split(".", 1)[0]](notification, context)
    subject = SUBJECTS.get(kind)
    if subject is None:
        raise ValueError(f"unknown notification kind {notification.kind}")
    return kind, LazyFormat(subject, context)


class LazyFormat:
    """A subject translated in the notification's language when str() is called."""

    def __init__(self, message: Any, context: dict[str, Any]) -> None:
        self.message, self.context = message, context

    def __str__(self) -> str:
        return str(self.message) % self.context


SUBJECTS: dict[str, Any] = {
    COORDINATOR_NEW: _l("New referral waiting: %(reference)s (%(priority)s)"),
    REFERRER_ACK: _l("Referral received: %(reference)s"),
    FAMILY_ACK: _l("We received your request: %(reference)s"),
    FAMILY_MESSAGE_ACK: _l("We received your message: %(reference)s"),
    CARE_TEAM_NEW: _l("New message from a patient's family: %(reference)s"),
    FAMILY_MESSAGE_ANSWERED: _l("Your care team answered your message: %(reference)s"),
    "status_update": _l("Update on request %(reference)s"),
    "info_request": _l("More information needed for request %(reference)s"),
    "escalation": _l("Deadline alert: %(reference)s (%(priority)s)"),
    # Staff only (English, like the staff pages): an upload link was answered.
    "info_received": "Information received for case %(reference)s",
    # Staff only: a case was assigned to a reviewing physician (a P1 is due the same day).
    "review_assigned": "Case %(reference)s (%(priority)s) assigned to you for review",
}

# Kinds `<prefix>.<…>` whose template name and context another module fills in (info requests,
# escalations); each registers itself here when imported.
KIND_RENDERERS: dict[str, Callable[[Notification, dict[str, Any]], str]] = {}
# Kinds `<prefix>.<…>` that must be checked again at send time: the check returns why the email
# must no longer go out (a short code), or None. Registered like KIND_RENDERERS.
KIND_SEND_CHECKS: dict[str, Callable[[Notification], str | None]] = {}


def cancel_unsent(notifications: list[Notification], reason: str) -> int:
    """Mark notifications that have not gone out as cancelled, with a timeline entry each, in
    the caller's transaction. One a worker is sending right now is left to the check at send
    time. Returns how many were cancelled."""
    cancelled = 0
    for notification in notifications:
        if notification.status not in UNSENT:
            continue
        _set_cancelled(notification, reason)
        cancelled += 1
    return cancelled


def _set_cancelled(notification: Notification, reason: str) -> None:
    notification.status = CANCELLED
    notification.claimed_until = None
    notification.next_attempt_at = None
    notification.last_error = f"cancelled:{reason}"[:200]
    db.session.add(
        TimelineEvent(
            referral_id=notification.referral_id,
            action="email_cancelled",
            detail={"notification": notification.kind, "reason": reason},
        )
    )
    log.info(
        "notification_cancelled notification=%s referral=%s kind=%s reason=%s",
        notification.id,
        notification.referral_id,
        notification.kind,
        reason,
    )


def _send_refusal(notification: Notification) -> str | None:
    check = KIND_SEND_CHECKS.get(notification.kind.split(".", 1)[0])
    return check(notification) if check is not None else None


def _claim(notification_id: str) -> tuple[bool, bool]:
    """Take the row for sending. Returns (claimed, previous attempt may have been delivered)."""
    now = utcnow()
    claim_until = now + timedelta(seconds=current_app.config["CLAIM_SECONDS"])
    stale_sending = sa.and_(Notification.status == "sending", Notification.claimed_until < now)
    row = db.session.execute(
        sa.select(Notification.status).where(Notification.id == notification_id)
    ).first()
    was_stale = bool(row and row.status == "sending")
    result = db.session.execute(
        sa.update(Notification)
        .where(
            Notification.id == notification_id,
            sa.or_(
                sa.and_(
                    Notification.status.in_(("pending", "retry")),
                    sa.or_(
                        Notification.next_attempt_at.is_(None),
                        Notification.next_attempt_at <= now,
                    ),
                ),
                stale_sending,
            ),
        )
        .values(status="sending", claimed_until=claim_until, attempts=Notification.attempts + 1)
    )
    db.session.commit()
    return bool(getattr(result, "rowcount", 0)), was_stale


def deliver(notification_id: str) -> str:
    """Send one notification if it is due; safe to call any number of times."""
    claimed, maybe_duplicate = _claim(notification_id)
    if not claimed:
        return "skipped"
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        return "missing"
    referral = db.session.get(Referral, notification.referral_id)
    assert referral is not None
    refusal = _send_refusal(notification)
    if refusal is not None:
        # Our claim holds the row (status sending), so nobody else sends it meanwhile; a
        # redelivered task finds it cancelled and claims nothing.
        _set_cancelled(notification, refusal)
        db.session.commit()
        return CANCELLED
    if maybe_duplicate:
        log.warning(
            "duplicate_risk notification=%s message_id=%s: an earlier attempt was interrupted "
            "and may have been delivered",
            notification.id,
            notification.message_id,
        )
    email = render(notification, referral)
    try:
        mail.send(email, current_app.config)
    except mail.TransientMailError as exc:
        return _record_failure(notification, referral, str(exc))
    _mark_sent(notification.id, referral.id, notification.kind, notification.attempts)
    return "sent"


def _mark_sent(notification_id: str, referral_id: int, kind: str, attempts: int) -> None:
    """Record the delivery, retrying through a database blip while our claim still holds.

    The message is already accepted: giving up here would let the claim expire and the email go
    out twice (fault F8, a PostgreSQL restart mid-task), so keep trying for half the claim.
    """
    deadline = time.monotonic() + current_app.config["CLAIM_SECONDS"] / 2
    pause = 0.25
    while True:
        try:
            result = db.session.execute(
                sa.update(Notification)
                .where(Notification.id == notification_id, Notification.status == "sending")
                .values(status="sent", sent_at=utcnow(), claimed_until=None, last_error=None)
            )
            if getattr(result, "rowcount", 0):
                db.session.add(
                    TimelineEvent(
                        referral_id=referral_id,
                        action="email_sent",
                        detail={"notification": kind, "attempts": attempts},
                    )
                )
            db.session.commit()
            return
        except DBAPIError as exc:
            db.session.rollback()
            if not is_database_unavailable(exc) or time.monotonic() + pause > deadline:
                raise
            log.warning("mark_sent_retry notification=%s", notification_id)
            time.sleep(pause)
            pause = min(pause * 2, 4.0)


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter, capped below the broker's visibility timeout."""
    cap = current_app.config["RETRY_BACKOFF_MAX"]
    base = min(cap, 2 ** max(attempts, 1))
    return float(base / 2 + random.random() * base / 2)  # noqa: S311


def _record_failure(notification: Notification, referral: Referral, error: str) -> str:
    notification.last_error = error[:200]
    notification.claimed_until = None
    if notification.attempts >= current_app.config["NOTIFY_MAX_ATTEMPTS"]:
        notification.status = "failed"
        notification.next_attempt_at = None
        db.session.add(
            DeadLetter(task_name="notify.send", args=[notification.id], error=error[:200])
        )
        db.session.add(
            TimelineEvent(
                referral_id=referral.id,
                action="email_failed",
                detail={"notification": notification.kind, "attempts": notification.attempts},
            )
        )
        alerts.raise_alert(
            code="notification_failed",
            dedupe_key=f"notification_failed:{notification.id}",
            referral_id=referral.id,
            message=(
                f"Email '{notification.kind}' for case {format_reference(referral.reference)} "
                f"failed after {notification.attempts} attempts."
            ),
        )
        db.session.commit()
        return "failed"
    delay = retry_delay(notification.attempts)
    notification.status = "retry"
    notification.next_attempt_at = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    log.info(
        "notification_retry notification=%s attempts=%s delay=%.1fs",
        notification.id,
        notification.attempts,
        delay,
    )
    return f"retry:{delay:.3f}"
