"""Evaluating alert rules: thresholds in the transaction that stores the events, and the sweep's evaluation of
thresholds already reached, spikes and projected cost.

Invariants (what makes "each level fires once, at the event that crossed it" hold):
- A fired level is a row with the unique key (rule, period start, level), inserted ON CONFLICT DO NOTHING, and
  AlertTriggered is written to the outbox only when that insert happened, in the same transaction. Whatever
  retries, replicas or sweeps run, one level of one period is announced once.
- Thresholds are checked in the transaction that stores the events: the store statement returns the watched
  pairs' newly inserted events, then each (organisation, metric) pair's advisory lock is taken in sorted order and
  the period's usage is read after the insert. Usage before = usage after - what this transaction added (exact
  for sum and count). A crash before the commit loses both the events and the alert; the redelivery stores and
  fires again. After the commit the redelivery inserts no event, so it evaluates nothing.
- Nothing here calls another service while a transaction is open: billing periods (PlanInForce) and projected
  invoices are fetched first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from billing_runtime.ids import new_id
from services.metering.adapters import messages
from services.metering.domain.alert_evaluation import (
    SPIKE_LEVEL,
    Crossing,
    FiredAlert,
    NewEvent,
    cost_thresholds_minor,
    counts,
    is_spike,
    minor_to_decimal,
    reached_levels,
    spike_baseline,
    spike_windows,
    threshold_amounts,
    threshold_crossings,
)
from services.metering.domain.alerts import AlertKind, AlertRule
from services.metering.domain.event_batch import EventColumns
from services.metering.domain.metric import Metric
from services.metering.domain.plan_in_force import PlanInForce
from services.metering.domain.usage import UsageQuery, Window, format_decimal, usage_range
from services.metering.service.alert_ports import (
    AlertsTransaction,
    CreditStanding,
    EventOutbox,
    ProjectedCost,
    as_decimal,
)

_DISPLAY = Decimal("0.000001")


def plan_for(plans: Sequence[PlanInForce], moment: datetime) -> PlanInForce | None:
    """The billing period (and the plan in force) containing ``moment``, among those fetched."""
    holding = [p for p in plans if p.period_start <= moment < p.period_end]
    return next((p for p in holding if p.holds_at(moment)), holding[0] if holding else None)


def by_period(plans: Sequence[PlanInForce], events: Iterable[NewEvent]) -> list[tuple[PlanInForce, list[NewEvent]]]:
    """Events grouped by the billing period their timestamp falls in (a late event counts in its own period).
    Within a period the quota in force is that of the plan at the period's latest new event. Events in no fetched
    period are left to the sweep."""
    groups: dict[datetime, tuple[PlanInForce, list[NewEvent]]] = {}
    for event in sorted(events, key=lambda e: e.order):
        plan = plan_for(plans, event.timestamp)
        if plan is None:
            continue
        if plan.period_start in groups:
            groups[plan.period_start] = (plan, groups[plan.period_start][1] + [event])
        else:
            groups[plan.period_start] = (plan, [event])
    return list(groups.values())


async def period_usage(uow: AlertsTransaction, metric: Metric, project_id: str, start: datetime, end: datetime,
                       now: datetime | None = None) -> Decimal:
    """What QueryUsage (window WHOLE) answers for the metric over [start, end) at ``now`` (None: the clock), one
    project's or all; 0 when no event counted."""
    value, _ = await uow.usage.whole(
        UsageQuery(
            organisation_id=metric.organisation_id,
            project_id=project_id,
            code=metric.code,
            aggregation=metric.aggregation.value,
            unique_dimension=metric.unique_dimension,
            filters=dict(metric.filters),
            range=usage_range(start, end, Window.WHOLE, ""),
            group_by="",
            now=now or datetime.now(UTC),
        )
    )
    return as_decimal(value)


async def fire(uow: AlertsTransaction, outbox: EventOutbox, rule: AlertRule, alert: FiredAlert) -> FiredAlert | None:
    """Record the alert unless its level already fired in its period, and announce it through the outbox in the
    same transaction. Returns it when this call fired it."""
    recorded = await uow.alerts.insert_fired(alert)
    if recorded is not None:
        event_id = f"alert.triggered:{recorded.id}"
        await outbox.record(uow, messages.ALERT_TRIGGERED, event_id, messages.alert_triggered(event_id, recorded, rule))
    return recorded


def _threshold_alert(rule: AlertRule, plan: PlanInForce, crossing: Crossing) -> FiredAlert:
    event = crossing.event
    return FiredAlert(
        id=new_id("alf"),
        rule_id=rule.id,
        organisation_id=rule.organisation_id,
        project_id=rule.project_id,
        kind=AlertKind.THRESHOLD,
        metric_code=rule.metric_code,
        level=crossing.level,
        threshold=format_decimal(crossing.threshold),
        value=format_decimal(crossing.value),
        baseline="",
        currency="",
        event_id=event.event_id if event else "",
        event_project_id=event.project_id if event else "",
        event_time=event.timestamp if event else None,
        period_start=plan.period_start,
        period_end=plan.period_end,
        fired_at=None,
        rule_name=rule.name,
    )


async def evaluate_threshold(
    uow: AlertsTransaction,
    outbox: EventOutbox,
    rule: AlertRule,
    metric: Metric,
    plan: PlanInForce,
    new_events: Sequence[NewEvent] | None,
) -> list[FiredAlert]:
    """Fire the levels of a threshold rule in ``plan``'s period: those ``new_events`` crossed (in the store
    transaction), or, when None (the sweep), every level usage has reached. The caller holds the pair's lock."""
    quota = plan.quota(rule.metric_code)
    amounts = threshold_amounts(rule, quota.limit if quota else None)
    if not amounts:
        return []
    if new_events is not None:
        new_events = [e for e in new_events if counts(metric, e, rule.project_id)]
        if not new_events:
            return []
    post = await period_usage(uow, metric, rule.project_id, plan.period_start, plan.period_end)
    if new_events is None:
        crossings = reached_levels(post, amounts)
    else:
        crossings = threshold_crossings(metric.aggregation, post, new_events, amounts)
    fired = []
    for crossing in crossings:
        recorded = await fire(uow, outbox, rule, _threshold_alert(rule, plan, crossing))
        if recorded is not None:
            fired.append(recorded)
    return fired


async def store_and_evaluate(
    uow: AlertsTransaction,
    outbox: EventOutbox,
    columns: EventColumns,
    pairs: Iterable[tuple[str, str]],
    plans: Mapping[str, Sequence[PlanInForce]],
) -> tuple[int, list[FiredAlert]]:
    """Store a chunk of events holding watched (organisation, metric) pairs and fire the threshold levels its new
    events crossed, in one transaction. ``plans``: each watched organisation's billing periods covering the
    chunk's events, fetched before. Returns (new events, alerts fired)."""
    fired: list[FiredAlert] = []
    async with uow:
        count, new = await uow.events.store_returning_watched(columns, pairs)
        if new:
            await uow.alerts.lock_pairs(new)
            rules = await uow.alerts.live_threshold_rules(new)
            metrics = await uow.metrics.active_by_codes(new)
            for rule in rules:
                key = (rule.organisation_id, rule.metric_code)
                metric = metrics.get(key)
                if metric is None:
                    continue  # no active metric defines the code: nothing to add up yet
                for plan, events in by_period(plans.get(rule.organisation_id, ()), new[key]):
                    fired += await evaluate_threshold(uow, outbox, rule, metric, plan, events)
    return count, fired


async def sweep_threshold(
    uow: AlertsTransaction, outbox: EventOutbox, rule: AlertRule, plan: PlanInForce
) -> list[FiredAlert]:
    """Fire the levels of a threshold rule that usage of the current period has reached without firing (a new
    rule, or events stored while the period was unknown). Takes the pair's lock, so it never races the store
    path's evaluation of the same events."""
    async with uow:
        key = (rule.organisation_id, rule.metric_code)
        await uow.alerts.lock_pairs([key])
        metric = (await uow.metrics.active_by_codes([key])).get(key)
        if metric is None:
            return []
        return await evaluate_threshold(uow, outbox, rule, metric, plan, None)


async def evaluate_spike(uow: AlertsTransaction, outbox: EventOutbox, rule: AlertRule, now: datetime
                         ) -> list[FiredAlert]:
    """Usage over [now - window, now) against the average per window over the baseline before it; fires at most
    once per window of the UTC-epoch grid."""
    windows = spike_windows(rule, now)
    async with uow:
        key = (rule.organisation_id, rule.metric_code)
        metric = (await uow.metrics.active_by_codes([key])).get(key)
        if metric is None:
            return []
        usage = await period_usage(uow, metric, rule.project_id, windows.window_start, windows.window_end, now)
        history = await period_usage(uow, metric, rule.project_id, windows.baseline_start, windows.window_start, now)
        baseline = spike_baseline(metric.aggregation, history, windows.windows_in_baseline)
        if not is_spike(rule, usage, baseline):
            return []
        alert = FiredAlert(
            id=new_id("alf"),
            rule_id=rule.id,
            organisation_id=rule.organisation_id,
            project_id=rule.project_id,
            kind=AlertKind.SPIKE,
            metric_code=rule.metric_code,
            level=SPIKE_LEVEL,
            threshold=format_decimal((Decimal(rule.factor) * baseline).quantize(_DISPLAY, ROUND_HALF_EVEN)),
            value=format_decimal(usage),
            baseline=format_decimal(baseline.quantize(_DISPLAY, ROUND_HALF_EVEN)),
            currency="",
            event_id="",
            event_project_id="",
            event_time=None,
            period_start=windows.grid_start,
            period_end=windows.grid_end,
            fired_at=None,
            rule_name=rule.name,
        )
        recorded = await fire(uow, outbox, rule, alert)
    return [recorded] if recorded else []


async def evaluate_cost(
    uow: AlertsTransaction, outbox: EventOutbox, rules: Sequence[AlertRule], cost: ProjectedCost
) -> list[FiredAlert]:
    """Fire the levels of an organisation's cost rules that its projected invoice (fetched before) reached: its
    total so far, or the forecast of the period's end for a rule of cost basis FORECAST. Rules in another currency
    than the invoice's are skipped (the organisation's billing currency changed), and so are forecast rules when
    the forecast was not fetched."""
    fired = []
    async with uow:
        for rule in rules:
            total_minor = cost.total_for(rule.cost_basis)
            if rule.currency != cost.currency or total_minor is None:
                continue
            for level, threshold_minor in cost_thresholds_minor(rule):
                if total_minor < threshold_minor:
                    break
                alert = FiredAlert(
                    id=new_id("alf"),
                    rule_id=rule.id,
                    organisation_id=rule.organisation_id,
                    project_id="",
                    kind=AlertKind.COST,
                    metric_code="",
                    level=level,
                    threshold=format_decimal(minor_to_decimal(threshold_minor, cost.currency)),
                    value=format_decimal(minor_to_decimal(total_minor, cost.currency)),
                    baseline="",
                    currency=cost.currency,
                    event_id="",
                    event_project_id="",
                    event_time=None,
                    period_start=cost.period_start,
                    period_end=cost.period_end,
                    fired_at=None,
                    rule_name=rule.name,
                )
                recorded = await fire(uow, outbox, rule, alert)
                if recorded is not None:
                    fired.append(recorded)
    return fired


# What a credit-balance alert's period is when the organisation never had a grant: the epoch (one episode).
_NO_GRANT = datetime(1970, 1, 1, tzinfo=UTC)


async def evaluate_credit_balance(
    uow: AlertsTransaction, outbox: EventOutbox, rules: Sequence[AlertRule], credit: CreditStanding, now: datetime
) -> list[FiredAlert]:
    """Fire the organisation's credit-balance rules whose threshold its available prepaid credit (fetched before)
    is below. Once per balance episode: the alert's period starts at the latest grant, so a top-up or a new grant
    lets a rule fire again, and the sweep firing it again within an episode inserts nothing."""
    fired = []
    since = credit.latest_grant_at or _NO_GRANT
    async with uow:
        for rule in rules:
            available = credit.available_minor.get(rule.currency, 0)
            if available >= rule.credit_threshold_minor:
                continue
            alert = FiredAlert(
                id=new_id("alf"),
                rule_id=rule.id,
                organisation_id=rule.organisation_id,
                project_id="",
                kind=AlertKind.CREDIT_BALANCE,
                metric_code="",
                level=str(rule.credit_threshold_minor),
                threshold=format_decimal(minor_to_decimal(rule.credit_threshold_minor, rule.currency)),
                value=format_decimal(minor_to_decimal(available, rule.currency)),
                baseline="",
                currency=rule.currency,
                event_id="",
                event_project_id="",
                event_time=None,
                period_start=since,
                period_end=max(now, since),
                fired_at=None,
                rule_name=rule.name,
            )
            recorded = await fire(uow, outbox, rule, alert)
            if recorded is not None:
                fired.append(recorded)
    return fired
