"""Protobuf <-> domain for settlement: payments' events in, status history, settlements and review items out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.payments.v1 import events_pb2 as payments
from billing_runtime.timestamps import from_timestamp
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.settlement import (
    PaymentsEvent,
    RecordedSettlement,
    ReviewItem,
    Settlement,
    SettlementKind,
    StatusChange,
)

_PREFIX = "billing.payments.v1."
PAYMENT_CAPTURED = _PREFIX + "payment.captured"
PAYMENT_FAILED = _PREFIX + "payment.failed"
REFUND_CREATED = _PREFIX + "refund.created"
REFUND_PROCESSED = _PREFIX + "refund.processed"
REFUND_FAILED = _PREFIX + "refund.failed"
PAYMENT_RETRY_SCHEDULED = _PREFIX + "payment.retry_scheduled"
INVOICE_OVERDUE = _PREFIX + "invoice.overdue"
INVOICE_UNCOLLECTIBLE = _PREFIX + "invoice.uncollectible"

# What settlement consumes. A failed attempt leaves the invoice payable (dunning decides what follows), a refund
# only counts once processed, and a retry changes nothing owed: those subjects are not consumed at all.
SETTLEMENT_SUBJECTS = (
    PAYMENT_CAPTURED, REFUND_PROCESSED, REFUND_FAILED, INVOICE_OVERDUE, INVOICE_UNCOLLECTIBLE,
)

_PROVIDERS = {
    payments.PROVIDER_RAZORPAY: "razorpay",
    payments.PROVIDER_STRIPE: "stripe",
    payments.PROVIDER_OFFLINE: "offline",
    payments.PROVIDER_NONE: "none",
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class UnprocessableEvent(Exception):
    """A message settlement can never apply: unreadable, or missing what it must carry. ``event_id`` is its own
    when it could be read."""

    def __init__(self, reason: str, event_id: str = "", organisation_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.organisation_id = organisation_id


@dataclass(frozen=True)
class _Shape:
    message: type[Message]
    kind: SettlementKind
    time_field: str
    amount_field: str | None


_SHAPES = {
    PAYMENT_CAPTURED: _Shape(payments.PaymentCaptured, SettlementKind.PAYMENT_CAPTURED, "capture_time", "amount_minor"),
    REFUND_PROCESSED: _Shape(payments.RefundProcessed, SettlementKind.REFUND_PROCESSED, "process_time", "amount_minor"),
    REFUND_FAILED: _Shape(payments.RefundFailed, SettlementKind.REFUND_FAILED, "failure_time", "amount_minor"),
    INVOICE_OVERDUE: _Shape(payments.InvoiceOverdue, SettlementKind.OVERDUE, "overdue_time", None),
    INVOICE_UNCOLLECTIBLE: _Shape(payments.InvoiceUncollectible, SettlementKind.UNCOLLECTIBLE, "uncollectible_time",
                                  None),
}


def decode_payments_event(subject: str, data: bytes) -> PaymentsEvent | None:
    """The settlement a payments message carries; None for a subject settlement does not act on. Raises
    UnprocessableEvent for a message that can never be applied."""
    shape = _SHAPES.get(subject)
    if shape is None:
        return None
    try:
        message = shape.message.FromString(data)
    except DecodeError as error:
        raise UnprocessableEvent(f"{subject}: not a {shape.message.DESCRIPTOR.name}: {error}") from None
    event_id = message.event_id
    organisation_id = message.organisation_id

    def invalid(reason: str) -> UnprocessableEvent:
        return UnprocessableEvent(f"{subject} {event_id or '(no event id)'}: {reason}", event_id, organisation_id)

    if not event_id:
        raise invalid("event_id is empty")
    if not message.invoice_id:
        raise invalid("invoice_id is empty")
    occurred_at = from_timestamp(getattr(message, shape.time_field))
    if occurred_at is None:
        raise invalid(f"{shape.time_field} is not set")
    amount = getattr(message, shape.amount_field) if shape.amount_field else 0
    currency = message.currency if shape.amount_field else ""
    if amount < 0:
        raise invalid(f"amount_minor is {amount}; never negative")
    if shape.amount_field and not _CURRENCY.fullmatch(currency):
        raise invalid(f"currency {currency!r} is not an ISO 4217 code")
    provider = ""
    if shape.kind is SettlementKind.PAYMENT_CAPTURED:
        provider = _PROVIDERS.get(message.provider, "")
        if not provider:
            raise invalid(f"provider {message.provider} is not one settlement knows")
    settlement = Settlement(
        event_id=event_id,
        kind=shape.kind,
        occurred_at=occurred_at,
        amount_minor=amount,
        currency=currency,
        payment_id=getattr(message, "payment_id", ""),
        refund_id=getattr(message, "refund_id", ""),
        provider=provider,
    )
    return PaymentsEvent(message.invoice_id, organisation_id, settlement)


def _status(status: InvoiceStatus) -> int:
    return pb.InvoiceStatus.Value(f"INVOICE_STATUS_{status.value.upper()}")


def status_change_to_pb(change: StatusChange) -> pb.InvoiceStatusChange:
    return pb.InvoiceStatusChange(
        invoice_id=change.invoice_id,
        from_status=_status(change.from_status),
        to_status=_status(change.to_status),
        change_time=timestamp(change.changed_at),
        reason=change.reason,
        cause=change.cause,
    )


def settlement_to_pb(recorded: RecordedSettlement) -> pb.Settlement:
    settlement = recorded.settlement
    return pb.Settlement(
        event_id=settlement.event_id,
        invoice_id=recorded.invoice_id,
        kind=pb.SettlementKind.Value(f"SETTLEMENT_KIND_{settlement.kind.value.upper()}"),
        payment_id=settlement.payment_id,
        refund_id=settlement.refund_id,
        provider=settlement.provider,
        amount_minor=settlement.amount_minor,
        currency=settlement.currency,
        occur_time=timestamp(settlement.occurred_at),
        record_time=timestamp(recorded.recorded_at),
        applied=recorded.applied,
    )


def review_item_to_pb(item: ReviewItem) -> pb.ReviewItem:
    message = pb.ReviewItem(
        id=item.id,
        invoice_id=item.invoice_id,
        organisation_id=item.organisation_id,
        kind=pb.ReviewItemKind.Value(f"REVIEW_ITEM_KIND_{item.kind.value.upper()}"),
        detail=item.detail,
        event_id=item.event_id,
        amount_minor=item.amount_minor,
        currency=item.currency,
        state=pb.REVIEW_ITEM_STATE_OPEN if item.is_open else pb.REVIEW_ITEM_STATE_RESOLVED,
        create_time=timestamp(item.created_at),
        resolution=item.resolution,
        resolved_by=item.resolved_by,
    )
    if item.resolved_at is not None:
        message.resolve_time.CopyFrom(timestamp(item.resolved_at))
    return message

