"""Business-day calendar for acknowledgement and review deadlines (decision 13).

Pure stdlib. Every public method takes timezone-aware datetimes (a naive one raises
``ValueError``) and returns UTC-aware datetimes; local wall-clock reasoning happens in the
program time zone (``PROGRAM_TZ``) through :mod:`zoneinfo`, so DST shifts are handled.

Semantics:

* Business time is ``day_start <= local time < day_end`` on a weekday that is not a holiday.
* A start outside business time (evening, weekend, holiday) is moved to the next business
  morning: the *effective start*.
* ``deadline(start, 0)`` is ``day_end`` local on the effective start's day ("same business day").
* ``deadline(start, n)`` for ``n >= 1`` is the effective start's local clock time, ``n``
  business days later (an after-hours start therefore becomes ``day_start`` ``n`` days later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["BusinessCalendar", "parse_holidays"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ONE_DAY = timedelta(days=1)


def _require_aware(at: datetime, name: str = "at") -> None:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def parse_holidays(text: str) -> frozenset[date]:
    """Parse a comma-separated list of ISO dates (``YYYY-MM-DD``), e.g. from an env var.

    Blank entries are ignored; anything else that is not a valid date raises ``ValueError``.
    """
    days: set[date] = set()
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            continue
        # fromisoformat alone would also accept forms such as "20261225" or "2026-W52-5".
        if not _ISO_DATE.fullmatch(token):
            raise ValueError(f"invalid holiday date {token!r}: expected YYYY-MM-DD")
        try:
            days.add(date.fromisoformat(token))
        except ValueError as exc:
            raise ValueError(f"invalid holiday date {token!r}: {exc}") from exc
    return frozenset(days)


@dataclass(frozen=True)
class BusinessCalendar:
    """Business hours in one time zone, Monday to Friday, minus ``holidays``."""

    tz: str = "America/New_York"
    day_start: time = time(8, 0)
    day_end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("day_start and day_end must be naive local times")
        if self.day_start >= self.day_end:
            raise ValueError("day_start must be before day_end")
        # Accept any iterable of dates from callers (e.g. a set) but keep the hashable type.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "_zone", zone)

    # -- helpers -------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        """The program time zone."""
        return self._zone

    def local(self, at: datetime) -> datetime:
        """``at`` converted to the program time zone."""
        _require_aware(at)
        return at.astimezone(self._zone)

    def local_date(self, at: datetime) -> date:
        """The program-local calendar date of ``at``."""
        return self.local(at).date()

    def is_business_day(self, day: date) -> bool:
        """True for a weekday that is not a configured holiday."""
        return day.weekday() < 5 and day not in self.holidays

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        day += _ONE_DAY
        while not self.is_business_day(day):
            day += _ONE_DAY
        return day

    def _at_local(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self._zone).astimezone(UTC)

    # -- public API ----------------------------------------------------------------------

    def is_business_time(self, at: datetime) -> bool:
        """True if ``at`` falls inside business hours on a business day (end exclusive)."""
        local = self.local(at)
        return self.is_business_day(local.date()) and self.day_start <= local.time() < self.day_end

    def next_business_start(self, at: datetime) -> datetime:
        """``at`` itself (in UTC) if inside business hours, else the next business morning."""
        local = self.local(at)
        day = local.date()
        if self.is_business_day(day):
            if self.day_start <= local.time() < self.day_end:
                return at.astimezone(UTC)
            if local.time() < self.day_start:
                return self._at_local(day, self.day_start)
        return self._at_local(self.next_business_day(day), self.day_start)

    def deadline(self, start: datetime, business_days: int) -> datetime:
        """Deadline ``business_days`` after ``start`` (0 = end of the effective business day)."""
        _require_aware(start, "start")
        if business_days < 0:
            raise ValueError("business_days must be >= 0")
        effective = self.local(self.next_business_start(start))
        day = effective.date()
        if business_days == 0:
            return self._at_local(day, self.day_end)
        for _ in range(business_days):
            day = self.next_business_day(day)
        # Wall-clock time, not elapsed hours, so a DST change keeps "10:00 two days later".
        return self._at_local(day, effective.time())

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        """Business time from ``start`` to ``end`` in seconds; negative if ``end < start``."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end < start:
            return -self.business_seconds_between(end, start)
        first = self.local_date(start)
        last = self.local_date(end)
        if first == last:
            return self._seconds_within(first, start, end)
        # The two end days exactly; the whole days between from per-year running sums, so a
        # case overdue for years costs no more to show than one overdue for a day.
        return (
            self._seconds_within(first, start, end)
            + _whole_days_seconds(self, first + _ONE_DAY, last - _ONE_DAY)
            + self._seconds_within(last, start, end)
        )

    def _seconds_within(self, day: date, start: datetime, end: datetime) -> float:
        """Business time of local ``day`` that falls between ``start`` and ``end``."""
        if not self.is_business_day(day):
            return 0.0
        # Intersect in UTC so a DST day's window has its true length.
        lo = max(start, self._at_local(day, self.day_start))
        hi = min(end, self._at_local(day, self.day_end))
        return (hi - lo).total_seconds() if hi > lo else 0.0

    def _window_seconds(self, day: date) -> float:
        """The whole business window of ``day`` in seconds (0 on weekends and holidays)."""
        if not self.is_business_day(day):
            return 0.0
        window = self._at_local(day, self.day_end) - self._at_local(day, self.day_start)
        return window.total_seconds()


@lru_cache(maxsize=256)
def _year_running(calendar: BusinessCalendar, year: int) -> tuple[float, ...]:
    """``result[i]``: business seconds of the whole days of ``year`` before its i-th day."""
    running = [0.0]
    day = date(year, 1, 1)
    while day.year == year:
        running.append(running[-1] + calendar._window_seconds(day))
        day += _ONE_DAY
    return tuple(running)


def _whole_days_seconds(calendar: BusinessCalendar, first: date, last: date) -> float:
    """Business seconds of the whole days ``first`` to ``last`` inclusive (0 if none)."""
    total = 0.0
    day = first
    while day <= last:
        running = _year_running(calendar, day.year)
        start_index = day.timetuple().tm_yday - 1
        end_day = min(last, date(day.year, 12, 31))
        total += running[end_day.timetuple().tm_yday] - running[start_index]
        day = end_day + _ONE_DAY
    return total
