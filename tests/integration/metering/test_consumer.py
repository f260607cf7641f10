"""The event consumer: every distinct (project, event_id) counted once, whatever JetStream delivers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from billing.metering.v1 import metering_pb2
from billing_runtime import database
from billing_runtime.service import Runtime
from services.metering import counters
from services.metering.adapters.dead_letters import DeadLetters
from services.metering.adapters.event_store import EventStore
from services.metering.adapters.messages import decode_event_batch
from services.metering.config import MeteringSettings
from services.metering.entrypoints.consumer import Delivery, EventConsumer
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

NOW = datetime.now(UTC).replace(microsecond=0)
START, END = NOW - timedelta(days=2), NOW + timedelta(hours=1)


async def test_duplicates_within_and_across_messages_count_once(metering_stub, jetstream, organisation_id) -> None:
    await define(metering_stub, organisation_id, "api.calls", metering_pb2.AGGREGATION_SUM)
    project = project_id()
    t = NOW - timedelta(hours=3)
    first = [E("a", "1.5", t), E("b", "2.25", t), E("a", "1.5", t)]  # "a" twice in one message
    second = [E("b", "2.25", t), E("c", "0.25", t + timedelta(minutes=1))]  # "b" again in another
    await publish(jetstream, batch(organisation_id, project, first))
    await publish(jetstream, batch(organisation_id, project, second))
    await publish(jetstream, batch(organisation_id, project, first))  # the whole message again
    value, count = await eventually(
        lambda: whole_usage(metering_stub, organisation_id, "api.calls", START, END), lambda r: r[1] >= 3
    )
    assert (value, count) == ("4", 3)

    # The same ids from another project are other events.
    await publish(jetstream, batch(organisation_id, project_id(), [E("a", "10", t)]))
    assert await eventually(
        lambda: whole_usage(metering_stub, organisation_id, "api.calls", START, END), lambda r: r[1] >= 4
    ) == ("14", 4)


async def test_out_of_order_timestamps_and_latest(metering_stub, jetstream, organisation_id) -> None:
    await define(metering_stub, organisation_id, "seats", metering_pb2.AGGREGATION_LATEST)
    project = project_id()
    t = NOW - timedelta(hours=5)
    # Newest first, then an older one, then one at the same instant with a greater id (the tie-breaker).
    await publish(jetstream, batch(organisation_id, project, [E("e2", "7", t + timedelta(minutes=40), "seats")]))
    await publish(jetstream, batch(organisation_id, project, [E("e1", "3", t, "seats")]))
    await publish(jetstream, batch(organisation_id, project, [E("e3", "9", t + timedelta(minutes=40), "seats")]))
    value, count = await eventually(
        lambda: whole_usage(metering_stub, organisation_id, "seats", START, END), lambda r: r[1] >= 3
    )
    assert (value, count) == ("9", 3)
    # A range ending before the latest events sees the older one.
    early = await whole_usage(metering_stub, organisation_id, "seats", START, t + timedelta(minutes=1))
    assert early == ("3", 1)


async def test_events_of_an_undefined_metric_are_kept_reported_and_counted_once_defined(
    metering_stub, jetstream, organisation_id
) -> None:
    project = project_id()
    t = NOW - timedelta(hours=1)
    await publish(jetstream, batch(organisation_id, project, [E("u1", "2", t, "gpu.seconds"),
                                                              E("u2", "3", t + timedelta(seconds=5), "gpu.seconds")]))

    async def observed():
        response = await metering_stub.ListObservedMetrics(
            metering_pb2.ListObservedMetricsRequest(organisation_id=organisation_id)
        )
        return list(response.metrics)

    [entry] = await eventually(observed, lambda metrics: metrics and metrics[0].event_count == 2)
    assert entry.code == "gpu.seconds" and entry.metric_id == ""
    assert entry.first_event_time.ToDatetime(tzinfo=UTC) == t
    assert entry.last_event_time.ToDatetime(tzinfo=UTC) == t + timedelta(seconds=5)

    metric = await define(metering_stub, organisation_id, "gpu.seconds", metering_pb2.AGGREGATION_SUM)
    assert await whole_usage(metering_stub, organisation_id, "gpu.seconds", START, END) == ("5", 2)
    [entry] = await observed()
    assert entry.metric_id == metric.id


async def test_a_redelivered_message_changes_nothing(
    metering: Runtime, metering_stub, jetstream, organisation_id
) -> None:
    """A consumer that stored a batch but died before acking: JetStream redelivers it, dedup absorbs it."""
    await define(metering_stub, organisation_id, "api.calls", metering_pb2.AGGREGATION_COUNT)
    durable = f"test-redelivery-{organisation_id[-8:].lower()}"
    await jetstream.add_consumer(
        "BILLING_INGEST",
        ConsumerConfig(durable_name=durable, filter_subject=SUBJECT, ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0,
                       deliver_policy="new"),
    )
    subscription = await jetstream.pull_subscribe_bind(durable=durable, stream="BILLING_INGEST")
    try:
        t = NOW - timedelta(minutes=30)
        payload = batch(organisation_id, project_id(), [E(f"r{i}", "1", t) for i in range(5)])
        sequence = await publish(jetstream, payload)

        async def fetch_ours():
            for msg in await subscription.fetch(10, timeout=5):
                if msg.metadata.sequence.stream == sequence:
                    return msg
                await msg.ack()
            return None

        msg = await eventually(fetch_ours, lambda m: m is not None)
        store = EventStore(metering.engine)
        await store.store(decode_event_batch(msg.data))  # committed; never acked: the "crash"
        redelivered = await eventually(fetch_ours, lambda m: m is not None)
        assert redelivered.metadata.num_delivered == 2

        settings = MeteringSettings(database_url="postgresql://unused", consumer_durable=durable)
        consumer = EventConsumer(jetstream, store, DeadLetters(jetstream), settings)
        await consumer.process([Delivery(redelivered, decode_event_batch(redelivered.data))])
        assert await eventually(
            lambda: whole_usage(metering_stub, organisation_id, "api.calls", START, END), lambda r: r[1] >= 5
        ) == ("5", 5)
        with pytest.raises(TimeoutError):
            await subscription.fetch(1, timeout=1.5)  # acked this time: nothing comes back
    finally:
        await jetstream.delete_consumer("BILLING_INGEST", durable)


async def test_while_the_database_is_away_messages_are_held_not_spent(
    metering: Runtime, metering_stub, jetstream, organisation_id
) -> None:
    """A database outage is nobody's fault: the consumer keeps the messages (extending their ack deadline) and
    retries, rather than nak them towards max_deliver and the dead letters."""
    await define(metering_stub, organisation_id, "api.calls", metering_pb2.AGGREGATION_SUM)
    durable = f"test-outage-{organisation_id[-8:].lower()}"
    await jetstream.add_consumer(
        "BILLING_INGEST",
        ConsumerConfig(durable_name=durable, filter_subject=SUBJECT, ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0,
                       deliver_policy="new"),
    )
    subscription = await jetstream.pull_subscribe_bind(durable=durable, stream="BILLING_INGEST")
    unreachable = database.create_engine("postgresql://postgres@127.0.0.1:1/nowhere", application_name="test")
    try:
        sequence = await publish(jetstream, batch(organisation_id, project_id(), [E("o1", "4.5", NOW)]))
        msg = None
        while msg is None:
            msg = next((m for m in await subscription.fetch(10, timeout=5) if m.metadata.sequence.stream == sequence),
                       None)
        settings = MeteringSettings(
            database_url="postgresql://unused", consumer_durable=durable, consumer_ack_wait_seconds=1.0
        )
        down = EventConsumer(jetstream, EventStore(unreachable), DeadLetters(jetstream), settings)
        attempt = asyncio.create_task(down.process([Delivery(msg, decode_event_batch(msg.data))]))
        # Several ack waits, with a pull waiting all along: without in-progress signals it would be redelivered.
        with pytest.raises(TimeoutError):
            await subscription.fetch(1, timeout=4)
        assert not attempt.done()
        info = await jetstream.consumer_info("BILLING_INGEST", durable)
        assert info.num_ack_pending == 1 and info.num_redelivered == 0
        attempt.cancel()

        # The database is back (another consumer, another engine): the same delivery is stored and acked.
        up = EventConsumer(jetstream, EventStore(metering.engine), DeadLetters(jetstream), settings)
        await up.process([Delivery(msg, decode_event_batch(msg.data))])
        assert msg.metadata.num_delivered == 1
        await eventually(lambda: jetstream.consumer_info("BILLING_INGEST", durable), lambda i: i.num_ack_pending == 0)
        assert await whole_usage(metering_stub, organisation_id, "api.calls", START, END) == ("4.5", 1)
    finally:
        await unreachable.dispose()
        await jetstream.delete_consumer("BILLING_INGEST", durable)


class SlowStore:
    """The real store, after a pause: a transaction that runs longer than the ack wait."""

    def __init__(self, store: EventStore, pause: float) -> None:
        self._store, self._pause = store, pause
        self.calls = 0

    async def store(self, columns):  # noqa: ANN001, ANN201 - EventStore's signature
        self.calls += 1
        await asyncio.sleep(self._pause)
        return await self._store.store(columns)


async def test_a_store_longer_than_the_ack_wait_is_not_redelivered_meanwhile(
    metering: Runtime, metering_stub, jetstream, organisation_id
) -> None:
    """The consumer keeps the messages of a slow transaction alive (in-progress acks), so a short ack wait
    redelivers only what a dead process held, never what a live one is still storing."""
    await define(metering_stub, organisation_id, "api.calls", metering_pb2.AGGREGATION_SUM)
    durable = f"test-slow-{organisation_id[-8:].lower()}"
    ack_wait = 1.0
    await jetstream.add_consumer(
        "BILLING_INGEST",
        ConsumerConfig(durable_name=durable, filter_subject=SUBJECT, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait,
                       deliver_policy="new"),
    )
    subscription = await jetstream.pull_subscribe_bind(durable=durable, stream="BILLING_INGEST")
    try:
        sequence = await publish(jetstream, batch(organisation_id, project_id(), [E("s1", "2.5", NOW)]))
        msg = None
        while msg is None:
            msg = next((m for m in await subscription.fetch(10, timeout=5) if m.metadata.sequence.stream == sequence),
                       None)
        settings = MeteringSettings(
            database_url="postgresql://unused", consumer_durable=durable, consumer_ack_wait_seconds=ack_wait
        )
        slow = SlowStore(EventStore(metering.engine), pause=2 * ack_wait)
        consumer = EventConsumer(jetstream, slow, DeadLetters(jetstream), settings)
        storing = asyncio.create_task(consumer.process([Delivery(msg, decode_event_batch(msg.data))]))
        # A pull waits all along: a redelivery while the transaction runs would arrive here.
        with pytest.raises(TimeoutError):
            await subscription.fetch(1, timeout=2 * ack_wait)
        await storing
        assert slow.calls == 1
        info = await eventually(lambda: jetstream.consumer_info("BILLING_INGEST", durable),
                                lambda i: i.num_ack_pending == 0)
        assert info.num_redelivered == 0
        assert msg.metadata.num_delivered == 1
        with pytest.raises(TimeoutError):
            await subscription.fetch(1, timeout=2 * ack_wait)  # acked: nothing comes back later either
        assert await whole_usage(metering_stub, organisation_id, "api.calls", START, END) == ("2.5", 1)
    finally:
        await jetstream.delete_consumer("BILLING_INGEST", durable)


async def test_the_backlog_gauges_report_what_the_consumer_has_not_finished(metering: Runtime, jetstream) -> None:
    """Operators watch billing_metering_consumer_backlog_messages: messages waiting, and delivered but unacked."""
    durable = "test-backlog-gauge"
    await jetstream.add_consumer(
        "BILLING_INGEST",
        ConsumerConfig(durable_name=durable, filter_subject=SUBJECT, ack_policy=AckPolicy.EXPLICIT, ack_wait=30,
                       deliver_policy="new"),
    )
    subscription = await jetstream.pull_subscribe_bind(durable=durable, stream="BILLING_INGEST")
    try:
        t = NOW - timedelta(minutes=30)
        for i in range(5):
            await publish(jetstream, batch("org_backlog", project_id(), [E(f"g{i}", "1", t)]))
        delivered = await subscription.fetch(2, timeout=5)  # two delivered, left unacknowledged
        assert len(delivered) == 2
        settings = MeteringSettings(database_url="postgresql://unused", consumer_durable=durable)
        consumer = EventConsumer(jetstream, EventStore(metering.engine), DeadLetters(jetstream), settings)
        reporting = asyncio.create_task(consumer._report_backlog(every_seconds=0.05))
        try:
            def sample(state: str):
                return asyncio.sleep(0.05, counters.BACKLOG.labels(durable, state)._value.get())

            await eventually(lambda: sample("unacknowledged"), lambda v: v == 2)
            assert await sample("pending") == 3
        finally:
            reporting.cancel()
    finally:
        await jetstream.delete_consumer("BILLING_INGEST", durable)
