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
    "format_due",
    "format_hours",
    "time_left",
]

LEVEL_ONE_SHARE = 0.75
LEVEL_THREE_AFTER = timedelta(hours=4)
# Staff pages are English only; not the process locale's names.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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
    # "due 17:00", "due tomorrow 08:00", "due Mon 08:00" (program time zone) while at most one
    # business day is left; empty otherwise. Already part of ``label``.
    due_label: str = ""


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


def format_hours(seconds: float) -> str:
    """``9 h``, ``2 h 15 min`` or ``10 min``: business time in hours and minutes."""
    hours, minutes = divmod(int(abs(seconds) // 60), 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "0 min"


def format_due(calendar: BusinessCalendar, now: datetime, due: datetime) -> str:
    """The due clock time in the program's zone: ``due 17:00`` today, ``due tomorrow 08:00``,
    else ``due Mon 08:00`` (within the week) or ``due 7 Dec 08:00``."""
    local_due = calendar.local(due)
    days = (local_due.date() - calendar.local_date(now)).days
    clock = local_due.strftime("%H:%M")
    if days == 0:
        return f"due {clock}"
    if days == 1:
        return f"due tomorrow {clock}"
    if 1 < days < 7:
        return f"due {_WEEKDAYS[local_due.weekday()]} {clock}"
    return f"due {local_due.day} {_MONTHS[local_due.month - 1]} {clock}"


def time_left(calendar: BusinessCalendar, now: datetime, due: datetime) -> TimeLeft:
    """Business time left. At most one business day left: hours and minutes plus the due clock
    time, so a P1 due at 17:00 today reads apart from a P2 due at 08:00 tomorrow (the same
    business time away); more: ``1 d 3 h left``."""
    seconds = calendar.business_seconds_between(now, due)
    overdue = now >= due
    if overdue:
        text = format_business(seconds, calendar)
        return TimeLeft(-abs(seconds), True, f"overdue by {text}" if seconds else "overdue")
    if seconds <= _day_seconds(calendar):
        due_label = format_due(calendar, now, due)
        return TimeLeft(seconds, False, f"{format_hours(seconds)} left, {due_label}", due_label)
    return TimeLeft(seconds, False, f"{format_business(seconds, calendar)} left")


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
