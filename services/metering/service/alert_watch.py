"""The alert rules one metering process watches, and when it evaluates them.

- The consumer asks ``watched(columns)`` for every chunk: with no live threshold rule on a chunk's (organisation,
  metric) pairs the answer is None at the cost of a set lookup, and the chunk is stored exactly as before. For
  watched chunks, ``store`` fetches the billing periods before the transaction and stores the chunk with the
  threshold check in the same transaction (``alert_evaluation.store_and_evaluate``).
- ``stored(columns)`` after each commit notes the organisations with rules (for the sweep) and schedules their
  spike and cost rules, at most once per ``alerts_debounce_seconds`` per rule, outside the store transaction.
- ``run()``: refresh the live rules every ``alerts_rules_refresh_seconds``, evaluate due spike and cost rules and
  newly created rules, and sweep every ``alerts_sweep_seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from billing_runtime.errors import Unavailable
from billing_runtime.logging import get_logger
from services.metering import counters
from services.metering.config import MeteringSettings
from services.metering.domain.alert_evaluation import FiredAlert
from services.metering.domain.alerts import AlertKind, AlertRule, CostBasis
from services.metering.domain.event_batch import EventColumns
from services.metering.domain.plan_in_force import PlanDirectory, PlanInForce
from services.metering.service.alert_evaluation import (
    evaluate_cost,
    evaluate_credit_balance,
    evaluate_spike,
    store_and_evaluate,
    sweep_threshold,
)
from services.metering.service.alert_ports import AlertsTransaction, EventOutbox, ProjectedInvoices

log = get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(microseconds: int) -> datetime:
    return _EPOCH + timedelta(microseconds=microseconds)


class AlertWatch:
    def __init__(
        self,
        uow: Callable[[], AlertsTransaction],
        outbox: EventOutbox,
        plans: PlanDirectory,
        projections: ProjectedInvoices,
        settings: MeteringSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._plans = plans
        self._projections = projections
        self._settings = settings
        self._clock = clock
        self._rules: list[AlertRule] = []
        self._threshold_pairs: frozenset[tuple[str, str]] = frozenset()
        self._threshold_orgs: frozenset[str] = frozenset()
        self._rule_orgs: frozenset[str] = frozenset()
        self._seen_orgs: set[str] = set()
        self._new_rules: set[str] = set()
        self._due: dict[str, float] = {}  # spike/cost rule id -> monotonic time to evaluate at
        self._last: dict[str, float] = {}  # spike/cost rule id -> monotonic time last evaluated
        self._wake = asyncio.Event()
        self.loaded = False

    # -- what the consumer asks ------------------------------------------------------------------------------

    def watched(self, columns: EventColumns, organisations: set[str]) -> set[tuple[str, str]] | None:
        """The chunk's (organisation, metric) pairs that live threshold rules watch; None when there are none.
        ``organisations``: the chunk's organisations, one per message (a message is one organisation's batch), so
        the usual answer costs a lookup per message, not per event."""
        if self._threshold_orgs.isdisjoint(organisations):
            return None
        orgs = self._threshold_orgs
        pairs = {pair for pair in zip(columns.organisation_ids, columns.metrics, strict=True) if pair[0] in orgs}
        pairs &= self._threshold_pairs
        return pairs or None

    async def store(self, columns: EventColumns, pairs: set[tuple[str, str]]) -> int | None:
        """Store the chunk with the threshold check in the same transaction; returns the new events, or None when
        the billing periods cannot be known now (invoicing unavailable): the caller then stores the chunk as usual
        and the sweep evaluates those organisations later. Database errors propagate (the consumer retries)."""
        try:
            plans = await self._periods(columns, pairs)
        except Unavailable as error:
            counters.ALERT_EVALUATION_ERRORS.labels("plan_unavailable").inc()
            log.warning("billing periods unavailable; events stored without alert evaluation, the sweep will follow",
                        error=str(error))
            return None
        count, fired = await store_and_evaluate(self._uow(), self._outbox, columns, pairs, plans)
        announce(fired)
        return count

    def stored(self, organisations: set[str]) -> None:
        """After a commit of events of ``organisations``: remember those with rules for the sweep, and schedule
        their spike and cost rules (debounced per rule)."""
        orgs = self._rule_orgs.intersection(organisations)
        if not orgs:
            return
        self._seen_orgs |= orgs
        now = time.monotonic()
        debounce = self._settings.alerts_debounce_seconds
        for rule in self._rules:
            if rule.kind is not AlertKind.THRESHOLD and rule.organisation_id in orgs and rule.id not in self._due:
                self._due[rule.id] = max(now, self._last.get(rule.id, 0.0) + debounce)
        self._wake.set()

    async def _periods(self, columns: EventColumns, pairs: set[tuple[str, str]]) -> dict[str, list[PlanInForce]]:
        """Per watched organisation, the billing periods covering its watched events (usually one: now's)."""
        times: dict[str, set[int]] = {}
        for org, metric, us in zip(columns.organisation_ids, columns.metrics, columns.timestamps_us, strict=True):
            if (org, metric) in pairs:
                times.setdefault(org, set()).add(us)
        plans: dict[str, list[PlanInForce]] = {}
        for org, stamps in sorted(times.items()):
            found: list[PlanInForce] = []
            for us in sorted(stamps, reverse=True):  # newest first: the current period is the usual one
                moment = _moment(us)
                if any(p.period_start <= moment < p.period_end for p in found):
                    continue
                plan = await self._plans.plan_in_force(org, moment)
                if plan is None:
                    break  # invoicing does not know the organisation: nothing to place levels in
                found.append(plan)
            plans[org] = found
        return plans

    # -- rules changing in this process ----------------------------------------------------------------------

    def rule_created(self, rule: AlertRule) -> None:
        """Watch it at once in this process and evaluate it soon (it may already be past a level)."""
        if all(r.id != rule.id for r in self._rules):
            self._index([*self._rules, rule])
        self._new_rules.add(rule.id)
        self._wake.set()

    def rule_deleted(self, rule: AlertRule) -> None:
        self._index([r for r in self._rules if r.id != rule.id])

    def _index(self, rules: list[AlertRule]) -> None:
        self._rules = rules
        thresholds = [r for r in rules if r.kind is AlertKind.THRESHOLD]
        self._threshold_pairs = frozenset((r.organisation_id, r.metric_code) for r in thresholds)
        self._threshold_orgs = frozenset(r.organisation_id for r in thresholds)
        self._rule_orgs = frozenset(r.organisation_id for r in rules)
        live = {r.id for r in rules}
        self._due = {k: v for k, v in self._due.items() if k in live}

    async def refresh(self) -> None:
        async with (uow := self._uow()):
            rules = await uow.alerts.live_rules()
        self._index(rules)
        self.loaded = True

    # -- background work -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Refresh, evaluate and sweep until cancelled; failures are logged, counted and retried."""
        await asyncio.gather(self._refresh_loop(), self._due_loop(), self._sweep_loop())

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the previous copy stays in use until the next refresh
                counters.ALERT_EVALUATION_ERRORS.labels("refresh").inc()
                log.warning("refreshing alert rules failed", error=str(error) or repr(error))
            await asyncio.sleep(self._settings.alerts_rules_refresh_seconds)

    async def _due_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)
            except TimeoutError:
                pass
            self._wake.clear()
            now = time.monotonic()
            due = {rule_id for rule_id, at in self._due.items() if at <= now}
            new, self._new_rules = self._new_rules, set()
            for rule_id in due:
                del self._due[rule_id]
                self._last[rule_id] = now
            rules = [r for r in self._rules if r.id in due or r.id in new]
            if rules:
                await self.evaluate(rules)

    async def _sweep_loop(self) -> None:
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(self._settings.alerts_sweep_seconds)
            full = time.monotonic() - last_full >= self._settings.alerts_full_sweep_seconds
            if full:
                last_full = time.monotonic()
            await self.sweep(full=full)

    async def sweep(self, *, full: bool = False) -> list[FiredAlert]:
        """Evaluate spike and cost rules, and threshold rules of organisations with events since the last sweep
        (every live rule when ``full``)."""
        seen, self._seen_orgs = self._seen_orgs, set()
        rules = [
            r for r in self._rules
            if full or r.kind is not AlertKind.THRESHOLD or r.organisation_id in seen
        ]
        return await self.evaluate(rules)

    async def evaluate(self, rules: Sequence[AlertRule]) -> list[FiredAlert]:
        """Evaluate rules outside any store transaction, organisation by organisation; an organisation whose
        evaluation failed is swept again next time."""
        fired: list[FiredAlert] = []
        by_org: dict[str, list[AlertRule]] = {}
        for rule in rules:
            by_org.setdefault(rule.organisation_id, []).append(rule)
        for org, org_rules in sorted(by_org.items()):
            try:
                fired += await self._evaluate_organisation(org, org_rules)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - retried by the next sweep
                counters.ALERT_EVALUATION_ERRORS.labels("sweep").inc()
                log.warning("evaluating alert rules failed; the next sweep retries", organisation_id=org,
                            error=str(error) or repr(error))
                self._seen_orgs.add(org)
        announce(fired)
        return fired

    async def _evaluate_organisation(self, org: str, rules: Iterable[AlertRule]) -> list[FiredAlert]:
        fired: list[FiredAlert] = []
        now = self._clock()
        rules = list(rules)
        thresholds = [r for r in rules if r.kind is AlertKind.THRESHOLD]
        if thresholds:
            plan = await self._plans.plan_in_force(org, now)
            if plan is not None:
                for rule in thresholds:
                    fired += await sweep_threshold(self._uow(), self._outbox, rule, plan)
        for rule in (r for r in rules if r.kind is AlertKind.SPIKE):
            fired += await evaluate_spike(self._uow(), self._outbox, rule, now)
        costs = [r for r in rules if r.kind is AlertKind.COST]
        if costs:
            forecast = any(r.cost_basis is CostBasis.FORECAST for r in costs)
            cost = await self._projections.projected_cost(org, with_forecast=forecast)
            if cost is not None:
                fired += await evaluate_cost(self._uow(), self._outbox, costs, cost)
        credits = [r for r in rules if r.kind is AlertKind.CREDIT_BALANCE]
        if credits:
            standing = await self._projections.credit_balance(org)
            fired += await evaluate_credit_balance(self._uow(), self._outbox, credits, standing, now)
        return fired


def announce(fired: Iterable[FiredAlert]) -> None:
    """After the commit: count and log each alert fired (its AlertTriggered is already in the outbox)."""
    for alert in fired:
        counters.ALERTS_FIRED.labels(alert.kind.value).inc()
        log.info(
            "alert fired",
            alert_id=alert.id,
            rule_id=alert.rule_id,
            organisation_id=alert.organisation_id,
            kind=alert.kind.value,
            metric_code=alert.metric_code,
            level=alert.level,
            threshold=alert.threshold,
            value=alert.value,
            event_id=alert.event_id,
            period_start=alert.period_start.isoformat(),
        )
