"""Business calendar: hours, weekends, holidays, after-hours starts and DST (decision 13)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from intake.domain.calendar import BusinessCalendar, parse_holidays

NY = ZoneInfo("America/New_York")
THANKSGIVING = date(2026, 11, 26)  # Thursday
DAY_AFTER = date(2026, 11, 27)  # Friday
CAL = BusinessCalendar(holidays=frozenset({THANKSGIVING, DAY_AFTER}))
HOUR = 3600.0


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NY)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- is_business_time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ny(2026, 11, 18, 10, 0), True),  # Wednesday morning
        (ny(2026, 11, 18, 8, 0), True),  # opening minute is inside
        (ny(2026, 11, 18, 7, 59, 59), False),
        (ny(2026, 11, 18, 16, 59, 59), True),
        (ny(2026, 11, 18, 17, 0), False),  # closing time is outside
        (ny(2026, 11, 21, 10, 0), False),  # Saturday
        (ny(2026, 11, 22, 10, 0), False),  # Sunday
        (ny(2026, 11, 26, 10, 0), False),  # holiday
        (utc(2026, 11, 18, 15, 0), True),  # 10:00 EST given in UTC
        (utc(2026, 11, 18, 12, 0), False),  # 07:00 EST
        (datetime(2026, 11, 18, 16, 0, tzinfo=timezone(timedelta(hours=1))), True),  # 10:00 EST
    ],
    ids=[
        "weekday",
        "opening",
        "before-open",
        "just-before-close",
        "closing",
        "saturday",
        "sunday",
        "holiday",
        "utc-input-inside",
        "utc-input-before-open",
        "other-offset",
    ],
)
def test_is_business_time(at: datetime, expected: bool) -> None:
    assert CAL.is_business_time(at) is expected


# -- next_business_start -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ny(2026, 11, 18, 10, 30), ny(2026, 11, 18, 10, 30)),  # inside: unchanged
        (ny(2026, 11, 18, 6, 0), ny(2026, 11, 18, 8, 0)),  # early morning: same day
        (ny(2026, 11, 18, 17, 0), ny(2026, 11, 19, 8, 0)),  # at close: next day
        (ny(2026, 11, 20, 18, 0), ny(2026, 11, 23, 8, 0)),  # Friday evening: Monday
        (ny(2026, 11, 21, 12, 0), ny(2026, 11, 23, 8, 0)),  # Saturday: Monday
        (ny(2026, 11, 25, 18, 0), ny(2026, 11, 30, 8, 0)),  # before Thu+Fri holidays
        (ny(2026, 11, 26, 9, 0), ny(2026, 11, 30, 8, 0)),  # on a holiday
    ],
    ids=["inside", "early", "at-close", "friday-evening", "saturday", "pre-holiday", "holiday"],
)
def test_next_business_start(at: datetime, expected: datetime) -> None:
    result = CAL.next_business_start(at)
    assert result == expected
    assert result.tzinfo is UTC


# -- deadline ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (ny(2026, 11, 18, 10, 0), 0, ny(2026, 11, 18, 17, 0)),  # same business day
        (ny(2026, 11, 18, 10, 0), 1, ny(2026, 11, 19, 10, 0)),
        (ny(2026, 11, 18, 10, 0), 2, ny(2026, 11, 20, 10, 0)),
        (ny(2026, 11, 20, 10, 0), 1, ny(2026, 11, 23, 10, 0)),  # over a weekend
        (ny(2026, 11, 25, 10, 0), 1, ny(2026, 11, 30, 10, 0)),  # over two holidays + weekend
        (ny(2026, 11, 18, 8, 0), 1, ny(2026, 11, 19, 8, 0)),  # exactly day_start kept
        (ny(2026, 11, 18, 19, 0), 0, ny(2026, 11, 19, 17, 0)),  # evening: next day's end
        (ny(2026, 11, 18, 19, 0), 1, ny(2026, 11, 20, 8, 0)),  # evening: next morning + 1
        (ny(2026, 11, 20, 18, 0), 1, ny(2026, 11, 24, 8, 0)),  # Friday evening -> Tue 08:00
        (ny(2026, 11, 21, 11, 0), 0, ny(2026, 11, 23, 17, 0)),  # Saturday, P1 -> Monday
        (ny(2026, 11, 18, 6, 0), 0, ny(2026, 11, 18, 17, 0)),  # early morning, same day
        (ny(2026, 11, 18, 16, 59), 1, ny(2026, 11, 19, 16, 59)),
    ],
    ids=[
        "same-day",
        "one-day",
        "two-days",
        "weekend",
        "holidays",
        "exact-start",
        "evening-zero",
        "evening-one",
        "friday-evening",
        "saturday-zero",
        "early-morning-zero",
        "late-afternoon",
    ],
)
def test_deadline(start: datetime, days: int, expected: datetime) -> None:
    result = CAL.deadline(start, days)
    assert result == expected
    assert result.tzinfo is UTC


def test_deadline_across_dst_end_keeps_wall_clock() -> None:
    # DST ends Sunday 1 Nov 2026: 10:00 EDT (14:00Z) Friday -> 10:00 EST (15:00Z) Monday.
    result = CAL.deadline(ny(2026, 10, 30, 10, 0), 1)
    assert result == utc(2026, 11, 2, 15, 0)
    assert result.astimezone(NY).time() == time(10, 0)


def test_deadline_across_dst_start_keeps_wall_clock() -> None:
    # DST starts Sunday 8 Mar 2026: 10:00 EST (15:00Z) Friday -> 10:00 EDT (14:00Z) Monday.
    assert CAL.deadline(ny(2026, 3, 6, 10, 0), 1) == utc(2026, 3, 9, 14, 0)
    assert CAL.deadline(ny(2026, 3, 7, 12, 0), 0) == utc(2026, 3, 9, 21, 0)  # 17:00 EDT


def test_deadline_rejects_negative_days() -> None:
    with pytest.raises(ValueError, match="business_days"):
        CAL.deadline(ny(2026, 11, 18, 10, 0), -1)


def test_other_time_zone_and_hours() -> None:
    cal = BusinessCalendar(tz="America/Los_Angeles", day_start=time(9, 0), day_end=time(18, 0))
    # 16:00Z = 08:00 PST: before opening -> 09:00 PST = 17:00Z, deadline 0 -> 18:00 PST.
    assert cal.next_business_start(utc(2026, 11, 18, 16, 0)) == utc(2026, 11, 18, 17, 0)
    assert cal.deadline(utc(2026, 11, 18, 16, 0), 0) == utc(2026, 11, 19, 2, 0)


# -- business_seconds_between ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (ny(2026, 11, 18, 9, 0), ny(2026, 11, 18, 11, 0), 2),
        (ny(2026, 11, 18, 6, 0), ny(2026, 11, 18, 20, 0), 9),  # clipped to the window
        (ny(2026, 11, 18, 16, 0), ny(2026, 11, 19, 9, 0), 2),  # overnight
        (ny(2026, 11, 20, 16, 0), ny(2026, 11, 23, 9, 0), 2),  # weekend skipped
        (ny(2026, 11, 21, 9, 0), ny(2026, 11, 22, 17, 0), 0),  # all weekend
        (ny(2026, 11, 25, 16, 0), ny(2026, 11, 30, 9, 0), 2),  # holidays skipped
        (ny(2026, 11, 16, 0, 0), ny(2026, 11, 21, 0, 0), 45),  # full week
        (ny(2026, 10, 30, 16, 0), ny(2026, 11, 2, 9, 0), 2),  # across DST end
        (ny(2026, 11, 18, 11, 0), ny(2026, 11, 18, 9, 0), -2),  # reversed
        (ny(2026, 11, 18, 10, 0), ny(2026, 11, 18, 10, 0), 0),
    ],
    ids=[
        "same-day",
        "clipped",
        "overnight",
        "weekend",
        "all-weekend",
        "holidays",
        "full-week",
        "dst",
        "negative",
        "zero",
    ],
)
def test_business_seconds_between(start: datetime, end: datetime, hours: float) -> None:
    assert CAL.business_seconds_between(start, end) == pytest.approx(hours * HOUR)


def test_business_seconds_until_deadline_matches_deadline() -> None:
    start = ny(2026, 11, 20, 18, 0)  # Friday evening
    due = CAL.deadline(start, 2)
    assert CAL.business_seconds_between(start, due) == pytest.approx(2 * 9 * HOUR)


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda at: CAL.is_business_time(at),
        lambda at: CAL.next_business_start(at),
        lambda at: CAL.deadline(at, 1),
        lambda at: CAL.business_seconds_between(at, ny(2026, 11, 18, 10, 0)),
        lambda at: CAL.business_seconds_between(ny(2026, 11, 18, 10, 0), at),
    ],
    ids=["is_business_time", "next_business_start", "deadline", "between-start", "between-end"],
)
def test_naive_datetimes_rejected(call: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(datetime(2026, 11, 18, 10, 0))


def test_invalid_configuration_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        BusinessCalendar(tz="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="before"):
        BusinessCalendar(day_start=time(17, 0), day_end=time(8, 0))


def test_holidays_accept_a_set_and_calendar_is_hashable() -> None:
    cal = BusinessCalendar(holidays={THANKSGIVING})  # type: ignore[arg-type]
    assert cal.holidays == frozenset({THANKSGIVING})
    assert hash(cal) == hash(BusinessCalendar(holidays=frozenset({THANKSGIVING})))


# -- parse_holidays ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", frozenset()),
        ("  ,  ", frozenset()),
        ("2026-11-26", frozenset({THANKSGIVING})),
        (" 2026-11-26 , ,2026-11-27,", frozenset({THANKSGIVING, DAY_AFTER})),
        ("2026-11-26,2026-11-26", frozenset({THANKSGIVING})),
    ],
    ids=["empty", "blanks", "one", "several-with-blanks", "duplicate"],
)
def test_parse_holidays(text: str, expected: frozenset[date]) -> None:
    assert parse_holidays(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-13-01", "2026-02-30", "26-11-2026", "20261126", "tomorrow", "2026-11-26;2026-12-25"],
)
def test_parse_holidays_rejects_bad_dates(text: str) -> None:
    with pytest.raises(ValueError, match="invalid holiday date"):
        parse_holidays(text)


def _day_by_day(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    """The plain definition: each local day's window intersected with [start, end]."""
    total = 0.0
    day = calendar.local_date(start)
    while day <= calendar.local_date(end):
        if calendar.is_business_day(day):
            lo = max(start, datetime.combine(day, calendar.day_start, tzinfo=calendar.zone))
            hi = min(end, datetime.combine(day, calendar.day_end, tzinfo=calendar.zone))
            total += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


@pytest.mark.parametrize(
    "calendar",
    [
        CAL,
        BusinessCalendar(tz="Europe/Madrid", day_start=time(9, 0), day_end=time(18, 30)),
        # A window across the 02:00 DST change, with holidays in two different years.
        BusinessCalendar(
            day_start=time(0, 30),
            day_end=time(23, 0),
            holidays=frozenset({date(2025, 12, 25), date(2027, 1, 1), THANKSGIVING}),
        ),
    ],
    ids=["new-york", "madrid", "dst-window-holidays"],
)
def test_business_seconds_between_matches_the_day_by_day_definition(
    calendar: BusinessCalendar,
) -> None:
    """The running-sum shortcut (queue pages at scale) against the plain loop, on random spans
    of up to three years, both directions, starts and ends at any minute."""
    rng = random.Random(20261125)
    origin = datetime(2025, 1, 1, tzinfo=UTC)
    for _ in range(400):
        start = origin + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(-2 * 365 * 24 * 60, 3 * 365 * 24 * 60))
        expected = _day_by_day(calendar, min(start, end), max(start, end))
        if end < start:
            expected = -expected
        assert calendar.business_seconds_between(start, end) == pytest.approx(expected), (
            start,
            end,
        )
