"""The REST shapes of settlement, invoicing's side of collection: an invoice's status history, the payments events
recorded against it, and the review list of what settlement could not apply on its own.

Amounts are exact integers of the currency's minor units with the same amount as decimal text beside them
(``amount_minor``: ``117882``, ``amount``: ``"1178.82"``), as everywhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.invoice_schemas import INVOICE_STATUSES, InvoiceStatusName
from services.gateway.entrypoints.http.money_text import amount_fields
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

SETTLEMENT_KINDS = EnumNames.of(invoicing_pb2.SettlementKind, "SETTLEMENT_KIND_")
REVIEW_ITEM_KINDS = EnumNames.of(invoicing_pb2.ReviewItemKind, "REVIEW_ITEM_KIND_")
REVIEW_ITEM_STATES = EnumNames.of(invoicing_pb2.ReviewItemState, "REVIEW_ITEM_STATE_")

SettlementKindName = Literal["payment_captured", "refund_processed", "refund_failed", "overdue", "uncollectible"]
ReviewItemKindName = Literal["unknown_invoice", "void_invoice", "currency_mismatch", "over_payment", "over_refund",
                             "unprocessable_event", "refunded_credit_spent"]
ReviewItemStateName = Literal["open", "resolved"]


class InvoiceStatusChange(BaseModel):
    invoice_id: str
    from_status: InvoiceStatusName | None = Field(description="null for the first status (issued)")
    to_status: InvoiceStatusName | None
    changed_at: datetime | None
    reason: str = Field(examples=["payment pmt_1 captured: 1824.16 INR (razorpay)"])
    cause: str = Field(description='What caused it: a payments event id, "invoice run run_…", "reissue" or '
                                   '"VoidInvoice"')

    @classmethod
    def from_pb(cls, message: invoicing_pb2.InvoiceStatusChange) -> InvoiceStatusChange:
        return cls(invoice_id=message.invoice_id, from_status=INVOICE_STATUSES.name(message.from_status),
                   to_status=INVOICE_STATUSES.name(message.to_status), changed_at=from_timestamp(message.change_time),
                   reason=message.reason, cause=message.cause)


class Settlement(BaseModel):
    """One payments event recorded against an invoice."""

    event_id: str = Field(description="The payments event id")
    invoice_id: str
    kind: SettlementKindName | None
    payment_id: str
    refund_id: str
    provider: str = Field(description="razorpay, offline or none; empty for overdue and uncollectible notices")
    currency: str
    amount_minor: int = Field(examples=[117882])
    amount: str | None = Field(examples=["1178.82"])
    occurred_at: datetime | None = Field(description="When it happened at the provider")
    recorded_at: datetime | None = Field(description="When invoicing recorded it")
    applied: bool = Field(description="False when it did not count towards the invoice's amounts (void invoice, "
                                      "currency mismatch, a refund that later failed): the review list says why")

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Settlement) -> Settlement:
        return cls(event_id=message.event_id, invoice_id=message.invoice_id, kind=SETTLEMENT_KINDS.name(message.kind),
                   payment_id=message.payment_id, refund_id=message.refund_id, provider=message.provider,
                   currency=message.currency, **amount_fields(message.amount_minor, message.currency),
                   occurred_at=from_timestamp(message.occur_time), recorded_at=from_timestamp(message.record_time),
                   applied=message.applied)


class ReviewItem(BaseModel):
    """A payment or refund that did not fit its invoice, for an operator to look at."""

    id: str
    invoice_id: str = Field(description="Empty when the invoice is unknown")
    organisation_id: str = Field(description="As the event gave it")
    kind: ReviewItemKindName | None = Field(description="over_payment and over_refund were applied and "
                                                        "`amount` is the excess; refunded_credit_spent was applied "
                                                        "and `amount` is the top-up's credit already spent, which "
                                                        "could not be taken back; the others were not applied")
    detail: str = Field(examples=["currency mismatch: paid USD, invoice INR"])
    event_id: str = Field(description="The payments event (or, for an unreadable message, its stream and "
                                      "sequence)")
    currency: str
    amount_minor: int = Field(examples=[10000])
    amount: str | None = Field(examples=["100.00"])
    state: ReviewItemStateName | None
    created_at: datetime | None
    resolved_at: datetime | None
    resolution: str
    resolved_by: str = Field(description='Who resolved it; "settlement" when a later event made it moot')

    @classmethod
    def from_pb(cls, message: invoicing_pb2.ReviewItem) -> ReviewItem:
        return cls(id=message.id, invoice_id=message.invoice_id, organisation_id=message.organisation_id,
                   kind=REVIEW_ITEM_KINDS.name(message.kind), detail=message.detail, event_id=message.event_id,
                   currency=message.currency, **amount_fields(message.amount_minor, message.currency),
                   state=REVIEW_ITEM_STATES.name(message.state), created_at=from_timestamp(message.create_time),
                   resolved_at=from_timestamp(message.resolve_time), resolution=message.resolution,
                   resolved_by=message.resolved_by)


class ReviewItemResolve(Request):
    resolution: str = Field(description="What was done about it; required", examples=["Refunded the excess as rfd_123"])
