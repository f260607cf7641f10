"""The JetStream consumers of payments: invoicing's invoice events, and the webhooks the gateway verified.

Each message is handled in its own unit of work and acknowledged after it committed; every handler is
idempotent (invoices by id, webhooks by provider event id), so redeliveries change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from billing.gateway.v1 import events_pb2 as gateway_events
from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing_runtime.consumer import DurableConsumer, PoisonMessage
from billing_runtime.messaging import stream_name
from billing_runtime.timestamps import from_timestamp
from services.payments.adapters import messages
from services.payments.domain.payment import Provider
from services.payments.service import autodebit, dunning, invoices, webhooks
from services.payments.service.ports import UnitFactory

MAX_WEBHOOK_BODY = 1024 * 1024
WEBHOOK_PROVIDERS = (Provider.RAZORPAY.value, Provider.STRIPE.value)


def _now() -> datetime:
    return datetime.now(UTC)


def invoice_events(
    js: JetStreamContext, uow: UnitFactory, durable: str, rules: dunning.DunningRules, wake: Callable[[], None],
    default_provider: Provider = Provider.RAZORPAY, debits: autodebit.AutoDebitRules | None = None,
) -> DurableConsumer:
    async def handle(msg: Msg) -> None:
        try:
            if msg.subject == messages.INVOICE_ISSUED:
                issued = invoicing_events.InvoiceIssued.FromString(msg.data)
                if not issued.invoice.id or not issued.invoice.currency:
                    raise PoisonMessage("invoice.issued without an invoice id or currency")
                if await invoices.register_issued(uow, messages.invoice_from_issued(issued), _now(), rules,
                                                  default_provider, debits):
                    wake()
            elif msg.subject == messages.INVOICE_VOIDED:
                voided = invoicing_events.InvoiceVoided.FromString(msg.data)
                await invoices.void(uow, voided.invoice.id, _now())
            elif msg.subject == messages.CREDIT_NOTE_ISSUED:
                issued_note = invoicing_events.CreditNoteIssued.FromString(msg.data)
                if not issued_note.invoice_id or not issued_note.credit_note_id:
                    raise PoisonMessage("credit_note.issued without an invoice id or a credit note id")
                if await invoices.credited(uow, messages.credit_note_from_issued(issued_note), _now(),
                                           rules.links) is invoices.CreditOutcome.COLLECTING_LESS:
                    wake()  # the remade order (and links) are made at the provider by the worker
        except DecodeError as error:
            raise PoisonMessage(f"not a {msg.subject} message: {error}") from None

    return DurableConsumer(js, stream=stream_name("invoicing"), durable=durable,
                           subjects=[messages.INVOICE_ISSUED, messages.INVOICE_VOIDED, messages.CREDIT_NOTE_ISSUED],
                           handle=handle)


def _received(msg: Msg) -> webhooks.ReceivedWebhook:
    try:
        received = gateway_events.WebhookReceived.FromString(msg.data)
    except DecodeError as error:
        raise PoisonMessage(f"not a WebhookReceived message: {error}") from None
    if received.provider not in WEBHOOK_PROVIDERS or not received.event_id or len(received.body) > MAX_WEBHOOK_BODY:
        raise PoisonMessage("a webhook that is not Razorpay's or Stripe's, has no event id, or is too large")
    return webhooks.ReceivedWebhook(received.provider, received.event_id[:200], received.event_type, received.body,
                                    from_timestamp(received.receive_time) or _now())


def webhook_events(js: JetStreamContext, uow: UnitFactory, durable: str, capture_after: timedelta) -> DurableConsumer:
    async def handle(msg: Msg) -> None:
        await webhooks.process(uow, _received(msg), _now(), capture_after)

    async def handle_batch(batch: list[Msg]) -> None:
        # A backlog (after an outage, or under load) is applied a fetch per transaction: one commit, and one
        # wake of the outbox relay, for up to a batch of deliveries.
        await webhooks.process_many(uow, [_received(msg) for msg in batch], _now(), capture_after)

    return DurableConsumer(js, stream=stream_name("gateway"), durable=durable, subjects=[messages.WEBHOOK_RECEIVED],
                           handle=handle, handle_batch=handle_batch)
