"""Which months of stored events exist and which may be archived: pure decisions on UTC months.

Events are stored in one partition per UTC month. Partitions are created ahead of the events (from the oldest
month ingest can still send an event into, to two months ahead), and a month is archived once it is both old
enough (its end older than the minimum age, itself longer than the deduplication window) and invoiced (its end no
later than the invoicing horizon: the earliest billing period still open).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Ingest refuses events older than this (services/ingest/domain/event.py), so an event id can only come back
# with a timestamp within it: the deduplication window.
DEDUPLICATION_WINDOW = timedelta(days=35)
# The least minimum age of an archived month's end: the window and a week's margin (redeliveries, clock skew).
MIN_RETENTION_AGE_DAYS = 42

_NAME = re.compile(r"events_(\d{4})_(\d{2})")


def month_start(instant: datetime) -> datetime:
    """The start of the UTC month containing ``instant``."""
    utc = instant.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return month.replace(year=index // 12, month=index % 12 + 1)


def partition_name(month: datetime) -> str:
    return f"events_{month.year:04d}_{month.month:02d}"


def partition_month(name: str) -> datetime | None:
    """The month of a monthly partition's name; None for any other name (the default partition)."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)


def archive_file_name(month: datetime) -> str:
    return f"{partition_name(month)}.csv.gz"


def months_to_create(now: datetime, min_age_days: int) -> list[datetime]:
    """The months that must have a partition before their events arrive: from the month of (now - window - one
    month) to two months ahead, but never a month old enough to be archived (it would be archived again)."""
    first = month_start(now - DEDUPLICATION_WINDOW - timedelta(days=31))
    while add_months(first, 1) <= now - timedelta(days=min_age_days):
        first = add_months(first, 1)
    last = add_months(month_start(now), 2)
    months = []
    while first <= last:
        months.append(first)
        first = add_months(first, 1)
    return months


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
