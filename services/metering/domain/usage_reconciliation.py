"""Usage reconciliation: what ingest accepted against what metering stored, and stored aggregates against a
recomputation from stored events. Pure: the service reads the stream and the tables and hands the figures here.

Three kinds of discrepancy:

- ``missing_events``: for a (project, hour of the event's timestamp), ingest accepted N distinct events in the
  window but metering stores only M < N of them (expected N, found M).
- ``bucket_mismatch``: a 15-minute usage bucket differs from the aggregate of the stored events it covers (count,
  sum, min, max), or exists on one side only.
- ``day_mismatch``: a UTC-day usage row differs from the aggregate of that day's buckets (the buckets themselves
  are checked against the events, hour by hour, by each hourly run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from billing_runtime.errors import InvalidArgument

HOUR = timedelta(hours=1)
# An on-demand run covers at most this much acceptance time (the stream keeps 7 days by default).
MAX_WINDOW = timedelta(hours=24)
# A report keeps at most this many discrepancy rows; the totals count all of them.
MAX_STORED_DISCREPANCIES = 1_000
# Sample event ids of a (project, hour) with missing events, kept in the row's detail.
MISSING_SAMPLE = 5


class DiscrepancyKind(StrEnum):
    MISSING_EVENTS = "missing_events"
    BUCKET_MISMATCH = "bucket_mismatch"
    DAY_MISMATCH = "day_mismatch"


class ReconciliationStatus(StrEnum):
    RUNNING = "running"
    CLEAN = "clean"
    DISCREPANCIES = "discrepancies"
    # Metering's consumer had not acknowledged the window's last message: nothing is concluded (a scheduled
    # window is tried again later).
    METERING_BEHIND = "metering_behind"
    FAILED = "failed"


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"


@dataclass(frozen=True)
class Window:
    """Acceptance time [start, end), UTC."""

    start: datetime
    end: datetime


def previous_hour(now: datetime, delay: timedelta = timedelta(0)) -> Window:
    """The last full UTC hour ended at least ``delay`` before ``now``."""
    moment = (now - delay).astimezone(UTC)
    end = moment.replace(minute=0, second=0, microsecond=0)
    return Window(end - HOUR, end)


def check_window(start: datetime | None, end: datetime | None, now: datetime) -> Window:
    """An on-demand window: both bounds given, start before end, at most 24 hours, not in the future."""
    if start is None:
        raise InvalidArgument("is required", field="start_time")
    if end is None:
        raise InvalidArgument("is required", field="end_time")
    if end <= start:
        raise InvalidArgument("must be after start_time", field="end_time")
    if end - start > MAX_WINDOW:
        raise InvalidArgument("must be at most 24 hours after start_time", field="end_time")
    if end > now:
        raise InvalidArgument("must not be in the future", field="end_time")
    return Window(start.astimezone(UTC), end.astimezone(UTC))


def hour_of(microseconds: int) -> int:
    """The start of the UTC hour of a time in microseconds since the epoch (also microseconds)."""
    return microseconds - microseconds % 3_600_000_000


@dataclass(frozen=True)
class Aggregate:
    count: int
    total: Decimal
    minimum: Decimal
    maximum: Decimal

    def describe(self) -> str:
        return f"count={self.count} sum={_plain(self.total)} min={_plain(self.minimum)} max={_plain(self.maximum)}"


def _plain(value: Decimal) -> str:
    # Numeric columns come back with the scale of their inputs ("3.50"); compare by value, print normalised.
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Discrepancy:
    kind: DiscrepancyKind
    organisation_id: str
    project_id: str
    metric: str
    period_start: datetime
    expected: str
    found: str
    detail: str = ""


@dataclass(frozen=True)
class HourCount:
    """Of a (project, hour of event time): distinct events accepted in the window, and how many are stored."""

    organisation_id: str
    project_id: str
    hour: datetime
    accepted: int
    stored: int
    missing_sample: tuple[str, ...] = ()


def missing_events(counts: list[HourCount]) -> list[Discrepancy]:
    """A discrepancy for each (project, hour) whose accepted events are not all stored, in (project, hour) order."""
    return [
        Discrepancy(
            DiscrepancyKind.MISSING_EVENTS, c.organisation_id, c.project_id, "", c.hour, str(c.accepted),
            str(c.stored), ("missing e.g. " + ", ".join(c.missing_sample)) if c.missing_sample else "",
        )
        for c in sorted(counts, key=lambda c: (c.project_id, c.hour, c.organisation_id))
        if c.stored != c.accepted
    ]


# (organisation, metric, period start, project)
AggregateKey = tuple[str, str, datetime, str]


def compare_aggregates(
    kind: DiscrepancyKind, expected: Mapping[AggregateKey, Aggregate], found: Mapping[AggregateKey, Aggregate]
) -> list[Discrepancy]:
    """Every key whose stored aggregate (``found``) differs from the recomputed one (``expected``), or that is
    on one side only ("none" on the other), in key order. Values compare as numbers (3.5 == 3.50)."""
    differing = []
    for key in sorted(expected.keys() | found.keys()):
        want, have = expected.get(key), found.get(key)
        if want == have:
            continue
        organisation_id, metric, start, project_id = key
        differing.append(
            Discrepancy(
                kind, organisation_id, project_id, metric, start,
                want.describe() if want else "none", have.describe() if have else "none",
            )
        )
    return differing


@dataclass
class Totals:
    messages: int = 0
    accepted: int = 0
    stored: int = 0
    missing: int = 0
    aggregate_mismatches: int = 0
    discrepancies: int = 0


@dataclass
class Findings:
    """What a run found: the totals, and the first MAX_STORED_DISCREPANCIES discrepancies (the totals count all)."""

    totals: Totals = field(default_factory=Totals)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def add_counts(self, counts: list[HourCount]) -> None:
        for count in counts:
            self.totals.accepted += count.accepted
            self.totals.stored += count.stored
            self.totals.missing += count.accepted - count.stored
        self._add(missing_events(counts))

    def add_aggregates(self, discrepancies: list[Discrepancy]) -> None:
        self.totals.aggregate_mismatches += len(discrepancies)
        self._add(discrepancies)

    def _add(self, discrepancies: list[Discrepancy]) -> None:
        self.totals.discrepancies += len(discrepancies)
        room = MAX_STORED_DISCREPANCIES - len(self.discrepancies)
        self.discrepancies.extend(discrepancies[: max(room, 0)])

    @property
    def status(self) -> ReconciliationStatus:
        return ReconciliationStatus.DISCREPANCIES if self.totals.discrepancies else ReconciliationStatus.CLEAN


@dataclass(frozen=True)
class Report:
    id: str
    trigger: Trigger
    window: Window
    status: ReconciliationStatus
    started_at: datetime
    finished_at: datetime | None
    totals: Totals
    error: str = ""
    discrepancies: tuple[Discrepancy, ...] = ()
