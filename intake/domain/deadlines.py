"""Deadline arithmetic on the business calendar: time left, pausing, escalation levels.

Pure: no Flask, no database. Decision 4 (the review clock pauses while waiting on the referrer
or family) and decision 14 (level 1 at 75% of the deadline, level 2 at breach, level 3 at
breach + 4 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from intake.domain.calendar import BusinessCalendar

__all__ = [
    "LEVEL_THREE_AFTER",
    "TimeLeft",
    "add_business_seconds",
    "escalation_level",
    "format_business",
    "time_left",
]

LEVEL_ONE_SHARE = 0.75
LEVEL_THREE_AFTER = timedelta(hours=4)


def _day_seconds(calendar: BusinessCalendar) -> float:
    start = datetime.combine(datetime(2000, 1, 3).date(), calendar.day_start)
    end = datetime.combine(datetime(2000, 1, 3).date(), calendar.day_end)
    return (end - start).total_seconds()


def add_business_seconds(calendar: BusinessCalendar, start: datetime, seconds: float) -> datetime:
    """The instant ``seconds`` of business time after ``start`` (used to resume a clock)."""
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    at = calendar.next_business_start(start)
    remaining = float(seconds)
    while True:
        local_day = calendar.local_date(at)
        day_end = datetime.combine(local_day, calendar.day_end, tzinfo=calendar.zone).astimezone(
            UTC
        )
        available = (day_end - at).total_seconds()
        if remaining <= available:
            return at + timedelta(seconds=remaining)
        remaining -= available
        at = calendar.next_business_start(day_end)


@dataclass(frozen=True)
class TimeLeft:
    seconds: float  # business seconds; negative once overdue
    overdue: bool
    label: str


def format_business(seconds: float, calendar: BusinessCalendar) -> str:
    """``1 d 3 h``, ``2 h 15 min`` or ``10 min``: business days of the calendar's length."""
    total_minutes = int(abs(seconds) // 60)
    day_minutes = int(_day_seconds(calendar) // 60)
    days, rest = divmod(total_minutes, day_minutes)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} d")
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "0 min"


def time_left(calendar: BusinessCalendar, now: datetime, due: datetime) -> TimeLeft:
    seconds = calendar.business_seconds_between(now, due)
    overdue = now >= due
    text = format_business(seconds, calendar)
    if overdue:
        return TimeLeft(-abs(seconds), True, f"overdue by {text}" if seconds else "overdue")
    return TimeLeft(seconds, False, f"{text} left")


def escalation_level(
    calendar: BusinessCalendar, start: datetime, due: datetime, now: datetime
) -> int:
    """0 = on track, 1 = 75% of the business time used, 2 = breached, 3 = breach + 4 h."""
    if now >= due + LEVEL_THREE_AFTER:
        return 3
    if now >= due:
        return 2
    total = calendar.business_seconds_between(start, due)
    used = calendar.business_seconds_between(start, now)
    if total <= 0 or used >= LEVEL_ONE_SHARE * total:
        return 1
    return 0
