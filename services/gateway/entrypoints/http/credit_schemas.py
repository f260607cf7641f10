"""The REST shapes of prepaid credit: grants, top-ups, balances and the credit ledger (what invoices consumed,
what refunds of top-ups took back).

Amounts are integer minor units of the organisation's invoicing currency (``amount_minor``: paise, cents, yen,
fils), each with its text form. Validation is invoicing's: INVALID_ARGUMENT naming the field answers 400."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.gateway.entrypoints.http import invoice_schemas as ins
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

INT64_MAX = 2**63 - 1
SOURCES = EnumNames.of(invoicing_pb2.CreditGrantSource, "CREDIT_GRANT_SOURCE_")
STATUSES = EnumNames.of(invoicing_pb2.CreditGrantStatus, "CREDIT_GRANT_STATUS_")
LEDGER_KINDS = EnumNames.of(invoicing_pb2.CreditLedgerKind, "CREDIT_LEDGER_KIND_")


class CreditGrantCreate(Request):
    amount_minor: int = Field(ge=1, le=INT64_MAX, description="Minor units of currency", examples=[50000])
    currency: str = Field(description="The organisation's invoicing currency", examples=["INR"])
    priority: int = Field(0, ge=0, le=1000, description="Lower is spent first", examples=[0])
    expires_at: datetime | None = Field(None, description="Never spent from this instant on; unset: never expires")
    source: Literal["granted", "credit_note"] = Field("granted", description="granted by an operator, or the "
                                                      "credit left by a credit note (source_id names it)")
    source_id: str = Field("", max_length=128, examples=[""])
    description: str = Field("", max_length=200, examples=["Welcome credit"])

    def to_pb(self, organisation_id: str, idempotency_key: str) -> invoicing_pb2.GrantCreditRequest:
        message = invoicing_pb2.GrantCreditRequest(
            organisation_id=organisation_id, amount_minor=self.amount_minor, currency=self.currency,
            priority=self.priority, source=SOURCES.number(self.source), source_id=self.source_id,
            description=self.description, idempotency_key=idempotency_key,
        )
        if self.expires_at is not None:
            message.expire_time.CopyFrom(to_timestamp(self.expires_at))
        return message


class CreditTopUpCreate(Request):
    amount_minor: int = Field(ge=1, le=INT64_MAX, description="Credit to buy, in minor units", examples=[250000])
    currency: str = Field(examples=["INR"])
    priority: int = Field(0, ge=0, le=1000)
    expires_at: datetime | None = None

    def to_pb(self, organisation_id: str, idempotency_key: str) -> invoicing_pb2.TopUpCreditRequest:
        message = invoicing_pb2.TopUpCreditRequest(
            organisation_id=organisation_id, amount_minor=self.amount_minor, currency=self.currency,
            priority=self.priority, idempotency_key=idempotency_key,
        )
        if self.expires_at is not None:
            message.expire_time.CopyFrom(to_timestamp(self.expires_at))
        return message


class CreditGrantVoid(Request):
    reason: str = Field(min_length=1, max_length=500, examples=["granted by mistake"])


class CreditGrant(BaseModel):
    id: str
    organisation_id: str
    currency: str
    amount_minor: int
    amount: str | None
    priority: int
    source: Literal["granted", "purchased", "credit_note", "invoice"] | None
    source_id: str
    status: Literal["pending", "available", "voided"] | None
    expires_at: datetime | None
    expired: bool
    description: str
    consumed_minor: int
    clawed_back_minor: int = Field(0, description="Taken back by refunds of its top-up's payment")
    remaining_minor: int = Field(description="amount_minor less consumed_minor less clawed_back_minor")
    remaining: str | None
    created_at: datetime | None
    voided_at: datetime | None
    purchase_invoice_id: str = ""

    @classmethod
    def from_pb(cls, m: invoicing_pb2.CreditGrant) -> CreditGrant:
        return cls(
            id=m.id, organisation_id=m.organisation_id, currency=m.currency, amount_minor=m.amount_minor,
            amount=minor_to_text(m.amount_minor, m.currency), priority=m.priority, source=SOURCES.name(m.source),
            source_id=m.source_id, status=STATUSES.name(m.status), expires_at=from_timestamp(m.expire_time),
            expired=m.expired, description=m.description, consumed_minor=m.consumed_minor,
            clawed_back_minor=m.clawed_back_minor,
            remaining_minor=m.remaining_minor, remaining=minor_to_text(m.remaining_minor, m.currency),
            created_at=from_timestamp(m.create_time), voided_at=from_timestamp(m.void_time),
            purchase_invoice_id=m.purchase_invoice_id,
        )


class CreditBalance(BaseModel):
    currency: str
    available_minor: int = Field(description="Spendable now")
    available: str | None
    pending_minor: int = Field(description="Top-ups not paid yet")


class CreditConsumption(BaseModel):
    kind: Literal["invoice", "clawback"] | None = Field(
        description="invoice: an invoice consumed credit; clawback: a refund of the top-up invoice (invoice_id) took "
        "its credit back (at most what was unspent)"
    )
    grant_id: str
    invoice_id: str
    refund_id: str = Field("", description="A claw-back's refund")
    amount_minor: int
    consumed_at: datetime | None
    released_at: datetime | None = Field(description="Set when the invoice was voided (a claw-back: the refund "
                                         "failed): the credit went back")


class CreditStatement(BaseModel):
    balances: list[CreditBalance]
    grants: list[CreditGrant]
    consumptions: list[CreditConsumption] = Field(description="Newest first, at most 200")

    @classmethod
    def from_pb(cls, m: invoicing_pb2.GetCreditBalanceResponse) -> CreditStatement:
        return cls(
            balances=[CreditBalance(currency=b.currency, available_minor=b.available_minor,
                                    available=minor_to_text(b.available_minor, b.currency),
                                    pending_minor=b.pending_minor) for b in m.balances],
            grants=[CreditGrant.from_pb(g) for g in m.grants],
            consumptions=[CreditConsumption(kind=LEDGER_KINDS.name(c.kind), grant_id=c.grant_id,
                                            invoice_id=c.invoice_id, refund_id=c.refund_id,
                                            amount_minor=c.amount_minor, consumed_at=from_timestamp(c.consume_time),
                                            released_at=from_timestamp(c.release_time)) for c in m.consumptions],
        )


class CreditTopUp(BaseModel):
    grant: CreditGrant
    invoice: ins.Invoice = Field(description="The credit purchase invoice, issued: pay it as any invoice")
