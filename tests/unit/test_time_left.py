"""Time left on a deadline as the queue and the case page show it (pure): hours and minutes
plus the due clock time once at most one business day is left."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from intake.domain.calendar import BusinessCalendar
from intake.domain.deadlines import format_due, format_hours, time_left

CAL = BusinessCalendar(tz="America/New_York", day_start=time(8), day_end=time(17))
TUESDAY_08 = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 New York
TUESDAY_17 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
WEDNESDAY_08 = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def test_a_p1_due_today_reads_apart_from_a_p2_due_tomorrow_morning() -> None:
    today = time_left(CAL, TUESDAY_08, TUESDAY_17)
    tomorrow = time_left(CAL, TUESDAY_08, WEDNESDAY_08)
    # The same business time away (9 h), told apart by the due clock time.
    assert today.seconds == tomorrow.seconds == 9 * 3600
    assert today.label == "9 h left, due 17:00"
    assert tomorrow.label == "9 h left, due tomorrow 08:00"
    assert today.due_label == "due 17:00" and not today.overdue
    assert "1 d" not in today.label + tomorrow.label


def test_hours_and_minutes_under_a_business_day() -> None:
    at = TUESDAY_08 + timedelta(hours=6, minutes=45)  # 14:45
    assert time_left(CAL, at, TUESDAY_17).label == "2 h 15 min left, due 17:00"
    assert time_left(CAL, TUESDAY_17 - timedelta(minutes=10), TUESDAY_17).label == (
        "10 min left, due 17:00"
    )


def test_more_than_a_business_day_stays_in_days() -> None:
    left = time_left(CAL, TUESDAY_08, WEDNESDAY_08 + timedelta(hours=3))
    assert left.label == "1 d 3 h left" and left.due_label == ""


def test_overdue_is_unchanged() -> None:
    late = time_left(CAL, TUESDAY_17 + timedelta(hours=15, minutes=30), TUESDAY_17)
    assert late.overdue and late.label == "overdue by 30 min" and late.seconds < 0


def test_due_over_a_weekend_or_further() -> None:
    friday_16 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    monday_08 = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    assert time_left(CAL, friday_16, monday_08).label == "1 h left, due Mon 08:00"
    assert format_due(CAL, TUESDAY_08, datetime(2026, 12, 7, 14, 0, tzinfo=UTC)) == (
        "due 7 Dec 09:00"
    )
    # The program's zone, not UTC: 22:00 UTC is 17:00 in New York.
    assert format_due(CAL, TUESDAY_08, TUESDAY_17).endswith("17:00")


def test_format_hours() -> None:
    assert format_hours(0) == "0 min"
    assert format_hours(9 * 3600) == "9 h"
    assert format_hours(3600 + 60) == "1 h 1 min"
