"""Reading what payments published, straight from its JetStream stream."""

from __future__ import annotations

from google.protobuf.message import DecodeError, Message
from nats.js.api import ConsumerConfig, DeliverPolicy

from billing.payments.v1 import events_pb2

SUBJECTS: dict[str, type[Message]] = {
    "billing.payments.v1.payment.captured": events_pb2.PaymentCaptured,
    "billing.payments.v1.payment.failed": events_pb2.PaymentFailed,
    "billing.payments.v1.refund.created": events_pb2.RefundCreated,
    "billing.payments.v1.refund.processed": events_pb2.RefundProcessed,
    "billing.payments.v1.refund.failed": events_pb2.RefundFailed,
    "billing.payments.v1.payment.retry_scheduled": events_pb2.PaymentRetryScheduled,
    "billing.payments.v1.invoice.overdue": events_pb2.InvoiceOverdue,
    "billing.payments.v1.invoice.uncollectible": events_pb2.InvoiceUncollectible,
}


async def payments_events(js, invoice_id: str) -> list[Message]:
    """Every event payments published about one invoice, in stream order (a throwaway consumer reads them)."""
    return (await all_payments_events(js)).get(invoice_id, [])


async def all_payments_events(js) -> dict[str, list[Message]]:
    """Every event payments published, by invoice id, in stream order."""
    info = await js.stream_info("BILLING_PAYMENTS")
    last = info.state.last_seq
    subscription = await js.pull_subscribe("billing.payments.v1.>", stream="BILLING_PAYMENTS",
                                           config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    found: dict[str, list[Message]] = {}
    seen = 0
    try:
        while seen < last:
            try:
                messages = await subscription.fetch(500, timeout=0.5)
            except TimeoutError:
                break
            for msg in messages:
                seen = msg.metadata.sequence.stream
                kind = SUBJECTS.get(msg.subject)
                if kind is None:
                    continue
                try:
                    message = kind.FromString(msg.data)
                except DecodeError:
                    continue  # another test's deliberately corrupt message (invoicing's poison-message tests)
                found.setdefault(message.invoice_id, []).append(message)
    finally:
        await subscription.unsubscribe()
    return found
