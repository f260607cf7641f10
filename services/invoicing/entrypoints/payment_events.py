"""The payments event consumer: payments' captures, refunds, overdue and uncollectible notices, applied to
invoices.

A durable pull consumer on BILLING_PAYMENTS (created by the payments service; this consumer waits for it
without holding up health), shared by every invoicing replica. One message is one transaction
(``Settlements.apply``), acknowledged only after it committed: a crash in between redelivers it, and the event id
recorded with the settlement makes the redelivery change nothing. Outcomes:
- applied, duplicate, or naming an unknown invoice (put on the review list): ack.
- the invoice is still a draft, or the database is unreachable: nak with a delay, for as long as it takes:
  money events are never given up because of an outage.
- unreadable or invalid (no event id, negative amount ...): a review item, then term.
- failing otherwise (a bug) ``max_failures`` times: a review item, then term; before that, nak with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.exc import DBAPIError

from billing_runtime.consumer import REDELIVERIES
from billing_runtime.database_errors import is_transient
from billing_runtime.logging import get_logger
from billing_runtime.messaging import stream_name
from billing_runtime.tracing import consumer_span
from services.invoicing.adapters.settlement_messages import (
    SETTLEMENT_SUBJECTS,
    UnprocessableEvent,
    decode_payments_event,
)
from services.invoicing.service.settlements import InvoiceNotIssuedYet, Settlements

log = get_logger(__name__)

STREAM = stream_name("payments")  # owned and created by payments
_MAX_NAK_DELAY = 60.0
_DRAFT_RETRY_SECONDS = 2.0

@dataclass(frozen=True)
class ConsumerSettings:
    durable: str
    ack_wait_seconds: float
    # Failures other than outages before a message is put on the review list and dropped from the stream.
    max_failures: int
    fetch_batch: int
    fetch_wait_seconds: float = 1.0


def consumer_config(settings: ConsumerSettings) -> ConsumerConfig:
    """Explicit acks after commit; no max_deliver, because this consumer decides itself when to give up (never
    during an outage)."""
    return ConsumerConfig(
        durable_name=settings.durable,
        name=settings.durable,
        filter_subjects=list(SETTLEMENT_SUBJECTS),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=-1,
        max_ack_pending=1000,
    )


class PaymentEventConsumer:
    """Start with ``spawn(consumer.run())``; it runs until cancelled."""

    def __init__(self, js: JetStreamContext, settlements: Settlements, settings: ConsumerSettings) -> None:
        self._js = js
        self._settlements = settlements
        self._settings = settings

    async def run(self) -> None:
        subscription = await self._subscribe_when_ready()
        log.info("payment event consumer started", stream=STREAM, durable=self._settings.durable)
        try:
            while True:
                try:
                    messages = await subscription.fetch(
                        self._settings.fetch_batch, timeout=self._settings.fetch_wait_seconds
                    )
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - NATS blips, or the consumer/stream was removed
                    log.warning("fetching payment events failed, subscribing again", error=str(error) or repr(error))
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                    subscription = await self._subscribe_when_ready()
                    continue
                for msg in messages:
                    if (msg.metadata.num_delivered or 1) > 1:
                        REDELIVERIES.labels(self._settings.durable).inc()
                    # Continues the trace of the payments transaction that recorded the event.
                    with consumer_span(f"{self._settings.durable} process", msg.subject, [msg.headers]):
                        await self.handle(msg)
        finally:
            # Otherwise draining the connection at shutdown waits for this subscription's pending pull.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _subscribe_when_ready(self) -> JetStreamContext.PullSubscription:
        """Create (or update) the durable consumer and bind to it, waiting while the stream does not exist yet
        (payments not started): a line now and then says so, without holding up health."""
        delay, waited = 0.5, 0.0
        # Services start in any order: a missing stream is expected at first, and worth a warning only later.
        next_warning = 30.0
        while True:
            try:
                await self._js.add_consumer(STREAM, config=consumer_config(self._settings))
                return await self._js.pull_subscribe_bind(durable=self._settings.durable, stream=STREAM)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - logged and retried
                if waited >= next_warning:
                    log.warning(
                        "payments stream not ready, waiting", stream=STREAM, error=str(error) or repr(error),
                        waited_seconds=round(waited),
                    )
                    next_warning = waited + 60.0
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)

    async def handle(self, msg: Msg) -> None:
        """Apply one message and settle it with JetStream (see the module docstring)."""
        delivered = msg.metadata.num_delivered or 1
        try:
            event = decode_payments_event(msg.subject, msg.data)
        except UnprocessableEvent as unprocessable:
            await self._reject(msg, unprocessable.event_id, unprocessable.organisation_id, unprocessable.reason)
            return
        if event is None:
            await _settle(msg.ack(), "ack")  # a subject settlement does not act on
            return
        try:
            outcome = await self._settlements.apply(event)
        except asyncio.CancelledError:
            raise
        except InvoiceNotIssuedYet:
            await _settle(msg.nak(delay=_DRAFT_RETRY_SECONDS), "nak")
            return
        except Exception as error:  # noqa: BLE001 - classified below
            delay = min(2.0 ** min(delivered, 6), _MAX_NAK_DELAY)
            if is_transient(error):
                log.warning("database unavailable, payment event will be retried", error=_describe(error),
                            event_id=event.settlement.event_id, retry_in=delay)
            elif delivered >= self._settings.max_failures:
                reason = f"failed on all {delivered} deliveries; last error: {_describe(error)}"
                await self._reject(msg, event.settlement.event_id, event.organisation_id, f"{msg.subject}: {reason}")
                return
            else:
                log.exception("applying a payment event failed, will retry", event_id=event.settlement.event_id)
            await _settle(msg.nak(delay=delay), "nak")
            return
        log.info("payment event applied", outcome=outcome.value, event_id=event.settlement.event_id,
                 invoice_id=event.invoice_id, kind=event.settlement.kind.value)
        await _settle(msg.ack(), "ack")

    async def _reject(self, msg: Msg, event_id: str, organisation_id: str, reason: str) -> None:
        """Put the message on the review list, then drop it from the stream; if the review item cannot be
        written, leave the message for redelivery instead (nothing is dropped unrecorded)."""
        event_id = event_id or (msg.headers or {}).get("Nats-Msg-Id") or (
            f"{msg.metadata.stream or STREAM}:{msg.metadata.sequence.stream}"
        )
        try:
            await self._settlements.record_unprocessable(event_id, organisation_id, reason)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - not recorded: keep the message
            log.warning("could not record an unprocessable payment event, will retry", error=_describe(error))
            await _settle(msg.nak(delay=_MAX_NAK_DELAY), "nak")
            return
        log.warning("payment event put on the review list and dropped", event_id=event_id, reason=reason,
                    stream_sequence=msg.metadata.sequence.stream)
        await _settle(msg.term(), "term")


async def _settle(acknowledgement, what: str) -> None:  # noqa: ANN001 - a nats ack coroutine
    """Acks are best effort: a lost ack means a redelivery, which the settlement's event id makes harmless."""
    try:
        await acknowledgement
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001
        log.warning(f"{what} failed; the message will be redelivered", error=str(error) or repr(error))


def _describe(error: BaseException) -> str:
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    return f"{type(error).__name__}: {error}"
