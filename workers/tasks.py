"""Thin, named tasks: IDs in, a service call, follow-up events relayed right after commit."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError

from intake.extensions import db
from intake.models import Heartbeat, utcnow
from intake.services import notifications, outbox, referrals, uploads
from workers.guard import run_guarded

log = logging.getLogger("workers.tasks")

# Database blips (a PostgreSQL restart) are transient: retry with backoff rather than drop.
TRANSIENT = (DBAPIError,)


@shared_task(
    name="referrals.triage",
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def triage_referral(self, referral_id: int) -> str:  # type: ignore[no-untyped-def]
    def body() -> str:
        db.session.rollback()
        outcome = referrals.run_triage(int(referral_id))
        outbox.relay()
        return outcome

    # A poison message is dead-lettered after TASK_MAX_ATTEMPTS.
    return run_guarded(self, body)


@shared_task(
    name="notify.send",
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def send_notification(self, notification_id: str) -> str:  # type: ignore[no-untyped-def]
    def body() -> str:
        outcome = notifications.deliver(str(notification_id))
        if outcome.startswith("retry:"):
            delay = float(outcome.split(":", 1)[1])
            # Attempts are counted in the database, so Celery's own retry budget is not the limit.
            raise self.retry(countdown=delay, max_retries=None)
        return outcome

    # A poison message is dead-lettered after TASK_MAX_ATTEMPTS.
    return run_guarded(self, body)


@shared_task(
    name="families.authorization_pdf",
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def authorization_pdf(self, authorization_id: int) -> str:  # type: ignore[no-untyped-def]
    """The signed authorization's PDF, kept with the case; a rerun finds it done."""

    def body() -> str:
        from intake.services import authorization

        db.session.rollback()
        return authorization.generate_pdf(int(authorization_id))

    return run_guarded(self, body)


@shared_task(name="outbox.relay")
def relay_outbox() -> int:
    return outbox.relay()


@shared_task(name="pipeline.reconcile")
def reconcile() -> dict[str, int]:
    counts = referrals.reconcile()
    outbox.relay()
    return counts


@shared_task(name="system.heartbeat")
def heartbeat() -> None:
    beat = db.session.get(Heartbeat, "worker") or Heartbeat(name="worker")
    beat.at = utcnow()
    db.session.add(beat)
    db.session.commit()


@shared_task(name="uploads.gc")
def collect_upload_orphans() -> int:
    return uploads.collect_orphans(current_app.config)


@shared_task(name="uploads.rescan")
def rescan_uploads() -> dict[str, int]:
    """Scan quarantined documents again; each is locked and skipped once it has a verdict."""
    from intake.services import scanner

    return scanner.rescan_due(current_app.config)


@shared_task(name="staff.sweep")
def staff_sweep() -> dict[str, int]:
    """Deadline escalations, information-request reminders and no-response closing."""
    from intake.services import escalation, info_requests

    escalated = escalation.sweep()
    counts = info_requests.sweep()
    outbox.relay()
    return {**counts, "escalations": sum(escalated.values())}


@shared_task(name="staff.signin_notice", bind=True)
def staff_signin_notice(self, session_id: int) -> str:  # type: ignore[no-untyped-def]
    """Tell a staff member about a new sign-in to their account (H-9)."""
    from intake.services import staff_mail

    return run_guarded(self, lambda: staff_mail.send_signin_notice(int(session_id)))


@shared_task(name="staff.password_reset", bind=True)
def staff_password_reset(self, reset_id: int) -> str:  # type: ignore[no-untyped-def]
    """Email a password-reset link (rebuilt from the row's id and nonce, never passed here)."""
    from intake.services import staff_mail

    return run_guarded(self, lambda: staff_mail.send_reset(int(reset_id)))
