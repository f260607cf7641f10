"""The REST shapes of credit notes: adjustments of an issued invoice (docs/credit-notes.md).

Amounts are exact integers of the currency's minor units (``total_minor``) with the same amount as a decimal string
next to each (``total``). Validation is invoicing's: INVALID_ARGUMENT naming the field becomes 400, more than is
left to credit or an invoice that cannot be credited 422.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.catalog_schemas import INT32_MAX, INT64_MAX
from services.gateway.entrypoints.http.decimal_json import DecimalText
from services.gateway.entrypoints.http.invoice_schemas import TAX_REGIMES, Party, TaxLine
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

ReasonCode = Literal["billing_error", "service_issue", "goodwill", "cancellation", "duplicate", "other"]
OutcomeName = Literal["refund", "credit"]
REASONS = EnumNames.of(invoicing_pb2.CreditNoteReason, "CREDIT_NOTE_REASON_")
OUTCOMES = EnumNames.of(invoicing_pb2.CreditNoteOutcome, "CREDIT_NOTE_OUTCOME_")
REFUND_STATES = EnumNames.of(invoicing_pb2.CreditNoteRefundState, "CREDIT_NOTE_REFUND_STATE_")


class CreditNoteLineRequest(Request):
    line_number: int = Field(ge=1, le=INT32_MAX, description="The invoice line's number", examples=[1])
    amount_minor: int | None = Field(None, ge=1, le=INT64_MAX, description="Minor units off the line; or give "
                                                                          "quantity", examples=[250000])
    quantity: DecimalText | None = Field(None, description="Units off the line, priced at its unit price",
                                         examples=[None])


class CreditNoteCreate(Request):
    whole: bool = Field(False, description="Credit everything still creditable on the invoice (lines then empty)")
    lines: list[CreditNoteLineRequest] = Field([], max_length=1000,
                                               description="A partial credit: an amount or a quantity off each line")
    reason_code: ReasonCode = Field(examples=["service_issue"])
    reason: str = Field(max_length=500, description="Why, in words; printed on the credit note",
                        examples=["Outage on 12 Oct: a quarter of the month's base fee back"])
    outcome: OutcomeName = Field(description="What was already paid: refunded through the provider, or left as "
                                             "credit for the customer", examples=["refund"])

    def to_pb(self, invoice_id: str, idempotency_key: str) -> invoicing_pb2.CreateCreditNoteRequest:
        return invoicing_pb2.CreateCreditNoteRequest(
            invoice_id=invoice_id, whole=self.whole,
            lines=[invoicing_pb2.CreditNoteLineRequest(line_number=x.line_number, amount_minor=x.amount_minor or 0,
                                                       quantity=str(x.quantity) if x.quantity is not None else "")
                   for x in self.lines],
            reason_code=REASONS.number(self.reason_code), reason=self.reason,
            outcome=OUTCOMES.number(self.outcome), idempotency_key=idempotency_key,
        )


class CreditNoteLine(BaseModel):
    invoice_line_number: int
    description: str
    quantity: str = Field(description='"0" when credited by amount')
    unit_price: str
    amount_minor: int = Field(examples=[250000])
    amount: str | None = Field(examples=["2500.00"])
    gst_rate: str = Field(examples=["18"])
    sac_code: str


class CreditNote(BaseModel):
    id: str
    invoice_id: str
    organisation_id: str
    number: str = Field(description="Its own series per financial year", examples=["CN/2627/00001"])
    currency: str = Field(examples=["INR"])
    issue_date: date | None
    reason_code: ReasonCode | None
    reason: str
    outcome: OutcomeName | None
    whole: bool = Field(description="It credited everything left on the invoice")
    lines: list[CreditNoteLine]
    tax_lines: list[TaxLine] = Field(description="The invoice's GST reversed: the same kinds and rates")
    subtotal_minor: int = Field(examples=[250000])
    subtotal: str | None = Field(examples=["2500.00"])
    tax_minor: int = Field(examples=[45000])
    tax: str | None = Field(examples=["450.00"])
    total_minor: int = Field(examples=[295000])
    total: str | None = Field(examples=["2950.00"])
    invoice_number: str = Field(examples=["INV/2627/00001"])
    invoice_issue_date: date | None
    tax_regime: Literal["intra_state", "inter_state", "export"] | None
    place_of_supply: str
    supplier: Party | None
    customer: Party | None
    applied_to_due_minor: int = Field(description="Taken off what the invoice still owed")
    refund_minor: int = Field(description="Refunded through payments (outcome refund)")
    credit_minor: int = Field(description="Left with the customer as credit (outcome credit)")
    refund_state: Literal["not_needed", "pending", "requested", "failed"] | None = Field(
        description="pending: payments has not taken the refund yet (retry the create with the same "
                    "Idempotency-Key); failed: see refund_error")
    refund_ids: list[str]
    refund_error: str
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.CreditNote) -> CreditNote:
        currency = message.currency
        return cls(
            id=message.id, invoice_id=message.invoice_id, organisation_id=message.organisation_id,
            number=message.number, currency=currency,
            issue_date=date.fromisoformat(message.issue_date) if message.issue_date else None,
            reason_code=REASONS.name(message.reason_code), reason=message.reason,
            outcome=OUTCOMES.name(message.outcome), whole=message.whole,
            lines=[
                CreditNoteLine(invoice_line_number=x.invoice_line_number, description=x.description,
                               quantity=x.quantity, unit_price=x.unit_price, amount_minor=x.amount_minor,
                               amount=minor_to_text(x.amount_minor, currency), gst_rate=x.gst_rate,
                               sac_code=x.sac_code)
                for x in message.lines
            ],
            tax_lines=[TaxLine.from_pb(t, currency) for t in message.tax_lines],
            subtotal_minor=message.subtotal_minor, subtotal=minor_to_text(message.subtotal_minor, currency),
            tax_minor=message.tax_minor, tax=minor_to_text(message.tax_minor, currency),
            total_minor=message.total_minor, total=minor_to_text(message.total_minor, currency),
            invoice_number=message.invoice_number,
            invoice_issue_date=date.fromisoformat(message.invoice_issue_date) if message.invoice_issue_date else None,
            tax_regime=TAX_REGIMES.name(message.tax_regime), place_of_supply=message.place_of_supply,
            supplier=Party.from_pb(message.supplier) if message.HasField("supplier") else None,
            customer=Party.from_pb(message.customer) if message.HasField("customer") else None,
            applied_to_due_minor=message.applied_to_due_minor, refund_minor=message.refund_minor,
            credit_minor=message.credit_minor, refund_state=REFUND_STATES.name(message.refund_state),
            refund_ids=list(message.refund_ids), refund_error=message.refund_error,
            created_at=from_timestamp(message.create_time),
        )
