"""When an alert rule fires: the crossing of threshold levels by newly metered events, spikes against a trailing
average, and projected cost against a budget. Pure functions over values; the callers read usage and store what
fired (services/metering/service/alert_evaluation.py).

A level fires once per rule and period: the store's unique key (rule, period start, level) is what makes "once"
hold across redeliveries, replicas and the sweep; these functions only say what *would* fire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import iso4217

from services.metering.domain.alerts import AlertKind, AlertRule, ThresholdBasis
from services.metering.domain.metric import Aggregation, Metric

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPIKE_LEVEL = "spike"


@dataclass(frozen=True)
class NewEvent:
    """An event this transaction inserted (not a duplicate), as the threshold walk needs it."""

    project_id: str
    event_id: str
    timestamp: datetime
    value: Decimal
    dimensions: Mapping[str, object] | None = None

    @property
    def order(self) -> tuple[datetime, str, str]:
        return (self.timestamp, self.event_id, self.project_id)


@dataclass(frozen=True)
class Crossing:
    """A level reached: by ``event`` (None when no single new event can be named, e.g. found by the sweep)."""

    level: str
    threshold: Decimal
    value: Decimal
    event: NewEvent | None


@dataclass(frozen=True)
class FiredAlert:
    id: str
    rule_id: str
    organisation_id: str
    project_id: str
    kind: AlertKind
    metric_code: str
    level: str
    threshold: str
    value: str
    baseline: str
    currency: str
    event_id: str
    event_project_id: str
    event_time: datetime | None
    period_start: datetime
    period_end: datetime
    fired_at: datetime | None
    rule_name: str


def counts(metric: Metric, event: NewEvent, project_id: str) -> bool:
    """Whether the metric (its filters) and the rule (its project, if any) count this event."""
    if project_id and event.project_id != project_id:
        return False
    if not metric.filters:
        return True
    dimensions = event.dimensions or {}
    return all(dimensions.get(key) in values for key, values in metric.filters.items())


def contribution(aggregation: Aggregation, events: Sequence[NewEvent]) -> Decimal | None:
    """What ``events`` add to a period's usage when the aggregation is additive (sum, count); None otherwise."""
    if aggregation is Aggregation.SUM:
        return sum((e.value for e in events), Decimal(0))
    if aggregation is Aggregation.COUNT:
        return Decimal(len(events))
    return None


def threshold_crossings(
    aggregation: Aggregation, post: Decimal, events: Sequence[NewEvent], thresholds: Sequence[tuple[str, Decimal]]
) -> list[Crossing]:
    """The levels this transaction's new ``events`` (already filtered to those the rule counts) made usage reach,
    each with the event that reached it. ``post`` is the period's usage after they were stored; ``thresholds``
    are (level as written, amount) in ascending order.

    sum and count: usage before them is ``post`` minus their contribution (exact), and walking them in
    (timestamp, event_id) order from there, the event at which the running total first reaches a level
    (before < level <= running) is the crossing event: not one before, not one after.
    max: the first new event whose value reaches the level (usage before may already have reached it; then the
    level fired before and the store's unique key keeps it once).
    min, latest, unique_count, weighted_sum: not a running total of events (a gauge's usage also grows with time
    alone: the sweep fires what it reaches between events); a level that ``post`` reaches is attributed to the
    last new event.
    """
    if not events:
        return []
    ordered = sorted(events, key=lambda e: e.order)
    added = contribution(aggregation, ordered)
    crossings: list[Crossing] = []
    if added is not None:
        before = post - added
        running = before
        pending = [(level, amount) for level, amount in thresholds if amount > before]
        for event in ordered:
            running += event.value if aggregation is Aggregation.SUM else 1
            while pending and pending[0][1] <= running:
                level, amount = pending.pop(0)
                crossings.append(Crossing(level, amount, running, event))
            # A negative value can lower the total again; a level not yet reached stays pending.
        return crossings
    if aggregation is Aggregation.MAX:
        for level, amount in thresholds:
            first = next((e for e in ordered if e.value >= amount), None)
            if first is not None:
                crossings.append(Crossing(level, amount, first.value, first))
        return crossings
    return [Crossing(level, amount, post, ordered[-1]) for level, amount in thresholds if post >= amount]


def reached_levels(post: Decimal, thresholds: Sequence[tuple[str, Decimal]]) -> list[Crossing]:
    """Levels usage has reached, without a crossing event: what the sweep fires when the consumer could not
    (the rule was new, or the billing period was unknown while the events were stored)."""
    return [Crossing(level, amount, post, None) for level, amount in thresholds if post >= amount]


def threshold_amounts(rule: AlertRule, quota_limit: Decimal | None) -> list[tuple[str, Decimal]]:
    """(level, usage amount) of a threshold rule: the levels themselves, or percents of the quota limit. A
    percent rule without a quota in force is dormant: no amounts."""
    if rule.basis is ThresholdBasis.QUOTA_PERCENT:
        if quota_limit is None:
            return []
        return [(level, quota_limit * Decimal(level) / 100) for level in rule.levels]
    return [(level, Decimal(level)) for level in rule.levels]


# -- spikes -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpikeWindows:
    """The ranges a spike rule compares at ``now``: the last window, the baseline before it, and the window on the
    UTC-epoch grid that a firing is counted in (at most one per grid window)."""

    window_start: datetime
    window_end: datetime
    baseline_start: datetime
    grid_start: datetime
    grid_end: datetime
    windows_in_baseline: int


def spike_windows(rule: AlertRule, now: datetime) -> SpikeWindows:
    window = timedelta(seconds=rule.window_seconds)
    grid_start = now - (now - _EPOCH) % window
    return SpikeWindows(
        window_start=now - window,
        window_end=now,
        baseline_start=now - window - timedelta(seconds=rule.baseline_seconds),
        grid_start=grid_start,
        grid_end=grid_start + window,
        windows_in_baseline=rule.baseline_seconds // rule.window_seconds,
    )


def spike_baseline(aggregation: Aggregation, baseline_usage: Decimal, windows: int) -> Decimal:
    """The trailing average per window: for sum, count and weighted_sum (value-hours add up over consecutive
    ranges) the baseline's usage divided by its windows; for the other aggregations (not additive over windows)
    the baseline range's own aggregate."""
    if aggregation in (Aggregation.SUM, Aggregation.COUNT, Aggregation.WEIGHTED_SUM):
        return baseline_usage / windows
    return baseline_usage


def is_spike(rule: AlertRule, window_usage: Decimal, baseline: Decimal) -> bool:
    """Window usage at least min_volume and more than factor x the baseline average."""
    return window_usage >= Decimal(rule.min_volume or "0") and window_usage > Decimal(rule.factor) * baseline


# -- cost ---------------------------------------------------------------------------------------------------

def currency_minor_units(currency: str) -> int:
    """Digits after the decimal point of an ISO 4217 currency: INR 2, JPY 0, KWD 3."""
    exponent = iso4217.Currency(currency).exponent
    if exponent is None:
        raise ValueError(f"{currency} has no minor units")
    return exponent


def cost_thresholds_minor(rule: AlertRule) -> list[tuple[str, Decimal]]:
    """(level, budget x level % in minor units, exact) of a cost rule."""
    scale = Decimal(10) ** currency_minor_units(rule.currency)
    budget_minor = Decimal(rule.budget) * scale
    return [(level, budget_minor * Decimal(level) / 100) for level in rule.levels]


def minor_to_decimal(amount_minor: int | Decimal, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-currency_minor_units(currency))
