"""Which months of stored events may be archived: pure decisions on UTC months.

A month is archived (exported to a file, then its rows deleted from ``metering.events``) once it is both old enough
(its end older than the minimum age, itself longer than the deduplication window) and invoiced (its end no later
than the invoicing horizon: the earliest billing period still open).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Ingest refuses events older than this (services/ingest/domain/event.py), so an event id can only come back
# with a timestamp within it: the deduplication window.
DEDUPLICATION_WINDOW = timedelta(days=35)
# The least minimum age of an archived month's end: the window and a week's margin (redeliveries, clock skew).
# So no event of an archived month can be accepted again: its rows, once deleted, never reappear.
MIN_RETENTION_AGE_DAYS = 42


def month_start(instant: datetime) -> datetime:
    """The start of the UTC month containing ``instant``."""
    utc = instant.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return month.replace(year=index // 12, month=index % 12 + 1)


def archive_name(month: datetime) -> str:
    """The stem of a month's archive files: ``events_YYYY_MM`` (``.csv.gz`` and ``.manifest.json``)."""
    return f"events_{month.year:04d}_{month.month:02d}"


def months_from(first: datetime, before: datetime) -> list[datetime]:
    """The UTC months from the one containing ``first`` to the last one ending no later than ``before``."""
    months, month = [], month_start(first)
    while add_months(month, 1) <= before:
        months.append(month)
        month = add_months(month, 1)
    return months


def day_slices(month: datetime) -> list[tuple[datetime, datetime]]:
    """The month's UTC days as [start, end) ranges: the bounds of the deleting batches."""
    end, day, days = add_months(month, 1), month, []
    while day < end:
        days.append((day, day + timedelta(days=1)))
        day += timedelta(days=1)
    return days


def archivable(month: datetime, now: datetime, min_age_days: int, horizon: datetime | None) -> bool:
    """Whether the month's events may be archived: its end older than the minimum age and no later than the
    invoicing horizon (the earliest start of a billing period not invoiced yet; None when none is open)."""
    end = add_months(month, 1)
    if end > now - timedelta(days=min_age_days):
        return False
    return horizon is None or end <= horizon


def archivable_months(
    months: set[datetime], now: datetime, min_age_days: int, horizon: datetime | None
) -> list[datetime]:
    """The months to archive, oldest first. Stops at the first month that may not be: a later one never may."""
    chosen = []
    for month in sorted(months):
        if not archivable(month, now, min_age_days, horizon):
            break
        chosen.append(month)
    return chosen
