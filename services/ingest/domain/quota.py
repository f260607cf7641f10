"""Quotas as ingest enforces them: whether an event still fits under a plan's hard cap.

Metering owns usage and answers quota checks; ingest keeps each answer for a short while as a
:class:`QuotaWindow` (one organisation, metric and billing period) and adds to it what it admits meanwhile, so a
stream of batches is judged against the answer plus its own traffic, not against the same stale figure again.

An event refused for a quota is REJECTED (the contract has no status of its own for it) with a reason that starts
with :data:`QUOTA_EXCEEDED` and the field ``metric``; clients may match on that prefix.

Pure: no I/O, exact decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum

from billing_runtime.ratelimit import QuotaField
from billing_runtime.ratelimit import ratelimit_fields as fields_of

QUOTA_EXCEEDED = "quota exceeded: "
QUOTA_FIELD = "metric"

# Bounds of a window metering gave no period for (no subscription, no quota): it covers every time until it
# expires from the cache.
_EVER_BEFORE = -(2**62)
_EVER_AFTER = 2**62


class Measure(Enum):
    """How an event adds to its metric's usage, from the metric's aggregation."""

    SUM = "sum"  # usage grows by the event's value
    COUNT = "count"  # usage grows by one
    PEAK = "peak"  # max / latest: usage becomes the value, so an event over the ceiling is refused by itself
    # min, unique_count, weighted_sum (a gauge's usage grows with time, not with the event), or no metric defined:
    # ingest cannot tell, so never refuses
    UNMEASURED = "unmeasured"


@dataclass(frozen=True)
class MetricRule:
    """What ingest needs of a metric's definition: how events add up, and which events count at all."""

    measure: Measure
    # Only events whose dimension has one of the values count (every filter must match); empty counts all.
    filters: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def counts(self, dimensions: Mapping[str, str]) -> bool:
        return all(dimensions.get(key) in values for key, values in self.filters.items())

    def amount(self, value: str) -> Decimal:
        """What one event adds (SUM, COUNT) or sets usage to (PEAK)."""
        return Decimal(1) if self.measure is Measure.COUNT else Decimal(value)


UNMEASURED = MetricRule(Measure.UNMEASURED)


@dataclass(frozen=True)
class MetricUsage:
    """What a batch adds up to for one metric code, as the native scanner reports it."""

    metric: str
    events: int
    min_seconds: int
    max_seconds: int
    # Sum and largest of the values, when every value is an integer (None: the events must be read one by one).
    total: int | None
    peak: int | None


@dataclass(frozen=True)
class QuotaQuestion:
    """What ingest asks metering: may ``quantity`` more of a metric be used in the period containing a time?"""

    metric: str
    at_seconds: int
    quantity: Decimal


@dataclass(frozen=True)
class QuotaReport:
    """A quota that applied to a batch, as the IETF RateLimit fields describe it (integers, rounded down)."""

    metric: str
    limit: Decimal
    window_seconds: int
    remaining: int
    reset_seconds: int


@dataclass(eq=False)
class QuotaWindow:
    """Metering's answer for one organisation, metric and billing period, plus what this process admitted since.

    ``ceiling`` is what usage may reach before events are refused: the limit, or the grace limit while the grace
    lasts; None when nothing is refused (no quota, a soft cap, or a plan that does not enforce at ingest).
    """

    metric: str
    period_start: int  # Unix seconds, inclusive
    reset: int  # Unix seconds: the period's end, exclusive
    used: Decimal
    limit: Decimal | None = None
    ceiling: Decimal | None = None
    cap: str = ""  # "hard" or "soft", "" without a quota
    plan: str = ""  # "standard (v2)"
    # When the usage metering read was metered up to (Unix seconds; 0 when it did not say).
    usage_time: float = 0.0
    admitted: Decimal = Decimal(0)
    # What was admitted, when (Unix seconds): what a newer answer may not include yet (see carry_from).
    recent: list[tuple[float, Decimal]] = field(default_factory=list)

    def covers(self, seconds: int) -> bool:
        return self.period_start <= seconds < self.reset

    @property
    def enforced(self) -> bool:
        return self.ceiling is not None

    def take(self, amount: Decimal, measure: Measure, at: float) -> bool:
        """Admit ``amount`` at time ``at`` if it fits, counting it against the window (also where nothing is
        refused, so what remains is reported right); False if it goes over."""
        if measure is Measure.PEAK:
            return self.ceiling is None or amount <= self.ceiling
        if self.ceiling is not None and self.used + self.admitted + amount > self.ceiling:
            return False
        self.admitted += amount
        self.recent.append((at, amount))
        return True

    def give_back(self, amount: Decimal, at: float) -> None:
        """Undo a take whose events were not written after all."""
        self.admitted -= amount
        self.recent.append((at, -amount))

    def carry_from(self, older: QuotaWindow, lag_seconds: float) -> None:
        """Count what ``older`` admitted that this newer answer does not include yet.

        Metering's usage grew by ``self.used - older.used`` between the two answers: that growth is taken to be
        this process's admissions first, oldest first, so an event admitted and metered in between is counted
        once, not twice (exact with one ingest replica; with several, other replicas' events in the growth make
        this one count less of its own, and usage may pass the cap by what they admit within the lag bound). What
        the growth does not cover is still counted if it was admitted at most ``lag_seconds`` before the read
        (it may not be metered yet); anything older is metered by now."""
        if not self.usage_time:
            return
        since = self.usage_time - lag_seconds
        grown = max(self.used - older.used, Decimal(0))
        recent: list[tuple[float, Decimal]] = []
        for at, amount in older.recent:
            if amount > 0 and grown > 0:
                covered = min(grown, amount)
                grown -= covered
                amount -= covered
                if amount == 0:
                    continue
            if at >= since:
                recent.append((at, amount))
        self.recent = recent
        self.admitted = sum((amount for _, amount in recent), Decimal(0))

    def refusal(self, now_seconds: float) -> str:
        """The reason given for an event that does not fit: the stable prefix, the quota, usage and the reset."""
        assert self.ceiling is not None and self.limit is not None
        grace = f" (grace up to {plain_number(self.ceiling)})" if self.ceiling != self.limit else ""
        plan = f" on plan {self.plan}" if self.plan else ""
        used = plain_number(self.used + self.admitted)
        reset = datetime.fromtimestamp(self.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        when = f"resets {reset}" if self.reset > now_seconds else f"its period ended {reset}: not accepted again"
        return (
            f"{QUOTA_EXCEEDED}{self.cap} cap of {plain_number(self.limit)} {self.metric} per billing period{plan}"
            f"{grace} reached: {used} used; {when}"
        )

    def retry_after(self, now_seconds: float) -> int:
        """Whole seconds until the quota resets (0 once the period has ended)."""
        return max(0, math.ceil(self.reset - now_seconds))

    def report(self, now_seconds: float) -> QuotaReport | None:
        if self.limit is None or self.period_start == _EVER_BEFORE:
            return None
        remaining = max(self.limit - self.used - self.admitted, Decimal(0))
        return QuotaReport(
            self.metric, self.limit, self.reset - self.period_start, math.floor(remaining),
            self.retry_after(now_seconds),
        )


def enforcement_ceiling(
    *, hard: bool, enforced_at_ingest: bool, limit: Decimal | None, grace_limit: Decimal | None,
    grace_end_seconds: float | None, now_seconds: float,
) -> Decimal | None:
    """What usage may reach before ingest refuses events: None unless a hard cap enforced at ingest applies.

    A grace allowance raises the ceiling until its period ends; before usage first went over the limit, the
    grace has not started, so it still lies ahead.
    """
    if not (hard and enforced_at_ingest) or limit is None:
        return None
    if grace_limit is not None and (grace_end_seconds is None or now_seconds < grace_end_seconds):
        return max(limit, grace_limit)
    return limit


def window_bounds(start_seconds: int | None, reset_seconds: int | None) -> tuple[int, int]:
    """A window's bounds; an answer without a period covers all time (until it expires from the cache)."""
    if start_seconds is None or reset_seconds is None or reset_seconds <= start_seconds:
        return _EVER_BEFORE, _EVER_AFTER
    return start_seconds, reset_seconds


def plain_number(number: Decimal) -> str:
    """A decimal as people write it: 1000, 2.5 (not 1E+3 or 2.50)."""
    return format(number.normalize(), "f")


def ratelimit_fields(reports: list[QuotaReport]) -> tuple[str, str]:
    """The IETF ``RateLimit-Policy`` and ``RateLimit`` field values for the quotas that applied to a batch
    (``billing_runtime.ratelimit``: one member per metric, integers rounded down)."""
    return fields_of(QuotaField(r.metric, r.limit, r.window_seconds, Decimal(r.remaining), r.reset_seconds)
                     for r in reports)
