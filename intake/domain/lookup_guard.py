"""Brute-force guard for the public status lookup (decision 1).

A reference that receives ``max_failures`` wrong birth dates in a row is locked for
``lock_for``; while locked, every attempt is refused, even with the right date of birth. When
the lock (or a quiet period of the same length) has passed, counting starts again. Pure: the
caller loads the guard's state, passes "now", and stores what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["GuardState", "after_failure", "is_locked"]


@dataclass(frozen=True)
class GuardState:
    failed_attempts: int = 0
    last_failed_at: datetime | None = None
    locked_until: datetime | None = None


def is_locked(state: GuardState, now: datetime) -> bool:
    """Whether attempts for this reference are refused at ``now``."""
    return state.locked_until is not None and now < state.locked_until


def _stale(state: GuardState, now: datetime, lock_for: timedelta) -> bool:
    # An expired lock, or failures long enough ago, no longer count.
    if state.locked_until is not None and now >= state.locked_until:
        return True
    return state.last_failed_at is None or now - state.last_failed_at >= lock_for


def after_failure(
    state: GuardState, now: datetime, *, max_failures: int, lock_for: timedelta
) -> GuardState:
    """The state after one more wrong date of birth at ``now`` (not called while locked)."""
    previous = 0 if _stale(state, now, lock_for) else state.failed_attempts
    failures = previous + 1
    locked_until = now + lock_for if failures >= max_failures else None
    return GuardState(failed_attempts=failures, last_failed_at=now, locked_until=locked_until)
