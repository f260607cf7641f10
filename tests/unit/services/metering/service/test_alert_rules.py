"""Alert rule use cases over in-memory fakes: the organisation asked of the plan directory before the transaction,
idempotent creation, the live-rule limit, soft delete, and fired alerts newest first."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.metering.v1 import metering_pb2 as pb
from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from services.metering.domain.alert_evaluation import (
    FiredAlert,
    cost_thresholds_minor,
    is_spike,
    spike_baseline,
    spike_windows,
)
from services.metering.domain.alerts import (
    MAX_LIVE_RULES_PER_ORGANISATION,
    AlertKind,
    AlertRule,
    CostBasis,
    RuleDefinition,
    RuleRequest,
    ThresholdBasis,
)
from services.metering.domain.metric import Aggregation
from services.metering.domain.plan_in_force import PlanInForce
from services.metering.service import alerts
from services.metering.service.alert_evaluation import evaluate_cost
from services.metering.service.alert_ports import ProjectedCost
from tests.unit.services.fake_transaction import FakeOutbox, FakeTransaction

NOW = datetime(2026, 11, 15, tzinfo=UTC)


@dataclass
class Tables:
    rules: dict[str, AlertRule] = field(default_factory=dict)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    fired: dict[str, FiredAlert] = field(default_factory=dict)
    outbox: list[tuple[str, str, object]] = field(default_factory=list)


class FakeAlerts:
    def __init__(self, uow: FakeTransaction) -> None:
        self._uow = uow

    async def lock_organisation(self, organisation_id: str) -> None:
        self._uow.inside()

    async def count_live(self, organisation_id: str) -> int:
        return sum(1 for r in self._uow.inside().rules.values() if r.organisation_id == organisation_id and r.live)

    async def add(self, rule_id: str, definition: RuleDefinition, idempotency_key: str) -> tuple[AlertRule, bool]:
        tables = self._uow.inside()
        if idempotency_key in tables.keys:
            fingerprint, first = tables.keys[idempotency_key]
            if fingerprint != definition.fingerprint():
                raise Conflict("was already used for a different request", field="idempotency_key")
            return tables.rules[first], False
        rule = AlertRule(**definition.__dict__, id=rule_id, created_at=NOW)
        tables.rules[rule_id] = rule
        if idempotency_key:
            tables.keys[idempotency_key] = (definition.fingerprint(), rule_id)
        return rule, True

    async def get(self, rule_id: str) -> AlertRule | None:
        return self._uow.inside().rules.get(rule_id)

    async def list(self, *, organisation_id, include_deleted, limit, after):
        rules = sorted(self._uow.inside().rules.values(), key=lambda r: r.id)
        return [r for r in rules if r.organisation_id == organisation_id and (include_deleted or r.live)
                and (after is None or r.id > after)][:limit]

    async def delete(self, rule_id: str) -> AlertRule | None:
        tables = self._uow.inside()
        rule = tables.rules.get(rule_id)
        if rule is not None and rule.live:
            tables.rules[rule_id] = rule = replace(rule, deleted_at=NOW)
        return rule

    async def insert_fired(self, alert: FiredAlert) -> FiredAlert | None:
        tables = self._uow.inside()
        key = (alert.rule_id, alert.period_start, alert.level)
        if any((a.rule_id, a.period_start, a.level) == key for a in tables.fired.values()):
            return None
        tables.fired[alert.id] = recorded = replace(alert, fired_at=NOW)
        return recorded

    async def list_fired(self, *, organisation_id, rule_id, limit, before):
        fired = sorted(self._uow.inside().fired.values(), key=lambda a: a.id, reverse=True)
        return [a for a in fired if a.organisation_id == organisation_id and (not rule_id or a.rule_id == rule_id)
                and (before is None or a.id < before)][:limit]


class FakeUnitOfWork(FakeTransaction):
    def __init__(self, tables: Tables) -> None:
        super().__init__(tables)
        self.alerts = FakeAlerts(self)


class FakePlans:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known  # organisation -> currency
        self.asked: list[str] = []

    async def plan_in_force(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        self.asked.append(organisation_id)
        if organisation_id not in self.known:
            return None
        return PlanInForce(organisation_id, self.known[organisation_id], "UTC", False,
                           datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                           datetime(2026, 12, 1, tzinfo=UTC))


def threshold(org: str = "org_1", **fields) -> RuleRequest:
    return RuleRequest(**{**dict(organisation_id=org, kind=AlertKind.THRESHOLD, name="calls", metric_code="api.calls",
                                 basis=ThresholdBasis.ABSOLUTE, levels=("10",)), **fields})


@pytest.fixture
def tables() -> Tables:
    return Tables()


async def test_create_is_idempotent_and_takes_the_currency_from_the_organisation(tables) -> None:
    plans = FakePlans({"org_1": "JPY"})
    uow = FakeUnitOfWork(tables)
    request = RuleRequest(organisation_id="org_1", kind=AlertKind.COST, name="budget", budget="5000")
    rule, created = await alerts.create_rule(uow, plans, request, "key-1", now=lambda: NOW)
    again, created_again = await alerts.create_rule(uow, plans, request, "key-1", now=lambda: NOW)
    assert created and not created_again and again.id == rule.id and rule.id.startswith("alr_")
    assert rule.currency == "JPY" and rule.levels == ("100",)
    with pytest.raises(Conflict):
        await alerts.create_rule(uow, plans, replace(request, budget="6000"), "key-1", now=lambda: NOW)
    with pytest.raises(InvalidArgument) as caught:  # JPY has no minor units
        await alerts.create_rule(uow, plans, replace(request, budget="1.5"), now=lambda: NOW)
    assert caught.value.field == "rule.budget"


async def test_unknown_organisation_is_not_found_and_opens_no_transaction(tables) -> None:
    uow = FakeUnitOfWork(tables)
    with pytest.raises(NotFound):
        await alerts.create_rule(uow, FakePlans({}), threshold("org_x"), now=lambda: NOW)
    assert uow.commits == uow.rollbacks == 0


async def test_live_rules_are_limited_per_organisation_and_deleting_frees_a_place(tables) -> None:
    plans = FakePlans({"org_1": "INR", "org_2": "INR"})
    uow = FakeUnitOfWork(tables)
    made = [(await alerts.create_rule(uow, plans, threshold(), now=lambda: NOW))[0]
            for _ in range(MAX_LIVE_RULES_PER_ORGANISATION)]
    with pytest.raises(FailedPrecondition):
        await alerts.create_rule(uow, plans, threshold(), now=lambda: NOW)
    assert len(tables.rules) == MAX_LIVE_RULES_PER_ORGANISATION  # the refused one rolled back
    await alerts.create_rule(uow, plans, threshold("org_2"), now=lambda: NOW)  # another organisation's count
    deleted = await alerts.delete_rule(uow, made[0].id)
    assert deleted.deleted_at == NOW
    assert (await alerts.delete_rule(uow, made[0].id)).deleted_at == NOW  # deleting again returns it
    await alerts.create_rule(uow, plans, threshold(), now=lambda: NOW)


async def test_list_pages_and_get(tables) -> None:
    plans = FakePlans({"org_1": "INR"})
    uow = FakeUnitOfWork(tables)
    ids = [(await alerts.create_rule(uow, plans, threshold(), now=lambda: NOW))[0].id for _ in range(3)]
    await alerts.delete_rule(uow, ids[1])
    page, token = await alerts.list_rules(uow, "org_1", False, 1, "")
    rest, last = await alerts.list_rules(uow, "org_1", False, 5, token)
    # Pages in id order (ids made in one millisecond are not in creation order).
    assert [r.id for r in page + rest] == sorted([ids[0], ids[2]]) and last == ""
    everything, _ = await alerts.list_rules(uow, "org_1", True, 5, "")
    assert len(everything) == 3
    assert (await alerts.get_rule(uow, ids[2])).id == ids[2]
    with pytest.raises(NotFound):
        await alerts.get_rule(uow, "alr_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    with pytest.raises(InvalidArgument):
        await alerts.list_rules(uow, "", False, 5, "")


def test_spike_compares_the_last_window_with_the_average_per_window() -> None:
    rule = AlertRule(organisation_id="o", project_id="", kind=AlertKind.SPIKE, name="s", metric_code="m",
                     window_seconds=3600, baseline_seconds=86400, factor="3", min_volume="100")
    now = datetime(2026, 11, 15, 10, 20, tzinfo=UTC)
    windows = spike_windows(rule, now)
    assert (windows.window_start, windows.baseline_start) == (now.replace(hour=9), now.replace(day=14, hour=9))
    assert (windows.grid_start, windows.grid_end) == (now.replace(minute=0), now.replace(hour=11, minute=0))
    baseline = spike_baseline(Aggregation.SUM, Decimal(2400), windows.windows_in_baseline)
    assert baseline == 100
    assert is_spike(rule, Decimal(301), baseline) and not is_spike(rule, Decimal(300), baseline)
    assert not is_spike(rule, Decimal(99), Decimal(1))  # under min_volume


def test_cost_levels_in_minor_units_are_exact() -> None:
    rule = AlertRule(organisation_id="o", project_id="", kind=AlertKind.COST, name="c", levels=("50", "100"),
                     budget="1000.01", currency="INR")
    assert cost_thresholds_minor(rule) == [("50", Decimal("50000.5")), ("100", Decimal(100001))]


async def test_cost_rules_compare_their_budget_with_the_invoice_so_far_or_with_its_forecast(tables) -> None:
    so_far = AlertRule(organisation_id="org_1", project_id="", kind=AlertKind.COST, name="so far", levels=("50", "100"),
                       budget="1000", currency="INR", cost_basis=CostBasis.TO_DATE, id="alr_1")
    forecast = replace(so_far, id="alr_2", name="forecast", cost_basis=CostBasis.FORECAST)
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    # 708.00 so far; 1,416.00 forecast for the end of November.
    cost = ProjectedCost(total_minor=70800, currency="INR", period_start=start, period_end=end,
                         forecast_total_minor=141600)
    fired = await evaluate_cost(FakeUnitOfWork(tables), FakeOutbox(), [so_far, forecast], cost)
    assert sorted((a.rule_id, a.level, a.threshold, a.value) for a in fired) == [
        ("alr_1", "50", "500", "708"), ("alr_2", "100", "1000", "1416"), ("alr_2", "50", "500", "1416")]
    assert [subject for subject, _, _ in tables.outbox] == ["billing.metering.v1.alert.triggered"] * 3
    assert tables.outbox[-1][2].rule.cost_basis == pb.COST_BASIS_FORECAST
    # Without the forecast fetched, a forecast rule waits; the invoice so far still counts for the others.
    later = replace(forecast, id="alr_3")
    fired = await evaluate_cost(FakeUnitOfWork(tables), FakeOutbox(),
                                [later, replace(so_far, id="alr_4")], replace(cost, forecast_total_minor=None))
    assert [(a.rule_id, a.level) for a in fired] == [("alr_4", "50")]
    assert cost.total_for(None) == 70800  # a rule without a basis is compared with the invoice so far


def test_a_credit_balance_rule_needs_a_threshold_and_nothing_of_other_kinds() -> None:
    from services.metering.domain.alerts import define_rule

    rule = define_rule(RuleRequest(organisation_id="org_1", kind=AlertKind.CREDIT_BALANCE, name="low credit",
                                   credit_threshold_minor=50000), currency="INR", currency_minor_units=2)
    assert (rule.kind, rule.currency, rule.credit_threshold_minor, rule.levels) == (
        AlertKind.CREDIT_BALANCE, "INR", 50000, ())
    for bad, field_name in (({"credit_threshold_minor": 0}, "rule.credit_threshold_minor"),
                       ({"credit_threshold_minor": 10**18}, "rule.credit_threshold_minor"),
                       ({"budget": "10"}, "rule.budget"), ({"project_id": "prj_1"}, "rule.project_id")):
        fields = {"organisation_id": "org_1", "kind": AlertKind.CREDIT_BALANCE, "name": "x",
                  "credit_threshold_minor": 5} | bad
        with pytest.raises(InvalidArgument) as caught:
            define_rule(RuleRequest(**fields), currency="INR", currency_minor_units=2)
        assert caught.value.field == field_name
    with pytest.raises(InvalidArgument) as caught:
        define_rule(threshold(credit_threshold_minor=5), currency="INR", currency_minor_units=2)
    assert caught.value.field == "rule.credit_threshold_minor"


async def test_a_credit_balance_rule_fires_once_per_balance_episode(tables) -> None:
    from services.metering.service.alert_evaluation import evaluate_credit_balance
    from services.metering.service.alert_ports import CreditStanding

    rule = AlertRule(organisation_id="org_1", project_id="", kind=AlertKind.CREDIT_BALANCE, name="low credit",
                     currency="INR", credit_threshold_minor=50000, id="alr_c")
    granted = datetime(2026, 11, 2, tzinfo=UTC)
    plenty = CreditStanding({"INR": 50000}, granted)
    assert await evaluate_credit_balance(FakeUnitOfWork(tables), FakeOutbox(), [rule], plenty, NOW) == []
    low = CreditStanding({"INR": 49999}, granted)
    (alert,) = await evaluate_credit_balance(FakeUnitOfWork(tables), FakeOutbox(), [rule], low, NOW)
    assert (alert.kind, alert.threshold, alert.value, alert.currency, alert.period_start) == (
        AlertKind.CREDIT_BALANCE, "500", "499.99", "INR", granted)
    assert await evaluate_credit_balance(FakeUnitOfWork(tables), FakeOutbox(), [rule], low, NOW) == []
    # A new grant (a top-up) opens a new episode: low again, it fires again.
    topped = CreditStanding({"INR": 100}, datetime(2026, 11, 10, tzinfo=UTC))
    assert len(await evaluate_credit_balance(FakeUnitOfWork(tables), FakeOutbox(), [rule], topped, NOW)) == 1
    assert [subject for subject, _, _ in tables.outbox] == ["billing.metering.v1.alert.triggered"] * 2
    # No grant ever and no balance in the currency: below any threshold.
    never = CreditStanding({}, None)
    assert len(await evaluate_credit_balance(FakeUnitOfWork(tables), FakeOutbox(),
                                             [replace(rule, id="alr_d")], never, NOW)) == 1
