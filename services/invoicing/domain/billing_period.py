"""Billing periods: a month in the organisation's IANA time zone, optionally shifted to an anchor day.

A period runs from local midnight of its anchor day to local midnight of the anchor day a month later, and is
keyed "YYYY-MM" by the month it starts in. Its bounds are stored as UTC instants, so Asia/Kolkata's +05:30 and a
daylight-saving zone's 23- or 25-hour days come out right: October 2026 in Asia/Kolkata starts at
2026-09-30T18:30Z.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from billing_runtime.errors import InvalidArgument

MAX_ANCHOR_DAY = 28  # every month has a 28th, so an anchored period never needs clamping
_KEY = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class BillingPeriod:
    """``[start, end)`` as UTC instants; ``key`` is the month the period starts in, in ``time_zone``."""

    start: datetime
    end: datetime
    key: str
    time_zone: str


def zone_of(time_zone: str, field: str = "time_zone") -> zoneinfo.ZoneInfo:
    """The IANA zone named ``time_zone``; InvalidArgument if there is none."""
    try:
        return zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"{time_zone!r} is not an IANA time zone such as Asia/Kolkata", field=field) from None


def parse_period_key(key: str) -> tuple[int, int]:
    """(year, month) of a key such as "2026-10"; InvalidArgument for anything else."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise InvalidArgument(f"{key!r} is not a billing period; expected YYYY-MM such as 2026-10", field="period")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise InvalidArgument(
            f"{key!r} is not a billing period; expected YYYY-MM with a month 01..12 and a year from 1970",
            field="period",
        )
    return year, month


def start_of_day(day: date, time_zone: str) -> datetime:
    """The first instant (UTC) of ``day`` in ``time_zone``.

    Where a zone skips local midnight (clocks jump from 00:00 to 01:00), zoneinfo resolves the missing 00:00 with
    the offset before the jump, which is exactly the instant the day begins."""
    local = datetime.combine(day, time(0), tzinfo=zone_of(time_zone))
    return local.astimezone(UTC)


def is_start_of_day(instant: datetime, time_zone: str) -> bool:
    """True when ``instant`` is the first instant of a day in ``time_zone``."""
    local_day = instant.astimezone(zone_of(time_zone)).date()
    return start_of_day(local_day, time_zone) == instant


def days_between(start: datetime, end: datetime, time_zone: str) -> int:
    """Local calendar days of ``time_zone`` that ``[start, end)`` touches; a partly covered day counts as one.

    Plan changes fall at the start of a day, so only a cancellation "now" covers a day partly, and that day is
    billed whole."""
    zone = zone_of(time_zone)
    first = start.astimezone(zone).date()
    last_local = end.astimezone(zone)
    last = last_local.date()
    if start_of_day(last, time_zone) != end:
        last = date.fromordinal(last.toordinal() + 1)
    return max(0, (last - first).days)


def _check_anchor(anchor_day: int) -> None:
    if not 1 <= anchor_day <= MAX_ANCHOR_DAY:
        raise InvalidArgument(
            f"is {anchor_day}; expected a day of the month from 1 to {MAX_ANCHOR_DAY}", field="billing_anchor_day"
        )


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def period_for_key(key: str, time_zone: str, anchor_day: int = 1) -> BillingPeriod:
    """The period keyed ``key`` ("2026-10") in ``time_zone``, starting on ``anchor_day`` of that month."""
    year, month = parse_period_key(key)
    _check_anchor(anchor_day)
    zone_of(time_zone)
    end_year, end_month = _next_month(year, month)
    return BillingPeriod(
        start=start_of_day(date(year, month, anchor_day), time_zone),
        end=start_of_day(date(end_year, end_month, anchor_day), time_zone),
        key=f"{year:04d}-{month:02d}",
        time_zone=time_zone,
    )


def period_containing(instant: datetime, time_zone: str, anchor_day: int = 1) -> BillingPeriod:
    """The period of ``time_zone`` (anchored on ``anchor_day``) that ``instant`` falls in."""
    if instant.tzinfo is None:
        raise InvalidArgument("must carry a time zone (an aware datetime)", field="instant")
    _check_anchor(anchor_day)
    local = instant.astimezone(zone_of(time_zone))
    year, month = local.year, local.month
    if local.day < anchor_day:
        year, month = _previous_month(year, month)
    return period_for_key(f"{year:04d}-{month:02d}", time_zone, anchor_day)


def days(period: BillingPeriod) -> int:
    """Calendar days in ``period`` (28 to 31), the denominator of base-fee proration."""
    return days_between(period.start, period.end, period.time_zone)


def next_period(period: BillingPeriod) -> BillingPeriod:
    """The period that starts where ``period`` ends (same zone, same anchor day)."""
    anchor_day = period.start.astimezone(zone_of(period.time_zone)).day
    year, month = _next_month(*parse_period_key(period.key))
    return period_for_key(f"{year:04d}-{month:02d}", period.time_zone, anchor_day)
