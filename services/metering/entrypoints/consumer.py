"""The event consumer: ingest's EventBatchAccepted messages from JetStream into metering's tables.

A durable pull consumer shared by every replica. Per fetch: decode, store all batches in one transaction
(events deduplicated on (project_id, event_id), new ones folded into usage buckets), commit, then ack. A
crash before the ack means redelivery, which the unique key makes harmless: at-least-once delivery plus
idempotent storage is exactly-once counting.

Fetching and decoding the next messages overlaps with storing the current ones (two stages joined by a
small queue), so Python's work and PostgreSQL's run side by side.

The ack wait is short (3 s by default), so the messages a killed process held come back within seconds of its
death. Messages this process holds (queued, or in a transaction that runs longer than that) are kept alive
with in-progress acknowledgements every third of the ack wait (:class:`KeepAlive`), so a slow transaction is
never redelivered to another replica meanwhile; should one be anyway (a stall longer than the ack wait), the
unique key makes the second copy harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.exc import DBAPIError

from billing_runtime.consumer import REDELIVERIES
from billing_runtime.database_errors import is_data_error, is_transient
from billing_runtime.logging import get_logger
from billing_runtime.tracing import consumer_span
from services.metering import counters
from services.metering.adapters.dead_letters import DeadLetters
from services.metering.adapters.event_store import EventStore
from services.metering.adapters.messages import EVENT_BATCH_ACCEPTED, decode_event_batch
from services.metering.config import MeteringSettings
from services.metering.domain.event_batch import EventColumns, PoisonBatch
from services.metering.service.alert_watch import AlertWatch

log = get_logger(__name__)

STREAM = "BILLING_INGEST"  # owned and created by ingest
_MAX_NAK_DELAY = 60.0
_FIRST_RETRY_SECONDS = 0.5
_MAX_RETRY_SECONDS = 10.0
# Redeliveries after a missing ack: the first few come after one ack wait each (a killed process's messages come
# back quickly however often it was killed); then ever longer, for a message that kills or stalls every consumer.
_QUICK_REDELIVERIES = 3
_MAX_BACKOFF_SECONDS = 300.0


@dataclass
class Delivery:
    """One JetStream message and what decoding it gave: its events, or why it can never be stored."""

    msg: Msg
    columns: EventColumns | None
    poison: PoisonBatch | None = None

    @property
    def delivered(self) -> int:
        return self.msg.metadata.num_delivered or 1


class FetchSizing:
    """How many messages to ask for: about one transaction's worth of events, whatever the batch size of the
    senders (a message carries one ingest batch: one event or thousands). Bounds memory and keeps each
    transaction near its best size."""

    def __init__(self, max_messages: int, events_per_fetch: int) -> None:
        self._max = max_messages
        self._target = events_per_fetch
        self._events_per_message = 1.0
        # Cautious until the first fetch shows how large messages are: a backlog of big ones must not all
        # arrive at once.
        self.messages = min(max_messages, 8)

    def observe(self, deliveries: list[Delivery]) -> None:
        sizes = [len(d.columns) for d in deliveries if d.columns is not None]
        if not sizes:
            return
        # A moving average: a burst of odd sizes does not swing the next fetch.
        self._events_per_message = 0.7 * self._events_per_message + 0.3 * (sum(sizes) / len(sizes))
        wanted = int(self._target / max(self._events_per_message, 1.0))
        self.messages = max(1, min(self._max, wanted))


class KeepAlive:
    """The messages this process holds and has not settled: each gets an in-progress acknowledgement (which
    restarts its ack timer) every ``interval``, from a background task that runs while any are held."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._held: dict[int, Msg] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, messages: list[Msg]) -> None:
        for msg in messages:
            self._held[id(msg)] = msg
        if self._held and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._beat(), name="metering-keep-alive")

    def release(self, messages: list[Msg]) -> None:
        for msg in messages:
            self._held.pop(id(msg), None)

    @property
    def held(self) -> int:
        return len(self._held)

    async def close(self) -> None:
        self._held.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _beat(self) -> None:
        while self._held:
            await asyncio.sleep(self.interval)
            for key, msg in list(self._held.items()):
                if msg.is_acked:  # settled (ack, nak, term) but not released yet: nothing to keep alive
                    self._held.pop(key, None)
                    continue
                try:
                    await msg.in_progress()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - NATS away: one warning per round, not per message
                    counters.CONSUMER_ERRORS.labels("in_progress").inc()
                    log.warning("in-progress acknowledgements failed; held messages may be redelivered",
                                error=str(error) or repr(error), held=len(self._held))
                    break


def redelivery_backoff(ack_wait: float, max_deliver: int) -> list[float]:
    """How long each delivery may go unacknowledged before the next one: one ack wait for the first few, then
    twice as long each time, up to 5 minutes (never shorter than the ack wait)."""
    return [
        min(ack_wait * 2 ** max(0, attempt - _QUICK_REDELIVERIES + 1), max(ack_wait, _MAX_BACKOFF_SECONDS))
        for attempt in range(max_deliver - 1)
    ]


def consumer_config(settings: MeteringSettings) -> ConsumerConfig:
    """Explicit acks; redelivery after ack_wait (a few times), then ever longer (backoff) until max_deliver."""
    wait = settings.consumer_ack_wait_seconds
    backoff = redelivery_backoff(wait, settings.consumer_max_deliver)
    return ConsumerConfig(
        durable_name=settings.consumer_durable,
        name=settings.consumer_durable,
        filter_subject=EVENT_BATCH_ACCEPTED,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=wait,
        max_deliver=settings.consumer_max_deliver,
        backoff=backoff,
        max_ack_pending=settings.consumer_max_ack_pending,
    )


class EventConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        store: EventStore,
        dead_letters: DeadLetters,
        settings: MeteringSettings,
        alerts: AlertWatch | None = None,
    ) -> None:
        self._js = js
        self._store = store
        self._alerts = alerts
        self._dead_letters = dead_letters
        self._settings = settings
        self._max_events = settings.consumer_max_events_per_transaction
        # Three in-progress signals per ack wait: one lost or late still leaves the message ours.
        self._alive = KeepAlive(settings.consumer_ack_wait_seconds / 3)

    async def run(self) -> None:
        """Consume until cancelled. Waits (warning now and then) while ingest's stream does not exist yet."""
        await self._until_done(self._dead_letters.ensure_stream, "dead-letter stream not ready")
        # One fetch waits while another is stored: enough to overlap, and memory stays bounded by ~3 fetches.
        queue: asyncio.Queue[list[Delivery]] = asyncio.Queue(maxsize=1)
        fetcher = asyncio.create_task(self._fetch_loop(queue), name="metering-fetch")
        reporter = asyncio.create_task(self._report_backlog(), name="metering-backlog")
        try:
            while True:
                if fetcher.done():
                    fetcher.result()  # a crashed fetcher is re-raised here, never silently lost
                try:
                    deliveries = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                try:
                    await self.process(deliveries)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - a bug must not stop counting: these come back later
                    counters.CONSUMER_ERRORS.labels("process").inc()
                    log.exception("processing a fetch failed; its messages will be redelivered")
                    for delivery in deliveries:
                        await _settle(delivery.msg.nak(delay=min(2.0**delivery.delivered, _MAX_NAK_DELAY)), "nak")
        finally:
            fetcher.cancel()
            reporter.cancel()
            await asyncio.gather(fetcher, reporter, return_exceptions=True)
            # What is still held comes back to another consumer (or the next process) after one ack wait.
            await self._alive.close()

    async def _report_backlog(self, every_seconds: float = 5.0) -> None:
        """Keep the backlog gauges current, for operators' dashboards and alerts."""
        while True:
            try:
                durable = self._settings.consumer_durable
                info = await self._js.consumer_info(STREAM, durable)
                counters.BACKLOG.labels(durable, "pending").set(info.num_pending or 0)
                counters.BACKLOG.labels(durable, "unacknowledged").set(info.num_ack_pending or 0)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a missed sample is not worth more than a debug line
                log.debug("consumer info unavailable", error=str(error) or repr(error))
            await asyncio.sleep(every_seconds)

    async def _until_done(self, step, what: str):  # noqa: ANN001, ANN202 - an awaitable factory and its result
        delay = 0.5
        while True:
            try:
                return await step()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - logged and retried; health does not depend on it
                log.warning(what + ", retrying", error=str(error) or repr(error), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        # Create or update: ack_wait, max_deliver, backoff and max_ack_pending may change between releases.
        await self._js.add_consumer(STREAM, config=consumer_config(self._settings))
        return await self._js.pull_subscribe_bind(durable=self._settings.consumer_durable, stream=STREAM)

    async def _fetch_loop(self, queue: asyncio.Queue) -> None:
        wait = self._settings.consumer_fetch_wait_seconds
        sizing = FetchSizing(self._settings.consumer_fetch_batch, self._max_events)
        subscription = await self._until_done(self._subscribe, "event stream not ready")
        log.info("event consumer started", stream=STREAM, durable=self._settings.consumer_durable)
        try:
            while True:
                try:
                    messages = await subscription.fetch(sizing.messages, timeout=wait)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - NATS blips, or the consumer/stream was removed
                    counters.CONSUMER_ERRORS.labels("fetch").inc()
                    log.warning("fetch failed, subscribing again", error=str(error) or repr(error))
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                    subscription = await self._until_done(self._subscribe, "event stream not ready")
                    continue
                if redelivered := sum(1 for m in messages if (m.metadata.num_delivered or 1) > 1):
                    REDELIVERIES.labels(self._settings.consumer_durable).inc(redelivered)
                deliveries = []
                for msg in messages:
                    try:
                        deliveries.append(Delivery(msg, decode_event_batch(msg.data)))
                    except PoisonBatch as poison:
                        deliveries.append(Delivery(msg, None, poison))
                sizing.observe(deliveries)
                # Kept alive from now: while waiting in the queue behind a long transaction as well.
                self._alive.hold([d.msg for d in deliveries])
                await queue.put(deliveries)
        finally:
            # Otherwise draining the connection at shutdown waits for this subscription's pending pull.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def process(self, deliveries: list[Delivery]) -> None:
        """Store what can be stored (in as few transactions as the size cap allows), dead-letter the rest.

        The messages are kept alive (in-progress acknowledgements) until each is settled, however long the
        transactions take."""
        messages = [d.msg for d in deliveries]
        self._alive.hold(messages)
        try:
            good: list[Delivery] = []
            for delivery in deliveries:
                if delivery.poison is not None:
                    await self._dead_letter(delivery, delivery.poison)
                else:
                    good.append(delivery)
            for chunk in self._chunks(good):
                await self._store_chunk(chunk)
        finally:
            self._alive.release(messages)

    def _chunks(self, deliveries: list[Delivery]) -> list[list[Delivery]]:
        chunks: list[list[Delivery]] = []
        size = 0
        for delivery in deliveries:
            assert delivery.columns is not None
            if not chunks or size + len(delivery.columns) > self._max_events:
                chunks.append([])
                size = 0
            chunks[-1].append(delivery)
            size += len(delivery.columns)
        return chunks

    async def _store_chunk(self, chunk: list[Delivery]) -> None:
        # One span per transaction: a child of its first batch's trace (ingest's publish, and so the REST request
        # before it) and linked to every other batch it stores.
        with consumer_span("metering store events", EVENT_BATCH_ACCEPTED, [d.msg.headers for d in chunk]) as span:
            span.set_attribute("billing.events", sum(len(d.columns) for d in chunk if d.columns is not None))
            await self._store_chunk_traced(chunk)

    async def _store_chunk_traced(self, chunk: list[Delivery]) -> None:
        columns = EventColumns.concat([d.columns for d in chunk if d.columns is not None])
        # A message is one organisation's batch: what alert rules need to know, at a lookup per message.
        organisations = {d.columns.organisation_ids[0] for d in chunk if d.columns is not None and len(d.columns)}
        # Retries come at least twice per ack wait, each restarting the message's timer, so JetStream never
        # redelivers what this consumer still holds.
        longest = min(_MAX_RETRY_SECONDS, self._settings.consumer_ack_wait_seconds / 2)
        delay = min(_FIRST_RETRY_SECONDS, longest)
        while True:
            started = time.perf_counter()
            try:
                new = await self._store_events(columns, organisations)
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - classified below
                if is_transient(error):
                    # Hold on to the messages and try again: a nak would spend a delivery per attempt, and a
                    # long outage would then push good events past max_deliver.
                    counters.CONSUMER_ERRORS.labels("database_unavailable").inc()
                    log.warning("database unavailable, retrying", error=_describe(error), retry_in=delay)
                    for delivery in chunk:
                        await _settle(delivery.msg.in_progress(), "in_progress")  # restart the ack timer
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, longest)
                    continue
                if is_data_error(error) and len(chunk) > 1:
                    # One of them is bad: store them one by one so only that one is dead-lettered.
                    counters.CONSUMER_ERRORS.labels("isolating").inc()
                    for delivery in chunk:
                        await self._store_chunk_traced([delivery])
                    return
                if is_data_error(error):
                    await self._dead_letter(chunk[0], PoisonBatch(_describe(error), "rejected_by_database"))
                    return
                await self._retry_later(chunk, error)
                return
        counters.STORE_SECONDS.observe(time.perf_counter() - started)
        counters.EVENTS_STORED.inc(new)
        counters.EVENTS_DUPLICATE.inc(len(columns) - new)
        if self._alerts is not None:
            self._alerts.stored(organisations)
        for delivery in chunk:
            await _settle(delivery.msg.ack(), "ack")

    async def _store_events(self, columns: EventColumns, organisations: set[str]) -> int:
        """One transaction. Chunks with events of (organisation, metric) pairs that threshold rules watch also
        fire the levels those events cross, in the same transaction; all others take the plain statement."""
        if self._alerts is not None and (pairs := self._alerts.watched(columns, organisations)):
            new = await self._alerts.store(columns, pairs)
            if new is not None:
                return new
        return await self._store.store(columns)

    async def _retry_later(self, chunk: list[Delivery], error: BaseException) -> None:
        """An unexpected failure (neither the database being away nor bad data): nak with a growing delay, so
        another attempt (maybe on another replica) may succeed; dead-letter on the last allowed delivery."""
        counters.CONSUMER_ERRORS.labels("store").inc()
        log.warning("storing events failed, will retry", error=_describe(error), messages=len(chunk))
        for delivery in chunk:
            if delivery.delivered >= self._settings.consumer_max_deliver:
                reason = f"failed on all {delivery.delivered} deliveries; last error: {_describe(error)}"
                await self._dead_letter(delivery, PoisonBatch(reason, "too_many_deliveries"))
            else:
                delay = min(2.0**delivery.delivered, _MAX_NAK_DELAY)
                await _settle(delivery.msg.nak(delay=delay), "nak")

    async def _dead_letter(self, delivery: Delivery, poison: PoisonBatch) -> None:
        msg = delivery.msg
        try:
            await self._dead_letters.publish(
                msg.data,
                reason=poison.reason,
                source_stream=msg.metadata.stream or STREAM,
                source_sequence=msg.metadata.sequence.stream,
                source_subject=msg.subject,
                delivery_count=delivery.delivered,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - not stored as a dead letter: leave it for redelivery
            counters.CONSUMER_ERRORS.labels("dead_letter").inc()
            log.warning("dead-lettering failed, message left for redelivery", error=str(error) or repr(error))
            await _settle(msg.nak(delay=min(2.0**delivery.delivered, _MAX_NAK_DELAY)), "nak")
            return
        counters.BATCHES_DEAD_LETTERED.labels(poison.kind).inc()
        log.warning(
            "event batch dead-lettered",
            reason=poison.reason,
            kind=poison.kind,
            stream_sequence=msg.metadata.sequence.stream,
            deliveries=delivery.delivered,
        )
        await _settle(msg.term(), "term")


async def _settle(acknowledgement, what: str) -> None:  # noqa: ANN001 - a nats ack coroutine
    """Acks are best effort: a lost ack means a redelivery, which deduplication makes harmless."""
    try:
        await acknowledgement
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001
        counters.CONSUMER_ERRORS.labels(what).inc()
        log.warning(f"{what} failed; the message will be redelivered", error=str(error) or repr(error))


def _describe(error: BaseException) -> str:
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    return f"{type(error).__name__}: {error}"
