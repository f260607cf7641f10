"""The fault test: metering as a real process, SIGKILLed again and again while it consumes a stream full of
duplicates. Afterwards every distinct event is stored once and the totals match to the last decimal."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing_runtime import messaging
from devstack.mesh import Mesh
from devstack.nats import LocalNats
from tests.conftest import Infrastructure, create_database, drop_database
from tests.integration.metering.conftest import SUBJECT, days_from_buckets_sql, eventually

EVENTS = 50_000
DUPLICATE_SHARE = 0.4
BATCH = 400
KILL_AT = (0.15, 0.4, 0.65)  # shares of the distinct events stored when each SIGKILL lands


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A NATS of its own, so the session's in-process metering does not consume these messages."""
    nats = await asyncio.to_thread(LocalNats(tmp_path / "nats", port=0, monitor_port=None).start)
    try:
        yield nats.url
    finally:
        await asyncio.to_thread(nats.stop)


@pytest.fixture
async def private_database(infrastructure: Infrastructure) -> AsyncIterator[str]:
    url = await create_database(infrastructure.server_url, "metering_fault")
    yield url
    await drop_database(infrastructure.server_url, url)


def make_messages(rng: random.Random) -> tuple[list[bytes], dict[tuple[str, str], Decimal]]:
    """Batches of events where ~40% are repeats of earlier ones (same id, same body), plus whole messages
    published twice; returns the payloads in publishing order and the distinct events' values."""
    organisation = f"org_fault{secrets.token_hex(4)}"
    projects = [f"prj_fault{secrets.token_hex(4)}" for _ in range(3)]
    now = datetime.now(UTC)
    distinct: dict[tuple[str, str], Decimal] = {}
    events: list[tuple[str, ingest_pb2.Event]] = []
    sent: list[tuple[str, ingest_pb2.Event]] = []
    while len(events) < EVENTS:
        if sent and rng.random() < DUPLICATE_SHARE:
            events.append(rng.choice(sent))
            continue
        project, event_id = rng.choice(projects), f"ev-{secrets.token_hex(8)}"
        value = Decimal(rng.randint(0, 10**9)) / Decimal(10) ** rng.randint(0, 6)
        event = ingest_pb2.Event(event_id=event_id, metric=rng.choice(["api.calls", "tokens"]), value=str(value))
        moment = now - timedelta(seconds=rng.randint(0, 3 * 86400), microseconds=rng.randint(0, 999999))
        event.timestamp.FromDatetime(moment)
        distinct[(project, event_id)] = value
        events.append((project, event))
        sent.append((project, event))
    payloads = []
    for start in range(0, len(events), BATCH):
        by_project: dict[str, list[ingest_pb2.Event]] = {}
        for project, event in events[start : start + BATCH]:
            by_project.setdefault(project, []).append(event)
        for project, members in by_project.items():
            payloads.append(
                events_pb2.EventBatchAccepted(
                    batch_id=secrets.token_hex(6), organisation_id=organisation, project_id=project, events=members
                ).SerializeToString()
            )
    for payload in rng.sample(payloads, 8):  # whole messages again, later
        payloads.insert(rng.randrange(len(payloads) // 2, len(payloads)), payload)
    return payloads, distinct


async def test_sigkill_while_consuming_never_changes_a_total(
    private_nats: str, private_database: str, tmp_path: Path
) -> None:
    rng = random.Random(20261121)
    payloads, distinct = make_messages(rng)
    nc = await messaging.connect(private_nats, name="fault-test")
    js = nc.jetstream()
    await messaging.ensure_stream(js, "BILLING_INGEST", ["billing.ingest.v1.>"])
    mesh = Mesh(
        tmp_path / "mesh", private_database, private_nats, "fault-test-admin-token",
        services=["metering"], prefer_default_ports=False,
        # Redeliver in-flight messages of a killed process after 2 s rather than 3, and take small bites so
        # the kills land mid-stream with transactions open.
        service_env={"metering": {"METERING_CONSUMER_ACK_WAIT_SECONDS": "2", "METERING_CONSUMER_FETCH_BATCH": "4"}},
        say=lambda message: None,
    )
    db = await asyncpg.connect(private_database)

    async def stored() -> int:
        return await db.fetchval("SELECT count(*) FROM metering.events")

    try:
        late = len(payloads) * 85 // 100
        for payload in payloads[:late]:
            await js.publish(SUBJECT, payload)
        await asyncio.to_thread(mesh.start)
        stored_at_kill = []
        for share in KILL_AT:
            # Kill as soon as this share is stored: the consumer is then mid-stream, with messages in flight.
            await eventually(stored, lambda n, share=share: n >= share * len(distinct), timeout=60)
            mesh.kill("metering")
            stored_at_kill.append(await stored())
            await asyncio.to_thread(mesh.restart, "metering")
        for payload in payloads[late:]:
            await js.publish(SUBJECT, payload)

        assert all(n < len(distinct) for n in stored_at_kill), stored_at_kill
        await eventually(stored, lambda n: n >= len(distinct), timeout=90)
        info = await js.consumer_info("BILLING_INGEST", "metering-events")
        await eventually(lambda: js.consumer_info("BILLING_INGEST", "metering-events"),
                         lambda i: i.num_pending == 0 and i.num_ack_pending == 0, timeout=60)
        assert info.config.ack_wait == 2

        assert await db.fetchval("SELECT count(*) FROM metering.events") == len(distinct)
        totals = await db.fetchrow("SELECT sum(event_count) AS n, sum(value_sum) AS s FROM metering.usage_buckets")
        assert totals["n"] == len(distinct)
        assert totals["s"] == sum(distinct.values(), Decimal(0))
        # Every bucket equals a recomputation from the stored events, and those are exactly the distinct ones.
        mismatches = await db.fetchval(
            """
            SELECT count(*) FROM (
                SELECT organisation_id, metric, project_id,
                    date_bin('15 minutes', timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket_start,
                    count(*) AS event_count, sum(value) AS value_sum, min(value) AS value_min,
                    max(value) AS value_max
                FROM metering.events GROUP BY 1, 2, 3, 4
            ) e FULL JOIN metering.usage_buckets b USING (organisation_id, metric, project_id, bucket_start)
            WHERE e.event_count IS DISTINCT FROM b.event_count OR e.value_sum IS DISTINCT FROM b.value_sum
                OR e.value_min IS DISTINCT FROM b.value_min OR e.value_max IS DISTINCT FROM b.value_max
            """
        )
        assert mismatches == 0
        # And the days equal the roll-up of those buckets: folded from the same new events only.
        day_mismatches = await db.fetchval(
            f"""
            SELECT count(*) FROM ({days_from_buckets_sql()}) r
            FULL JOIN metering.usage_days d USING (organisation_id, metric, project_id, day_start)
            WHERE (r.event_count, r.value_sum, r.value_min, r.value_max, r.first_time, r.latest_time,
                    r.latest_event_id, r.latest_value)
                IS DISTINCT FROM (d.event_count, d.value_sum, d.value_min, d.value_max, d.first_time, d.latest_time,
                    d.latest_event_id, d.latest_value)
            """
        )
        assert day_mismatches == 0
        assert await db.fetchval("SELECT sum(event_count) FROM metering.usage_days") == len(distinct)
        stored = {(r["project_id"], r["event_id"]): r["value"]
                  for r in await db.fetch("SELECT project_id, event_id, value FROM metering.events")}
        assert stored == distinct
        assert mesh.unexpected_exits() == []
        # The kills cost redeliveries (consumer deliveries beyond one per message), which changed nothing.
        final = await js.consumer_info("BILLING_INGEST", "metering-events")
        assert final.delivered.consumer_seq > final.delivered.stream_seq
    finally:
        await db.close()
        await asyncio.to_thread(mesh.stop)
        await nc.close()


RECOVERY_SECONDS = 5.0  # issue 14: totals final within 5 s of the restart


async def test_after_a_sigkill_the_work_the_dead_process_held_is_counted_soon_after_the_restart(
    private_nats: str, private_database: str, tmp_path: Path
) -> None:
    """With the default (short) ack wait, the batches a killed metering held come back to its replacement within
    seconds: the totals are final within 5 s of the restarted process reporting SERVING."""
    rng = random.Random(20261205)
    payloads, distinct = make_messages(rng)
    nc = await messaging.connect(private_nats, name="redelivery-test")
    js = nc.jetstream()
    await messaging.ensure_stream(js, "BILLING_INGEST", ["billing.ingest.v1.>"])
    mesh = Mesh(
        tmp_path / "mesh", private_database, private_nats, "redelivery-test-admin-token",
        services=["metering"], prefer_default_ports=False,
        # The default ack wait (no override); small fetches so the kill lands with transactions open.
        service_env={"metering": {"METERING_CONSUMER_FETCH_BATCH": "4"}},
        say=lambda message: None,
    )
    db = await asyncpg.connect(private_database)

    async def stored() -> int:
        return await db.fetchval("SELECT count(*) FROM metering.events")

    try:
        for payload in payloads:  # everything published first: "final" is then well defined
            await js.publish(SUBJECT, payload)
        await asyncio.to_thread(mesh.start)
        await eventually(stored, lambda n: n >= len(distinct) // 2, timeout=60)
        mesh.kill("metering")
        killed_at = time.monotonic()
        held = await js.consumer_info("BILLING_INGEST", "metering-events")
        stored_at_kill = await stored()
        assert held.config.ack_wait == 3
        # The dead process held messages: without a short ack wait they would be gone for 30 s.
        assert held.num_ack_pending > 0 and stored_at_kill < len(distinct), (held.num_ack_pending, stored_at_kill)

        await asyncio.to_thread(mesh.restart, "metering")
        restarted_at = time.monotonic()
        await eventually(stored, lambda n: n >= len(distinct), timeout=60)
        final_at = time.monotonic()
        totals = await db.fetchrow("SELECT sum(event_count) AS n, sum(value_sum) AS s FROM metering.usage_buckets")
        after_restart, after_kill = final_at - restarted_at, final_at - killed_at
        print(f"\ntotals final {after_restart:.2f} s after the restart ({after_kill:.2f} s after the SIGKILL; "
              f"restart took {restarted_at - killed_at:.2f} s; {held.num_ack_pending} messages held at the kill)")
        assert totals["n"] == len(distinct)
        assert totals["s"] == sum(distinct.values(), Decimal(0))
        assert after_restart <= RECOVERY_SECONDS, f"totals final {after_restart:.2f} s after the restart"
        await eventually(lambda: js.consumer_info("BILLING_INGEST", "metering-events"),
                         lambda i: i.num_pending == 0 and i.num_ack_pending == 0, timeout=30)
    finally:
        await db.close()
        await asyncio.to_thread(mesh.stop)
        await nc.close()
