"""Deadline escalation (decisions 4, 13 and 14), run by beat, for both clocks:

* ``review``: the priority's deadline, while no decision is recorded and the clock is not
  paused (waiting on the referrer or family);
* ``ack``: acknowledgement within one business day of receipt, until the first contact with the
  referrer or family (``casework``: a contact note, a request for information, a decision they
  are told of, a message answered); assigning the case does not stop it. Family messages have
  this clock only.

Level 1 at 75% of the deadline goes to the assignee (or the queue's coordinators), level 2 at
breach to the program lead, level 3 at breach + 4 hours to on-call. An Escalation row unique
per (case, clock, level) and a notification unique per (case, kind) make every sweep safe to
repeat.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from intake.domain import statuses
from intake.domain.deadlines import escalation_level
from intake.extensions import db
from intake.models import Escalation, Notification, Referral, TimelineEvent, User
from intake.services import notifications
from intake.services.auth import now
from intake.services.queue import OPEN_STATUSES
from intake.services.referrals import program_calendar
from intake.services.routing import recipients_for

log = logging.getLogger("intake.escalation")

KIND = "escalation"
# Statuses whose review clock runs: a decision has not been recorded yet.
CLOCK_STATUSES = tuple(sorted(statuses.REVIEW_CLOCK))
CLOCKS = ("review", "ack")
LEVEL_TEXT = {
    ("review", 1): "75% of the review time has passed.",
    ("review", 2): "The review deadline has passed.",
    ("review", 3): "The review deadline passed more than 4 business hours ago.",
    ("ack", 1): "75% of the time to acknowledge this case has passed; nobody has contacted the "
    "referrer or family yet.",
    ("ack", 2): "The acknowledgement deadline has passed; nobody has contacted the referrer or "
    "family.",
    ("ack", 3): "The acknowledgement deadline passed more than 4 business hours ago.",
}


def recipients(referral: Referral, level: int) -> list[str]:
    if level == 1:
        if referral.assignee_id:
            assignee = db.session.get(User, referral.assignee_id)
            if assignee is not None and assignee.active:
                return [assignee.email]
        return notifications.coordinator_recipients(referral)
    role = "lead" if level == 2 else "oncall"
    found = recipients_for(referral.kind, referral.triage_priority, role)
    if not found:
        configured = "PROGRAM_LEAD_EMAILS" if level == 2 else "ONCALL_EMAILS"
        found = list(current_app.config[configured]) or notifications.coordinator_recipients(
            referral
        )
    return found


def _candidates(clock: str) -> sa.Select[tuple[int, datetime, datetime]]:
    if clock == "ack":
        return sa.select(Referral.id, Referral.created_at, Referral.ack_due_at).where(
            Referral.status.in_(OPEN_STATUSES),
            Referral.ack_due_at.is_not(None),
            Referral.acknowledged_at.is_(None),
        )
    return sa.select(Referral.id, Referral.created_at, Referral.review_due_at).where(
        Referral.status.in_(CLOCK_STATUSES),
        Referral.review_due_at.is_not(None),
        Referral.clock_paused_at.is_(None),
    )


def sweep(at: datetime | None = None, clocks: tuple[str, ...] = CLOCKS) -> dict[int, int]:
    """Escalate every case near or past a deadline, once per clock and level.

    Returns how many escalations were made per level (all clocks together).
    """
    at = at or now()
    calendar = program_calendar()
    counts = {1: 0, 2: 0, 3: 0}
    unannounced = _unannounced() if "ack" in clocks else set()
    for clock in clocks:
        for referral_id, created_at, due in db.session.execute(_candidates(clock)).all():
            level = escalation_level(calendar, created_at, due, at)
            if clock == "ack" and referral_id in unannounced:
                level = max(level, 2)
            if level == 0:
                continue
            done = set(
                db.session.scalars(
                    sa.select(Escalation.level).where(
                        Escalation.referral_id == referral_id, Escalation.clock == clock
                    )
                )
            )
            for step in range(1, level + 1):
                if step not in done and _escalate(referral_id, clock, step, at):
                    counts[step] += 1
    return counts


def _unannounced() -> set[int]:
    """Cases whose new-case email failed after its last retry (security.md §4, design 5).

    Nobody was told about them, so their acknowledgement clock counts as breached at once and
    the program lead hears of them (level 2), besides the alert the failure raised.
    """
    return set(
        db.session.scalars(
            sa.select(Notification.referral_id).where(
                Notification.kind.in_((notifications.COORDINATOR_NEW, notifications.CARE_TEAM_NEW)),
                Notification.status == "failed",
            )
        )
    )


def _escalate(referral_id: int, clock: str, level: int, at: datetime) -> bool:
    referral = db.session.get(Referral, referral_id)
    assert referral is not None
    to = recipients(referral, level)
    try:
        db.session.add(
            Escalation(referral_id=referral.id, level=level, clock=clock, at=at, recipients=to)
        )
        db.session.flush()
    except IntegrityError:
        # Another sweep got there first.
        db.session.rollback()
        return False
    db.session.add(
        TimelineEvent(
            referral_id=referral.id,
            action="escalated",
            detail={"level": level, "clock": clock},
        )
    )
    notifications.ensure_notification(referral, f"{KIND}.{clock}.{level}", to)
    db.session.commit()
    log.info("escalated referral=%s clock=%s level=%s", referral.id, clock, level)
    return True


def _render_context(notification: Notification, context: dict[str, Any]) -> str:
    _kind, clock, level_text = notification.kind.split(".")
    level = int(level_text)
    if clock == "ack":
        referral = db.session.get(Referral, notification.referral_id)
        context["due_at"] = referral.ack_due_at if referral is not None else None
    if context.get("priority") is None:
        context["priority"] = "untriaged"  # a family's message: never triaged for eligibility
    context["level"] = level
    context["escalation_text"] = LEVEL_TEXT.get((clock, level), "")
    return "escalation"


notifications.KIND_RENDERERS[KIND] = _render_context
