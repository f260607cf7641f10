"""Alerts across SIGKILL: metering as a real process (beside a real invoicing), killed again and again while it
consumes a stream that crosses ten threshold levels, with whole messages published twice. Afterwards each level
fired exactly once, at an event that made usage equal the level (every event adds 1, so a level counted from a
wrong 'before' would show another value), and each was announced once on JetStream."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from nats.js.api import ConsumerConfig, DeliverPolicy

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import events_pb2 as metering_events_pb2
from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from billing_runtime import messaging
from devstack.mesh import Mesh
from tests.integration.helpers import organisation_request
from tests.integration.metering.conftest import SUBJECT, eventually
from tests.integration.metering.test_crash_recovery import private_database, private_nats  # noqa: F401 - fixtures

EVENTS = 12_000
BATCH = 40
LEVELS = [str(n) for n in range(1_000, 11_001, 1_111)][:10]
KILL_AT = (0.2, 0.45, 0.7)


def make_messages(organisation: str, rng: random.Random) -> list[bytes]:
    projects = [f"prj_alert{secrets.token_hex(4)}" for _ in range(2)]
    now = datetime.now(UTC)
    payloads = []
    for start in range(0, EVENTS, BATCH):
        project = rng.choice(projects)
        events = []
        for i in range(start, start + BATCH):
            event = ingest_pb2.Event(event_id=f"ev-{i:06d}", metric="api.calls", value="1")
            event.timestamp.FromDatetime(now - timedelta(seconds=rng.randint(60, 3000)))
            events.append(event)
        payloads.append(events_pb2.EventBatchAccepted(
            batch_id=secrets.token_hex(6), organisation_id=organisation, project_id=project, events=events,
        ).SerializeToString())
    for payload in rng.sample(payloads, 10):  # whole messages again, later
        payloads.insert(rng.randrange(len(payloads) // 2, len(payloads)), payload)
    return payloads


async def test_sigkill_while_consuming_fires_each_level_exactly_once(
    private_nats: str, private_database: str, tmp_path: Path  # noqa: F811 - the fixtures imported above
) -> None:
    rng = random.Random(20261205)
    nc = await messaging.connect(private_nats, name="alert-fault-test")
    js = nc.jetstream()
    await messaging.ensure_stream(js, "BILLING_INGEST", ["billing.ingest.v1.>"])
    mesh = Mesh(
        tmp_path / "mesh", private_database, private_nats, "alert-fault-admin-token",
        services=["invoicing", "metering"], prefer_default_ports=False,
        service_env={"metering": {"METERING_CONSUMER_ACK_WAIT_SECONDS": "2", "METERING_CONSUMER_FETCH_BATCH": "4"},
                     "invoicing": {"INVOICING_SCHEDULER_ENABLED": "false"}},
        say=lambda message: None,
    )
    db = await asyncpg.connect(private_database)

    async def stored() -> int:
        return await db.fetchval("SELECT count(*) FROM metering.events")

    try:
        await asyncio.to_thread(mesh.start)
        async with mesh.channel("invoicing") as channel:
            invoicing = invoicing_pb2_grpc.InvoicingServiceStub(channel)
            organisation = (await invoicing.CreateOrganisation(organisation_request())).organisation.id
        async with mesh.channel("metering") as channel:
            metering = metering_pb2_grpc.MeteringServiceStub(channel)
            await metering.CreateMetric(pb.CreateMetricRequest(
                organisation_id=organisation, code="api.calls", name="calls", aggregation=pb.AGGREGATION_SUM))
            rule = (await metering.CreateAlertRule(pb.CreateAlertRuleRequest(rule=pb.AlertRule(
                organisation_id=organisation, kind=pb.ALERT_KIND_THRESHOLD, name="calls",
                metric_code="api.calls", basis=pb.THRESHOLD_BASIS_ABSOLUTE, levels=LEVELS)))).rule
        payloads = make_messages(organisation, rng)
        late = len(payloads) * 85 // 100
        for payload in payloads[:late]:
            await js.publish(SUBJECT, payload)
        stored_at_kill, fired_at_kill = [], []
        for share in KILL_AT:
            await eventually(stored, lambda n, share=share: n >= share * EVENTS, timeout=90)
            mesh.kill("metering")
            stored_at_kill.append(await stored())
            fired_at_kill.append(await db.fetchval("SELECT count(*) FROM metering.fired_alerts"))
            await asyncio.to_thread(mesh.restart, "metering")
        for payload in payloads[late:]:
            await js.publish(SUBJECT, payload)
        await eventually(stored, lambda n: n >= EVENTS, timeout=120)
        await eventually(lambda: js.consumer_info("BILLING_INGEST", "metering-events"),
                         lambda i: i.num_pending == 0 and i.num_ack_pending == 0, timeout=60)

        # The kills landed mid-stream, between levels, and cost redeliveries.
        assert all(n < EVENTS for n in stored_at_kill), stored_at_kill
        assert 0 < fired_at_kill[0] < len(LEVELS), fired_at_kill
        final = await js.consumer_info("BILLING_INGEST", "metering-events")
        assert final.delivered.consumer_seq > final.delivered.stream_seq
        rows = await db.fetch("SELECT level, value, event_id, rule_id, id FROM metering.fired_alerts")
        assert sorted(r["level"] for r in rows) == sorted(LEVELS)
        for row in rows:
            assert row["rule_id"] == rule.id
            assert row["event_id"].startswith("ev-"), row  # fired as events were stored, by a named event
            assert row["value"] == row["level"], row
        outbox = await db.fetch("SELECT event_id FROM metering.outbox WHERE subject = $1",
                                "billing.metering.v1.alert.triggered")
        assert sorted(r["event_id"] for r in outbox) == sorted(f"alert.triggered:{r['id']}" for r in rows)

        async def announced() -> list[str]:
            subscription = await js.pull_subscribe(
                "billing.metering.v1.alert.triggered", stream="BILLING_METERING",
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
            seen = []
            try:
                while True:
                    try:
                        messages = await subscription.fetch(100, timeout=0.5)
                    except TimeoutError:
                        return seen
                    seen += [metering_events_pb2.AlertTriggered.FromString(m.data).event_id for m in messages]
            finally:
                await subscription.unsubscribe()

        assert sorted(await eventually(announced, lambda seen: len(seen) >= len(LEVELS))) == sorted(
            r["event_id"] for r in outbox)
        assert mesh.unexpected_exits() == []
    finally:
        await db.close()
        await asyncio.to_thread(mesh.stop)
        await nc.close()
