"""Alert rules through the real metering and invoicing services: rules over gRPC, thresholds fired at exactly the
crossing event as events are metered (one per message or many in one), once however often a batch is delivered or
however many consumers store it, announced once on JetStream; spike and cost rules on constructed histories."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
import sqlalchemy as sa
from nats.js.api import ConsumerConfig, DeliverPolicy

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.metering.v1 import events_pb2 as metering_events_pb2
from billing.metering.v1 import metering_pb2 as pb
from billing_runtime import messaging
from billing_runtime.service import Runtime
from billing_runtime.timestamps import to_timestamp
from devstack.nats import LocalNats
from services.metering.adapters.alerts_unit_of_work import AlertsUnitOfWork
from services.metering.adapters.dead_letters import DeadLetters
from services.metering.adapters.event_store import EventStore
from services.metering.adapters.invoicing_plans import InvoicingPlans
from services.metering.adapters.invoicing_projections import InvoicingProjections
from services.metering.adapters.tables import outbox
from services.metering.config import MeteringSettings
from services.metering.entrypoints.consumer import EventConsumer
from services.metering.service.alert_watch import AlertWatch
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, subscribe, terms
from tests.integration.metering.conftest import (
    SUBJECT,
    E,
    batch,
    define,
    eventually,
    project_id,
    publish,
    whole_usage,
)

pytestmark = pytest.mark.usefixtures("metering")

ALERT_SUBJECT = "billing.metering.v1.alert.triggered"
NOW = datetime.now(UTC).replace(microsecond=0)


def threshold_rule(organisation: str, levels: list[str], code: str = "api.calls", **fields) -> pb.AlertRule:
    return pb.AlertRule(organisation_id=organisation, kind=pb.ALERT_KIND_THRESHOLD, name=f"{code} at {levels}",
                        metric_code=code, basis=fields.pop("basis", pb.THRESHOLD_BASIS_ABSOLUTE), levels=levels,
                        **fields)


async def create_rule(stub, rule: pb.AlertRule, key: str = "") -> pb.AlertRule:
    return (await stub.CreateAlertRule(pb.CreateAlertRuleRequest(rule=rule, idempotency_key=key))).rule


async def fired(stub, organisation: str, rule_id: str = "") -> list[pb.FiredAlert]:
    alerts: list[pb.FiredAlert] = []
    token = ""
    while True:
        page = await stub.ListFiredAlerts(pb.ListFiredAlertsRequest(
            organisation_id=organisation, rule_id=rule_id, page_size=2, page_token=token))
        alerts += page.alerts
        token = page.next_page_token
        if not token:
            return alerts


async def fired_count(stub, organisation: str, n: int, rule_id: str = "", timeout: float = 20.0
                      ) -> list[pb.FiredAlert]:
    return await eventually(lambda: fired(stub, organisation, rule_id), lambda a: len(a) >= n, timeout=timeout)


def run_of(n: int, value: str, *, prefix: str = "ev", code: str = "api.calls") -> list[E]:
    """n events in (timestamp, id) order, the last a minute ago."""
    return [E(f"{prefix}{i:03d}", value, NOW - timedelta(seconds=60 + n - i), metric=code) for i in range(n)]


async def settled(metering: Runtime) -> None:
    """Let the consumer finish what is in flight (a redelivery, say) before asserting nothing more happened."""
    await asyncio.sleep(1.5)


async def published_alerts(js, organisation: str) -> list[metering_events_pb2.AlertTriggered]:
    """Every AlertTriggered for the organisation on the metering stream, read with a throwaway consumer."""
    subscription = await js.pull_subscribe(
        ALERT_SUBJECT, stream="BILLING_METERING", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found = []
    try:
        while True:
            try:
                messages = await subscription.fetch(100, timeout=0.5)
            except TimeoutError:
                break
            for message in messages:
                event = metering_events_pb2.AlertTriggered.FromString(message.data)
                if event.alert.organisation_id == organisation:
                    found.append(event)
    finally:
        await subscription.unsubscribe()
    return found


async def test_rules_are_created_once_read_listed_and_deleted(metering_stub, organisation_id) -> None:
    rule = await create_rule(metering_stub, threshold_rule(organisation_id, ["100", "200.50"]), key="k1")
    again = await metering_stub.CreateAlertRule(pb.CreateAlertRuleRequest(
        rule=threshold_rule(organisation_id, ["100", "200.50"]), idempotency_key="k1"))
    assert rule.id.startswith("alr_") and again.rule.id == rule.id and not again.created
    assert list(rule.levels) == ["100", "200.5"] and rule.HasField("create_time")
    assert (await metering_stub.GetAlertRule(pb.GetAlertRuleRequest(rule_id=rule.id))).rule == rule

    cost = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation_id, kind=pb.ALERT_KIND_COST, name="budget", budget="2500.50"))
    assert (cost.currency, list(cost.levels)) == ("INR", ["100"])  # the organisation's billing currency

    listed = await metering_stub.ListAlertRules(pb.ListAlertRulesRequest(organisation_id=organisation_id))
    assert [r.id for r in listed.rules] == sorted([rule.id, cost.id])
    deleted = (await metering_stub.DeleteAlertRule(pb.DeleteAlertRuleRequest(rule_id=rule.id))).rule
    assert deleted.HasField("delete_time")
    again_deleted = (await metering_stub.DeleteAlertRule(pb.DeleteAlertRuleRequest(rule_id=rule.id))).rule
    assert again_deleted.delete_time == deleted.delete_time
    live = await metering_stub.ListAlertRules(pb.ListAlertRulesRequest(organisation_id=organisation_id))
    assert [r.id for r in live.rules] == [cost.id]
    everything = await metering_stub.ListAlertRules(
        pb.ListAlertRulesRequest(organisation_id=organisation_id, include_deleted=True))
    assert len(everything.rules) == 2

    error = await expect_rpc_error(
        metering_stub.CreateAlertRule(pb.CreateAlertRuleRequest(rule=threshold_rule(organisation_id, ["5", "1"]))),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "rule.levels"
    error = await expect_rpc_error(metering_stub.CreateAlertRule(pb.CreateAlertRuleRequest(rule=pb.AlertRule(
        organisation_id=organisation_id, kind=pb.ALERT_KIND_COST, name="b", budget="10.001"))),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "rule.budget"
    for basis in (7, pb.COST_BASIS_FORECAST):  # unknown; and a cost basis on a threshold rule
        bad = threshold_rule(organisation_id, ["1"], cost_basis=basis)
        error = await expect_rpc_error(metering_stub.CreateAlertRule(pb.CreateAlertRuleRequest(rule=bad)),
                                       grpc.StatusCode.INVALID_ARGUMENT)
        assert error_field(error) == "rule.cost_basis"
    await expect_rpc_error(
        metering_stub.CreateAlertRule(pb.CreateAlertRuleRequest(
            rule=threshold_rule("org_01KNOSUCHORGANISATION00000", ["1"]))),
        grpc.StatusCode.NOT_FOUND)
    await expect_rpc_error(metering_stub.GetAlertRule(pb.GetAlertRuleRequest(rule_id="alr_01KNOSUCHRULE000000000000")),
                           grpc.StatusCode.NOT_FOUND)


async def test_threshold_fires_at_the_crossing_event_when_events_arrive_one_per_message(
    metering, metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "api.calls", pb.AGGREGATION_SUM)
    rule = await create_rule(metering_stub, threshold_rule(organisation_id, ["10", "20"]))
    project = project_id()
    events = run_of(9, "3")  # running totals 3 6 9 12 15 18 21 24 27: 10 at ev003, 20 at ev006
    for event in events:
        await publish(jetstream, batch(organisation_id, project, [event]))
    alerts = await fired_count(metering_stub, organisation_id, 2)
    await settled(metering)
    alerts = await fired(metering_stub, organisation_id)
    by_level = {a.level: a for a in alerts}
    assert len(alerts) == 2 and set(by_level) == {"10", "20"}
    ten, twenty = by_level["10"], by_level["20"]
    assert (ten.event_id, ten.value, ten.threshold) == ("ev003", "12", "10")
    assert (twenty.event_id, twenty.value, twenty.threshold) == ("ev006", "21", "20")
    assert ten.event_project_id == project and ten.event_time.ToDatetime(UTC) == events[3].timestamp
    assert ten.rule_id == rule.id and ten.kind == pb.ALERT_KIND_THRESHOLD and ten.metric_code == "api.calls"
    assert ten.rule_name == rule.name and ten.organisation_id == organisation_id
    assert ten.HasField("fire_time") and ten.period_start.ToDatetime(UTC) <= NOW < ten.period_end.ToDatetime(UTC)
    assert [a.level for a in alerts] == ["20", "10"]  # newest first


async def test_threshold_fires_at_the_crossing_event_within_one_message_and_once_when_redelivered(
    metering, metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "api.calls", pb.AGGREGATION_SUM,
                 filters={"region": pb.DimensionFilter(values=["eu"])})
    await create_rule(metering_stub, threshold_rule(organisation_id, ["5", "7", "100"]))
    project = project_id()
    events = [E(f"ev{i:03d}", "2", NOW - timedelta(seconds=90 - i), dimensions={"region": "eu"}) for i in range(6)]
    # Events the metric's filter leaves out do not count towards the level, wherever they sit.
    events.insert(2, E("us-1", "50", NOW - timedelta(seconds=89), dimensions={"region": "us"}))
    payload = batch(organisation_id, project, events)
    await publish(jetstream, payload)
    alerts = await fired_count(metering_stub, organisation_id, 2)
    await publish(jetstream, payload)  # the same message again: stores nothing, fires nothing
    await publish(jetstream, payload)
    await settled(metering)
    alerts = await fired(metering_stub, organisation_id)
    assert sorted((a.level, a.event_id, a.value) for a in alerts) == [("5", "ev002", "6"), ("7", "ev003", "8")]

    announced = await eventually(lambda: published_alerts(metering.js, organisation_id), lambda a: len(a) >= 2)
    await asyncio.sleep(0.5)
    announced = await published_alerts(metering.js, organisation_id)
    assert sorted((a.alert.level, a.event_id) for a in announced) == sorted(
        (a.level, f"alert.triggered:{a.id}") for a in alerts)
    assert all(a.rule.id == a.alert.rule_id and a.alert.event_id for a in announced)
    async with metering.engine.connect() as conn:
        rows = (await conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
            outbox.c.event_id.in_([f"alert.triggered:{a.id}" for a in alerts])))).scalar_one()
    assert rows == 2


async def test_a_rule_created_past_a_level_fires_at_once_without_a_crossing_event(
    metering, metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "api.calls", pb.AGGREGATION_COUNT)
    await publish(jetstream, batch(organisation_id, project_id(), run_of(5, "1")))
    await eventually(lambda: metering_stub.QueryUsage(pb.QueryUsageRequest(
        organisation_id=organisation_id, metric_code="api.calls", start_time=to_timestamp(NOW - timedelta(days=1)),
        end_time=to_timestamp(NOW + timedelta(hours=1)))), lambda r: bool(r.rows) and r.rows[0].event_count == 5)
    rule = await create_rule(metering_stub, threshold_rule(organisation_id, ["3", "6"]))
    (alert,) = await fired_count(metering_stub, organisation_id, 1)
    assert (alert.level, alert.value, alert.event_id, alert.rule_id) == ("3", "5", "", rule.id)
    assert not alert.HasField("event_time")
    # The next event crosses 6 and is named.
    await publish(jetstream, batch(organisation_id, project_id(), [E("sixth", "1", NOW - timedelta(seconds=5))]))
    alerts = await fired_count(metering_stub, organisation_id, 2)
    assert (alerts[0].level, alerts[0].event_id) == ("6", "sixth")


async def test_a_gauge_threshold_compares_the_value_hours_held_so_far(
    metering, metering_stub, jetstream, organisation_id
) -> None:
    """A weighted_sum's period usage is the value-hours held up to now: 3,600 GB set two hours ago is past 1 GB-hour
    within a second of the period, and nowhere near what it would be held to the period's end."""
    await define(metering_stub, organisation_id, "disk.gb", pb.AGGREGATION_WEIGHTED_SUM)
    await publish(jetstream, batch(organisation_id, project_id(), [
        E("g1", "3600", NOW - timedelta(hours=2), metric="disk.gb")]))
    await eventually(lambda: metering_stub.QueryUsage(pb.QueryUsageRequest(
        organisation_id=organisation_id, metric_code="disk.gb", start_time=to_timestamp(NOW - timedelta(days=1)),
        end_time=to_timestamp(NOW + timedelta(hours=1)))), lambda r: bool(r.rows))
    rule = await create_rule(metering_stub, threshold_rule(organisation_id, ["1", "100000000"], code="disk.gb"))
    (alert,) = await fired_count(metering_stub, organisation_id, 1)
    assert (alert.level, alert.event_id, alert.rule_id) == ("1", "", rule.id)
    assert Decimal(1) <= Decimal(alert.value) <= 3600 * 3  # at most two hours (and the test's own time) held


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A NATS of its own, so the session's metering does not consume these messages."""
    nats = await asyncio.to_thread(LocalNats(tmp_path / "nats", port=0, monitor_port=None).start)
    try:
        yield nats.url
    finally:
        await asyncio.to_thread(nats.stop)


@contextlib.asynccontextmanager
async def consumers(metering: Runtime, invoicing: Runtime, js, n: int) -> AsyncIterator[None]:
    """``n`` EventConsumer instances sharing one durable consumer, each with its own AlertWatch (as separate
    processes have), storing into the session's metering database."""
    settings = MeteringSettings(database_url="postgresql://unused/x", consumer_fetch_batch=2)
    plans = InvoicingPlans(invoicing.address)
    projections = InvoicingProjections(invoicing.address)
    tasks = []
    for i in range(n):
        watch = AlertWatch(lambda: AlertsUnitOfWork(metering.engine), metering.outbox, plans, projections, settings)
        await watch.refresh()
        consumer = EventConsumer(js, EventStore(metering.engine), DeadLetters(js), settings, watch)
        tasks.append(asyncio.create_task(consumer.run(), name=f"test-consumer-{i}"))
        tasks.append(asyncio.create_task(watch.run(), name=f"test-alerts-{i}"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await plans.close()
        await projections.close()


async def test_two_consumers_on_one_durable_fire_each_level_once(
    metering, invoicing, metering_stub, private_nats, organisation_id
) -> None:
    """Both consumers store messages of the same pair at the same time; the pair's advisory lock puts their
    evaluations one after the other, and the unique key keeps each level once. (Across transactions the crossing
    event is the one that reached the level in the order metering stored them.)"""
    await define(metering_stub, organisation_id, "api.calls", pb.AGGREGATION_SUM)
    levels = [str(n) for n in (50, 100, 150, 200, 250, 300, 350, 400, 450, 500)]
    await create_rule(metering_stub, threshold_rule(organisation_id, levels))
    nc = await messaging.connect(private_nats, name="alerts-two-consumers")
    js = nc.jetstream()
    await messaging.ensure_stream(js, "BILLING_INGEST", ["billing.ingest.v1.>"])
    project = project_id()
    events = run_of(120, "5")  # 600 in all: every level crossed
    payloads = [batch(organisation_id, project, events[start:start + 3]) for start in range(0, 120, 3)]
    for payload in payloads:
        await js.publish(SUBJECT, payload)
    for payload in payloads[:10]:  # some messages twice
        await js.publish(SUBJECT, payload)
    try:
        async with consumers(metering, invoicing, js, 2):
            await fired_count(metering_stub, organisation_id, len(levels))
            await eventually(lambda: js.consumer_info("BILLING_INGEST", "metering-events"),
                             lambda i: i.num_pending == 0 and i.num_ack_pending == 0)
    finally:
        await nc.close()
    alerts = await fired(metering_stub, organisation_id)
    assert sorted(a.level for a in alerts) == sorted(levels)
    ids = {e.event_id for e in events}
    for alert in alerts:
        assert alert.event_id in ids and Decimal(alert.value) >= Decimal(alert.threshold), alert
        assert Decimal(alert.value) - Decimal(alert.threshold) < 5  # reached by this event, not before it
    announced = await eventually(lambda: published_alerts(metering.js, organisation_id),
                                 lambda a: len(a) >= len(levels))
    await asyncio.sleep(0.5)
    assert len(await published_alerts(metering.js, organisation_id)) == len(levels) == len(announced)


async def test_a_spike_over_the_trailing_average_fires_once_per_window(
    metering, metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "tokens", pb.AGGREGATION_SUM)
    spike = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation_id, kind=pb.ALERT_KIND_SPIKE, name="tokens spike", metric_code="tokens",
        window_seconds=3600, baseline_seconds=86400, factor="3", min_volume="50"))
    calm = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation_id, kind=pb.ALERT_KIND_SPIKE, name="big spike only", metric_code="tokens",
        window_seconds=3600, baseline_seconds=86400, factor="30", min_volume="50"))
    project = project_id()
    # The previous day: 10 tokens an hour (the average per window is 10), all more than an hour ago.
    history = [E(f"h{i:02d}", "10", NOW - timedelta(hours=i + 1, minutes=30), metric="tokens") for i in range(23)]
    await publish(jetstream, batch(organisation_id, project, history))
    # The last hour: 45 (under min_volume, and only 4.5 x), then 80 more: 125 > 3 x 10.
    await publish(jetstream, batch(organisation_id, project,
                                   [E("now1", "45", NOW - timedelta(minutes=20), metric="tokens")]))
    await asyncio.sleep(3)
    assert await fired(metering_stub, organisation_id) == []
    await publish(jetstream, batch(organisation_id, project,
                                   [E("now2", "80", NOW - timedelta(minutes=10), metric="tokens")]))
    (alert,) = await fired_count(metering_stub, organisation_id, 1)
    assert (alert.rule_id, alert.kind, alert.level, alert.value) == (spike.id, pb.ALERT_KIND_SPIKE, "spike", "125")
    # 23 events of 10 over the 24 windows of the baseline; shown to six decimals.
    assert (alert.baseline, alert.threshold) == ("9.583333", "28.75")
    assert alert.period_end.ToSeconds() - alert.period_start.ToSeconds() == 3600
    assert alert.period_start.ToSeconds() % 3600 == 0
    # More usage in the same window does not fire it again, and the factor-30 rule stays quiet (205 < 287.5).
    await publish(jetstream, batch(organisation_id, project,
                                   [E("now3", "80", NOW - timedelta(minutes=5), metric="tokens")]))
    await asyncio.sleep(3)
    assert [a.rule_id for a in await fired(metering_stub, organisation_id)] == [spike.id]
    assert calm.id not in {a.rule_id for a in await fired(metering_stub, organisation_id)}


PER_CALL = {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.10"}}
QUOTA = [{"metric_code": "api_calls", "limit": "1000", "cap": "QUOTA_CAP_SOFT"}]


async def subscribed_organisation(invoicing, invoicing_stub) -> str:
    """An organisation on a plan (base fee 100 INR, 0.10 per api call, a soft quota of 1000 calls) since the start
    of its current billing month."""
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee="100", charges=[PER_CALL], quotas=QUOTA))
    organisation = await create_organisation(invoicing_stub, invoicing, since=NOW - timedelta(days=70))
    in_force = await invoicing_stub.GetPlanInForce(ipb.GetPlanInForceRequest(organisation_id=organisation))
    start = in_force.period_start.ToDatetime(UTC).astimezone(ZoneInfo("Asia/Kolkata"))
    await subscribe(invoicing_stub, organisation, plan.latest_version.id, start_date=start.date().isoformat())
    return organisation


async def test_quota_percent_levels_fire_at_the_event_reaching_them(
    metering, invoicing, invoicing_stub, metering_stub, jetstream
) -> None:
    organisation = await subscribed_organisation(invoicing, invoicing_stub)
    await define(metering_stub, organisation, "api_calls", pb.AGGREGATION_SUM)
    await create_rule(metering_stub, threshold_rule(organisation, ["80", "100"], code="api_calls",
                                                    basis=pb.THRESHOLD_BASIS_QUOTA_PERCENT))
    project = project_id()
    for i, value in enumerate(["500", "299", "1", "150", "50"]):  # 500 799 800 950 1000
        await publish(jetstream, batch(organisation, project, [
            E(f"q{i}", value, NOW - timedelta(seconds=30 - i), metric="api_calls")]))
    alerts = await fired_count(metering_stub, organisation, 2)
    assert sorted((a.level, a.threshold, a.value, a.event_id) for a in alerts) == [
        ("100", "1000", "1000", "q4"), ("80", "800", "800", "q2")]


async def test_cost_levels_fire_on_the_projected_invoice(
    metering, invoicing, invoicing_stub, metering_stub, jetstream
) -> None:
    organisation = await subscribed_organisation(invoicing, invoicing_stub)
    await define(metering_stub, organisation, "api_calls", pb.AGGREGATION_SUM)
    rule = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation, kind=pb.ALERT_KIND_COST, name="budget", budget="1000", levels=["50", "80"]))
    # 5,000 calls: 500 + the base fee 100 = 600 INR before GST (18 %): 708 INR, over 50 % of 1000, under 80 %.
    await publish(jetstream, batch(organisation, project_id(), [
        E("c1", "5000", NOW - timedelta(minutes=5), metric="api_calls")]))
    (alert,) = await fired_count(metering_stub, organisation, 1)
    projected = (await invoicing_stub.GetProjectedInvoice(
        ipb.GetProjectedInvoiceRequest(organisation_id=organisation))).invoice
    assert (alert.rule_id, alert.kind, alert.level, alert.currency) == (rule.id, pb.ALERT_KIND_COST, "50", "INR")
    assert Decimal(alert.value) == Decimal(projected.total_minor) / 100 == Decimal("708")
    assert alert.threshold == "500"
    assert alert.period_start == projected.period_start and alert.period_end == projected.period_end
    await asyncio.sleep(3)
    assert len(await fired(metering_stub, organisation)) == 1


async def test_a_forecast_cost_rule_fires_on_the_forecast_of_the_period_end_and_a_to_date_one_does_not(
    metering, invoicing, invoicing_stub, metering_stub, jetstream
) -> None:
    organisation = await subscribed_organisation(invoicing, invoicing_stub)
    await define(metering_stub, organisation, "api_calls", pb.AGGREGATION_SUM)
    zone = ZoneInfo("Asia/Kolkata")
    in_force = await invoicing_stub.GetPlanInForce(ipb.GetPlanInForceRequest(organisation_id=organisation))
    first = in_force.period_start.ToDatetime(UTC).astimezone(zone).date()
    today = NOW.astimezone(zone).date()
    today_start = datetime.combine(today, datetime.min.time(), tzinfo=zone)
    # 1,000 calls on every complete day of the period so far, and 500 today (on the 1st, only those 500).
    events = [E(f"d{n}", "1000", datetime.combine(first + timedelta(days=n), datetime.min.time(), tzinfo=zone)
                + timedelta(hours=1), metric="api_calls") for n in range((today - first).days)]
    events.append(E("today", "500", max(today_start, NOW - timedelta(minutes=5)), metric="api_calls"))
    await publish(jetstream, batch(organisation, project_id(), events))
    expected = Decimal(1000 * (len(events) - 1) + 500)
    await eventually(lambda: whole_usage(metering_stub, organisation, "api_calls",
                                         in_force.period_start.ToDatetime(UTC), NOW),
                     lambda found: found[0] != "" and Decimal(found[0]) == expected)
    answer = await invoicing_stub.GetProjectedInvoice(
        ipb.GetProjectedInvoiceRequest(organisation_id=organisation, include_forecast=True))
    so_far, forecast = answer.invoice.total_minor, answer.forecast.invoice.total_minor
    assert forecast > so_far

    # A budget half way between: the invoice so far is under it, the forecast of the period's end over it.
    budget = Decimal((so_far + forecast) // 2) / 100
    to_date = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation, kind=pb.ALERT_KIND_COST, name="so far", budget=str(budget)))
    ahead = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation, kind=pb.ALERT_KIND_COST, name="ahead", budget=str(budget),
        cost_basis=pb.COST_BASIS_FORECAST))
    assert (to_date.cost_basis, ahead.cost_basis) == (pb.COST_BASIS_TO_DATE, pb.COST_BASIS_FORECAST)
    (alert,) = await fired_count(metering_stub, organisation, 1)
    assert (alert.rule_id, alert.kind, alert.level, alert.currency) == (ahead.id, pb.ALERT_KIND_COST, "100", "INR")
    assert Decimal(alert.threshold) == budget <= Decimal(alert.value)
    # The forecast, made a moment later (a few seconds fewer left at the same rate: within a rupee).
    assert abs(Decimal(alert.value) - Decimal(forecast) / 100) <= 1
    await asyncio.sleep(3)
    assert [a.rule_id for a in await fired(metering_stub, organisation)] == [ahead.id]
    rule = (await metering_stub.GetAlertRule(pb.GetAlertRuleRequest(rule_id=ahead.id))).rule
    assert rule.cost_basis == pb.COST_BASIS_FORECAST


async def test_a_credit_balance_rule_fires_when_the_prepaid_balance_is_below_its_threshold(
    metering, invoicing, invoicing_stub, metering_stub
) -> None:
    organisation = await create_organisation(invoicing_stub, invoicing)
    await invoicing_stub.GrantCredit(ipb.GrantCreditRequest(organisation_id=organisation, amount_minor=20000,
                                                            currency="INR"))
    rule = await create_rule(metering_stub, pb.AlertRule(
        organisation_id=organisation, kind=pb.ALERT_KIND_CREDIT_BALANCE, name="low credit",
        credit_threshold_minor=50000))
    assert (rule.currency, rule.credit_threshold_minor) == ("INR", 50000)
    (alert,) = await fired_count(metering_stub, organisation, 1)
    # 200.00 INR of credit, below the 500.00 threshold: fired once for this balance episode.
    assert (alert.rule_id, alert.kind, alert.threshold, alert.value, alert.currency) == (
        rule.id, pb.ALERT_KIND_CREDIT_BALANCE, "500", "200", "INR")
    error = await expect_rpc_error(metering_stub.CreateAlertRule(pb.CreateAlertRuleRequest(rule=pb.AlertRule(
        organisation_id=organisation, kind=pb.ALERT_KIND_CREDIT_BALANCE, name="x"))),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "rule.credit_threshold_minor"
