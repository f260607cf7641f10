"""A durable JetStream pull consumer that handles one message per unit of work: the shape every service
that reacts to another's events uses (payments on invoices and webhooks, invoicing on payments...).

Handlers are idempotent by the event's id, so the contract is at-least-once: ack after the handler's
transaction committed; a crash before the ack redelivers. A failing handler is retried with a growing
``nak`` delay; :class:`PoisonMessage` (a message that can never be handled) and the last allowed delivery
end in ``term`` with an ERROR log naming the stream sequence, so nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter, Gauge

from billing_runtime.logging import get_logger
from billing_runtime.tracing import consumer_span

log = get_logger(__name__)

MESSAGES = Counter("billing_consumer_messages_total", "Messages handled by a durable consumer, by outcome.",
                   ["durable", "outcome"])
REDELIVERIES = Counter("billing_consumer_redeliveries_total",
                       "Messages a durable consumer received again (after a nak, a crash or an ack wait).", ["durable"])
BACKLOG = Gauge("billing_consumer_backlog_messages",
                "Messages a durable consumer has not finished: pending (not yet delivered) or unacknowledged. Sampled "
                "every few seconds; a backlog that keeps growing means the consumer is behind.", ["durable", "state"])
_BACKLOG_EVERY_SECONDS = 5.0
_MAX_NAK_DELAY = 60.0


class PoisonMessage(Exception):
    """The message can never be handled (it does not decode, or names nothing that can exist)."""


Handler = Callable[[Msg], Awaitable[None]]
# Handles every message of a fetch at once (typically in one transaction); on any failure the consumer falls back
# to ``handle`` message by message, so one bad message never holds back the others.
BatchHandler = Callable[[list[Msg]], Awaitable[None]]


class DurableConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        subjects: Sequence[str],
        handle: Handler,
        ack_wait_seconds: float = 30.0,
        max_deliver: int = 50,
        batch: int = 50,
        fetch_wait_seconds: float = 1.0,
        handle_batch: BatchHandler | None = None,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
    ) -> None:
        self._js = js
        self._stream = stream
        self._durable = durable
        self._subjects = list(subjects)
        self._handle = handle
        self._handle_batch = handle_batch
        # Where a durable consumer created for the first time starts: everything the stream holds (ALL), or only
        # what is published from then on (NEW), for a consumer that must not act on history (mail).
        self._deliver_policy = deliver_policy
        self._ack_wait = ack_wait_seconds
        self._max_deliver = max_deliver
        self._batch = batch
        self._fetch_wait = fetch_wait_seconds

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self._durable,
            name=self._durable,
            filter_subjects=self._subjects,
            deliver_policy=self._deliver_policy,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=self._max_deliver,
            max_ack_pending=max(self._batch * 4, 100),
        )

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        delay = 0.5
        waited = 0.0
        while True:
            try:
                await self._js.add_consumer(self._stream, config=self.config())
                return await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the owning service may not have made its stream yet
                # Services start in any order, so a missing stream is expected for a while; only a long wait is
                # worth a warning.
                level = log.warning if waited >= 30.0 else log.info
                level("stream not ready, retrying", stream=self._stream, durable=self._durable,
                      error=str(error) or repr(error), retry_in=delay)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Consume until cancelled."""
        subscription = await self._subscribe()
        log.info("consumer started", stream=self._stream, durable=self._durable, subjects=self._subjects)
        reporter = asyncio.create_task(self._report_backlog(), name=f"{self._durable}-backlog")
        try:
            while True:
                # Python 3.11's asyncio.wait_for (under nats-py's fetch) can swallow a cancellation that arrives as
                # its inner wait completes (fixed in 3.12): the task stays marked as cancelling, so stop here
                # rather than fetch for ever.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                try:
                    messages = await subscription.fetch(self._batch, timeout=self._fetch_wait)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - NATS blips, or the consumer was removed
                    log.warning("fetch failed, subscribing again", durable=self._durable, error=str(error))
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                    subscription = await self._subscribe()
                    continue
                if redelivered := sum(1 for m in messages if (m.metadata.num_delivered or 1) > 1):
                    REDELIVERIES.labels(self._durable).inc(redelivered)
                if self._handle_batch is not None and len(messages) > 1:
                    await self.deliver_batch(messages)
                else:
                    for msg in messages:
                        await self.deliver(msg)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _report_backlog(self) -> None:
        """Keep the backlog gauges current, for operators' dashboards and the consumer-lag alert."""
        while True:
            try:
                info = await self._js.consumer_info(self._stream, self._durable)
                BACKLOG.labels(self._durable, "pending").set(info.num_pending or 0)
                BACKLOG.labels(self._durable, "unacknowledged").set(info.num_ack_pending or 0)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a missed sample is not worth more than a debug line
                log.debug("consumer info unavailable", durable=self._durable, error=str(error) or repr(error))
            await asyncio.sleep(_BACKLOG_EVERY_SECONDS)

    async def deliver_batch(self, messages: list[Msg]) -> None:
        """Handle a whole fetch at once and ack each message; if that fails, handle them one by one."""
        assert self._handle_batch is not None
        try:
            with consumer_span(f"{self._durable} process", messages[0].subject, [m.headers for m in messages]):
                await self._handle_batch(messages)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - each message gets its own chance below
            log.info("batch failed, handling its messages one by one", durable=self._durable,
                     messages=len(messages), error=repr(error))
            for msg in messages:
                await self.deliver(msg)
            return
        MESSAGES.labels(self._durable, "handled").inc(len(messages))
        for msg in messages:
            await _settle(msg.ack())

    async def deliver(self, msg: Msg) -> None:
        """Handle one message and settle it with JetStream."""
        delivered = msg.metadata.num_delivered or 1
        sequence = msg.metadata.sequence.stream if msg.metadata.sequence else 0
        try:
            # A span per message, continuing the trace of whoever published it (traceparent in its headers).
            with consumer_span(f"{self._durable} process", msg.subject, [msg.headers]) as span:
                span.set_attribute("messaging.message.delivery_count", delivered)
                await self._handle(msg)
        except asyncio.CancelledError:
            raise
        except PoisonMessage as poison:
            MESSAGES.labels(self._durable, "poison").inc()
            log.error("message can never be handled, terminated", durable=self._durable, subject=msg.subject,
                      stream_sequence=sequence, reason=str(poison))
            await _settle(msg.term())
            return
        except Exception as error:  # noqa: BLE001 - retried; the last delivery is logged as an error
            if delivered >= self._max_deliver:
                MESSAGES.labels(self._durable, "gave_up").inc()
                log.error("message failed on every delivery, terminated", durable=self._durable,
                          subject=msg.subject, stream_sequence=sequence, deliveries=delivered, error=repr(error))
                await _settle(msg.term())
                return
            MESSAGES.labels(self._durable, "retry").inc()
            log.warning("handling failed, will retry", durable=self._durable, subject=msg.subject,
                        stream_sequence=sequence, deliveries=delivered, error=repr(error))
            await _settle(msg.nak(delay=min(0.5 * 2.0 ** (delivered - 1), _MAX_NAK_DELAY)))
            return
        MESSAGES.labels(self._durable, "handled").inc()
        await _settle(msg.ack())


async def _settle(acknowledgement: Awaitable[None]) -> None:
    """Best effort: a lost ack is a redelivery, which idempotent handlers make harmless."""
    try:
        await acknowledgement
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001
        log.warning("ack/nak failed; the message will be redelivered", error=str(error) or repr(error))
