"""Usage queries in domain terms: the range, its windows in a time zone, and how aggregates are combined.

Aggregates are kept per 15-minute UTC bucket. Every time zone in use today is offset from UTC by a multiple
of 15 minutes, so hour, day and month windows in any zone (Asia/Kolkata is +05:30, Asia/Kathmandu +05:45) are
unions of whole buckets; only the range's own ends may cut a bucket, and those parts are read from events.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing_runtime.errors import InvalidArgument
from services.metering.domain.metric import Aggregation

BUCKET = timedelta(minutes=15)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MAX_RANGE = timedelta(days=366)
MAX_HOURLY_RANGE = timedelta(days=92)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


class Window(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    WHOLE = "whole"


@dataclass(frozen=True)
class UsageRange:
    """A validated query range [start, end) and its windows, each clipped to the range, in time order."""

    start: datetime
    end: datetime
    window: Window
    time_zone: str
    windows: tuple[tuple[datetime, datetime], ...]

    @property
    def boundaries(self) -> list[datetime]:
        """Window starts followed by the range's end: what SQL's width_bucket needs to place a timestamp."""
        return [start for start, _ in self.windows] + [self.end]

    def bucket_span(self) -> tuple[datetime, datetime] | None:
        """The part of the range made of whole 15-minute buckets, or None when there is none."""
        first, last = ceil_bucket(self.start), floor_bucket(self.end)
        return (first, last) if first < last else None

    def event_spans(self) -> list[tuple[datetime, datetime]]:
        """The parts of the range outside whole buckets, read from the events themselves."""
        span = self.bucket_span()
        if span is None:
            return [(self.start, self.end)]
        return [(a, b) for a, b in ((self.start, span[0]), (span[1], self.end)) if a < b]


def floor_bucket(moment: datetime) -> datetime:
    return moment - ((moment - _EPOCH) % BUCKET)


def ceil_bucket(moment: datetime) -> datetime:
    floor = floor_bucket(moment)
    return floor if floor == moment else floor + BUCKET


def parse_time_zone(name: str) -> ZoneInfo:
    """An IANA zone ('' is UTC); InvalidArgument(field='time_zone') for anything else."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"{name!r} is not an IANA time zone such as 'Asia/Kolkata'", field="time_zone") from None


def _window_key(window: Window) -> Callable[[datetime], tuple[int, ...]]:
    if window is Window.HOUR:
        return lambda local: (local.year, local.month, local.day, local.hour)
    if window is Window.DAY:
        return lambda local: (local.year, local.month, local.day)
    return lambda local: (local.year, local.month)


# After a boundary, the next one is at least this far away (a day is never shorter than 22 hours, even on
# Antarctica/Troll's two-hour shift; Lord Howe's half-hour shift makes some local hours 30 minutes long).
_MIN_GAP = {Window.HOUR: BUCKET, Window.DAY: timedelta(hours=21), Window.MONTH: timedelta(days=27)}


def window_starts(start: datetime, end: datetime, window: Window, zone: ZoneInfo) -> list[datetime]:
    """Instants in (start, end) where a new local hour/day/month begins in ``zone``.

    Walks the 15-minute grid: a boundary is where the local hour (day, month) differs from 15 minutes before.
    This is exact across DST changes (including days that start at 01:00 because midnight was skipped).
    """
    if window is Window.WHOLE:
        return []
    key = _window_key(window)
    starts: list[datetime] = []
    moment = ceil_bucket(start)
    if moment == start:
        moment += BUCKET
    previous = key((moment - BUCKET).astimezone(zone))
    while moment < end:
        local = moment.astimezone(zone)
        offset = local.utcoffset()
        if offset is not None and offset % BUCKET:
            raise InvalidArgument(
                f"{zone.key} is not offset from UTC by a multiple of 15 minutes at {moment.isoformat()}",
                field="time_zone",
            )
        current = key(local)
        if current != previous:
            starts.append(moment)
            gap = _MIN_GAP[window]
            if gap > BUCKET:
                # Skip ahead, staying 15 minutes short so the next boundary is still seen as a change.
                moment += gap - BUCKET
                previous = key((moment - BUCKET).astimezone(zone))
                continue
        previous = current
        moment += BUCKET
    return starts


def usage_range(start: datetime | None, end: datetime | None, window: Window, time_zone: str) -> UsageRange:
    """Validate a query's range and compute its windows."""
    if start is None:
        raise InvalidArgument("is required", field="start_time")
    if end is None:
        raise InvalidArgument("is required", field="end_time")
    if start < EARLIEST:
        raise InvalidArgument(f"must not be before {EARLIEST.date().isoformat()}", field="start_time")
    if end <= start:
        raise InvalidArgument("must be after start_time", field="end_time")
    if end - start > MAX_RANGE:
        raise InvalidArgument(f"the range may span at most {MAX_RANGE.days} days", field="end_time")
    if window is Window.HOUR and end - start > MAX_HOURLY_RANGE:
        raise InvalidArgument(
            f"hourly windows may span at most {MAX_HOURLY_RANGE.days} days; use day windows", field="window"
        )
    zone = parse_time_zone(time_zone)
    edges = [start, *window_starts(start, end, window, zone), end]
    windows = tuple(zip(edges[:-1], edges[1:], strict=True))
    return UsageRange(start=start, end=end, window=window, time_zone=zone.key, windows=windows)


def format_decimal(value: Decimal | int) -> str:
    """An exact decimal string without exponent or trailing fractional zeros: 4.50 -> '4.5', 1E+3 -> '1000'."""
    if isinstance(value, int):
        return str(value)
    # Formatting, not arithmetic: normalize() and quantize() would round to the context's 28 digits.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class UsageRow:
    """One window (and group) of a usage answer."""

    start: datetime
    end: datetime
    group_value: str
    value: str
    event_count: int


# Aggregations whose per-bucket partials combine into the aggregate of any union of buckets.
PARTIAL_AGGREGATIONS = frozenset(
    {Aggregation.SUM, Aggregation.COUNT, Aggregation.MIN, Aggregation.MAX, Aggregation.LATEST}
)
# A gauge's usage is value x seconds / 3600, rounded half-even to this many decimal places (docs/metering.md).
GAUGE_PLACES = 12
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class UsageQuery:
    """What to aggregate: one metric's events of an organisation (or one project) over a range, maybe grouped.

    ``now`` is when the question is asked: a gauge (weighted_sum) holds its value at most until then, so a range
    in progress is not counted for its future. The other aggregations count events, whatever their time."""

    organisation_id: str
    project_id: str
    code: str
    aggregation: str  # an Aggregation value
    unique_dimension: str
    filters: dict[str, tuple[str, ...]]
    range: UsageRange
    group_by: str
    now: datetime

    @property
    def reads_buckets(self) -> bool:
        """Sum, count, min, max and latest of all the code's events come from the 15-minute buckets (plus
        events at the range's cut edges); filters, grouping and distinct counts need the events themselves, and
        a gauge its own reading (``is_gauge``)."""
        return not self.filters and not self.group_by and self.aggregation in PARTIAL_AGGREGATIONS

    @property
    def is_gauge(self) -> bool:
        return self.aggregation == Aggregation.WEIGHTED_SUM

    @property
    def held_until(self) -> datetime:
        """Where a gauge's last value stops counting: the range's end, or now for a range in progress."""
        return min(self.range.end, self.now)


def gauge_hours(value_seconds: Decimal | int) -> Decimal:
    """A gauge's integral in value-seconds (exact: values times microsecond durations) as value-hours, rounded
    half-even to GAUGE_PLACES decimal places. Exact arithmetic throughout (a Fraction, then one rounding), so the
    answer does not depend on a decimal context's precision: 1 unit held for 1 second is 0.000277777778."""
    scaled = round(Fraction(value_seconds) * 10**GAUGE_PLACES / _SECONDS_PER_HOUR)  # round() on a Fraction: half-even
    return Decimal(f"{scaled}E-{GAUGE_PLACES}")
