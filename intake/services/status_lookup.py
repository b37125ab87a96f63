"""Status lookup by reference and the child's date of birth (decision 1).

A wrong date, an unknown reference and a locked reference all come back as ``None``: the
caller gives them one generic reply. Every well-formed reference tried gets a guard row, known
or not, so an attacker cannot tell them apart by the lock either.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from intake.domain.lookup_guard import GuardState, after_failure, is_locked
from intake.extensions import db
from intake.models import Referral, StatusLookupGuard, utcnow

log = logging.getLogger("intake.status_lookup")

# Injectable clock: tests move time past a lock without touching the system clock.
_clock: Callable[[], datetime] = utcnow


def find_case(reference: str, dob: date, config: dict[str, Any]) -> Referral | None:
    """The case whose reference (canonical form) and child's date of birth both match.

    Commits the guard's bookkeeping; returns None for any mismatch and while locked.
    """
    now = _clock()
    guard = _guard_for_update(reference)
    state = GuardState(guard.failed_attempts, guard.last_failed_at, guard.locked_until)
    if is_locked(state, now):
        db.session.commit()
        log.warning("status_lookup_refused reason=locked")
        return None
    referral = db.session.scalar(sa.select(Referral).where(Referral.reference == reference))
    # Compared in constant time, and a DOB is looked at even when the reference is unknown.
    stored_dob = referral.patient_dob.isoformat() if referral is not None else "0000-00-00"
    if referral is not None and hmac.compare_digest(stored_dob, dob.isoformat()):
        guard.failed_attempts, guard.last_failed_at, guard.locked_until = 0, None, None
        db.session.commit()
        return referral
    new_state = after_failure(
        state,
        now,
        max_failures=int(config["STATUS_LOCK_AFTER"]),
        lock_for=timedelta(minutes=int(config["STATUS_LOCK_MINUTES"])),
    )
    guard.failed_attempts = new_state.failed_attempts
    guard.last_failed_at = new_state.last_failed_at
    guard.locked_until = new_state.locked_until
    db.session.commit()
    if new_state.locked_until is not None:
        log.warning("status_lookup_locked attempts=%s", new_state.failed_attempts)
    else:
        log.info("status_lookup_no_match attempts=%s", new_state.failed_attempts)
    return None


def _guard_for_update(reference: str) -> StatusLookupGuard:
    """The reference's guard row, locked for this transaction (created on first use)."""
    query = (
        sa.select(StatusLookupGuard)
        .where(StatusLookupGuard.reference == reference)
        .with_for_update()
    )
    guard = db.session.scalar(query)
    if guard is not None:
        return guard
    try:
        with db.session.begin_nested():
            db.session.add(StatusLookupGuard(reference=reference, failed_attempts=0))
    except IntegrityError:
        pass  # another request created it first
    guard = db.session.scalar(query)
    assert guard is not None
    return guard
