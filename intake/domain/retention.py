"""How long audit rows are kept (security.md H-11: at least 6 years).

The floor lives here; migration 0009_audit_floor holds the same figure in the database's own
guards (a trigger and audit_purge()), which refuse any purge of younger rows whatever the
application asks. A setting may lengthen retention, never shorten it below the floor.
"""

from __future__ import annotations

from datetime import datetime

AUDIT_RETENTION_YEARS_MIN = 6


def retention_years(configured: int | None = None) -> int:
    """The retention period in force: the configured years, but never under the floor."""
    if configured is None:
        return AUDIT_RETENTION_YEARS_MIN
    return max(AUDIT_RETENTION_YEARS_MIN, int(configured))


def years_before(moment: datetime, years: int) -> datetime:
    """``moment`` moved back by whole calendar years (29 February becomes 28 February, as
    PostgreSQL's ``- interval 'N years'`` does)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def latest_purge_cutoff(now: datetime, configured_years: int | None = None) -> datetime:
    """The latest cutoff a purge may use: rows at or after it are still inside retention."""
    return years_before(now, retention_years(configured_years))


def check_purge_cutoff(
    cutoff: datetime, now: datetime, configured_years: int | None = None
) -> None:
    """Raise ValueError when a purge would remove rows still inside the retention period."""
    limit = latest_purge_cutoff(now, configured_years)
    if cutoff > limit:
        years = retention_years(configured_years)
        raise ValueError(
            f"refusing to purge audit rows younger than {years} years: the cutoff "
            f"{cutoff:%Y-%m-%d %H:%M} UTC is later than {limit:%Y-%m-%d %H:%M} UTC"
        )
