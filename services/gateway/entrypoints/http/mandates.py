"""Recurring mandates (Razorpay tokens) and the debits of invoices on them (admin, under /api/v1/admin).
Payments owns both; these routes translate, fill the customer from the organisation's billing details, and audit
every change. See docs/payments.md ("Recurring auto-debit")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, model_validator

from billing.invoicing.v1 import invoicing_pb2
from billing.payments.v1 import payments_pb2
from billing_runtime import clients
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import audit, require_admin
from services.gateway.entrypoints.http.invoices import invoicing_of
from services.gateway.entrypoints.http.money_text import amount_fields, text_to_minor
from services.gateway.entrypoints.http.payments import payments_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 409, 422, 503)}

router = APIRouter(prefix="/api/v1/admin", tags=["payments"], dependencies=[Depends(require_admin)],
                   responses=_ERRORS)

MethodName = Literal["card", "upi", "emandate"]
_METHODS = {"card": payments_pb2.MANDATE_METHOD_CARD, "upi": payments_pb2.MANDATE_METHOD_UPI,
            "emandate": payments_pb2.MANDATE_METHOD_EMANDATE}
_METHOD_NAMES = {number: name for name, number in _METHODS.items()}


def _state(number: int, enum) -> str:  # noqa: ANN001 - a protobuf enum wrapper
    return enum.Name(number).split("_STATE_", 1)[-1].lower()


def _time(message, field: str) -> datetime | None:  # noqa: ANN001 - a protobuf message
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


class MandateCreate(schemas.Request):
    method: MethodName = Field(examples=["upi"], description="card, upi (UPI AutoPay) or emandate (eNACH)")
    max_amount: str | None = Field(None, examples=["15000.00"],
                                   description="The most one debit may take, in rupees (decimal text)")
    max_amount_minor: int | None = Field(None, examples=[1500000], description="The same in paise")
    customer_name: str | None = Field(None, max_length=50, description="Default: the organisation's name")
    customer_email: str | None = Field(None, max_length=64, description="Default: its billing email")
    customer_contact: str = Field("", max_length=15, examples=["+919000090000"])
    expire_at: datetime | None = Field(None, description="Default: five years from now")
    idempotency_key: str = Field("", max_length=100)

    @model_validator(mode="after")
    def _one_amount(self) -> MandateCreate:
        if self.max_amount is None and self.max_amount_minor is None:
            raise ValueError("send max_amount (decimal text) or max_amount_minor (paise)")
        if self.max_amount is not None:
            minor = text_to_minor(self.max_amount, "INR")
            if self.max_amount_minor is not None and self.max_amount_minor != minor:
                raise ValueError("max_amount and max_amount_minor disagree")
            self.max_amount_minor = minor
        return self


class Mandate(BaseModel):
    id: str
    organisation_id: str
    method: MethodName | None
    state: str = Field(examples=["confirmed"], description="created, confirmed, rejected, paused or cancelled")
    max_amount_minor: int
    max_amount: str | None
    expire_at: datetime | None
    customer_id: str
    authorisation_order_id: str
    token_id: str
    checkout_url: str = Field(description="Where the customer authorises it (Razorpay Checkout, recurring \"1\")")
    reason: str
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: payments_pb2.Mandate) -> Mandate:
        return cls(
            id=message.id, organisation_id=message.organisation_id, method=_METHOD_NAMES.get(message.method),
            state=_state(message.state, payments_pb2.MandateState),
            **amount_fields(message.max_amount_minor, "INR", "max_amount"),
            expire_at=_time(message, "expire_time"), customer_id=message.customer_id,
            authorisation_order_id=message.authorisation_order_id, token_id=message.token_id,
            checkout_url=message.checkout_url, reason=message.reason, created_at=_time(message, "create_time"))


class MandateList(BaseModel):
    data: list[Mandate]


class AutoDebit(BaseModel):
    invoice_id: str
    mandate_id: str
    method: MethodName | None
    state: str = Field(examples=["requested"],
                       description="scheduled, ordered, requested, captured, failed, linked or skipped")
    currency: str
    amount_minor: int
    amount: str | None
    due_at: datetime | None
    debit_at: datetime | None = Field(description="When the debit starts (25 to 36 hours before it is due)")
    notified_at: datetime | None = Field(description="When Razorpay's pre-debit notice was delivered")
    provider_order_id: str
    provider_payment_id: str
    payment_link_url: str
    reason: str
    attempts: int

    @classmethod
    def from_pb(cls, message: payments_pb2.AutoDebit) -> AutoDebit:
        return cls(
            invoice_id=message.invoice_id, mandate_id=message.mandate_id, method=_METHOD_NAMES.get(message.method),
            state=_state(message.state, payments_pb2.DebitState), currency=message.currency,
            **amount_fields(message.amount_minor, message.currency or "INR"),
            due_at=_time(message, "due_time"), debit_at=_time(message, "debit_time"),
            notified_at=_time(message, "notify_time"), provider_order_id=message.provider_order_id,
            provider_payment_id=message.provider_payment_id, payment_link_url=message.payment_link_url,
            reason=message.reason, attempts=message.attempts)


@router.get("/organisations/{organisation_id}/mandates", response_model=MandateList,
            summary="An organisation's recurring mandates")
async def list_mandates(organisation_id: str, request: Request,
                        include_finished: bool = Query(False, description="Also rejected and cancelled ones")):
    await clients.call(invoicing_of(request).GetOrganisation,
                       invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
    reply = await clients.call(payments_of(request).ListMandates, payments_pb2.ListMandatesRequest(
        organisation_id=organisation_id, include_finished=include_finished))
    return MandateList(data=[Mandate.from_pb(m) for m in reply.mandates])


@router.post("/organisations/{organisation_id}/mandates", response_model=Mandate, status_code=201,
             summary="Start a recurring mandate for an organisation")
async def create_mandate(organisation_id: str, body: MandateCreate, request: Request):
    """Makes the Razorpay customer and the authorisation order; answers the Checkout link the customer
    authorises the mandate at. Its invoices issued once Razorpay confirms it are debited on it. 409 when the
    organisation already has a live mandate."""
    organisation = (await clients.call(invoicing_of(request).GetOrganisation,
                                       invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
                    ).organisation
    assert body.max_amount_minor is not None
    message = payments_pb2.CreateMandateRequest(
        organisation_id=organisation_id, method=_METHODS[body.method], max_amount_minor=body.max_amount_minor,
        customer_name=(body.customer_name or organisation.name)[:50],
        customer_email=(body.customer_email or organisation.billing_email)[:64],
        customer_contact=body.customer_contact, idempotency_key=body.idempotency_key,
        expire_time=to_timestamp(body.expire_at) if body.expire_at else None)
    reply = await clients.call(payments_of(request).CreateMandate, message)
    if reply.created:
        await audit(request, "mandate.create", "mandate", reply.mandate.id)
    return Mandate.from_pb(reply.mandate)


@router.post("/mandates/{mandate_id}/pause", response_model=Mandate, summary="Pause a confirmed mandate")
async def pause_mandate(mandate_id: str, request: Request):
    """Razorpay pauses the token; invoices are then collected without it (checkout, links, dunning)."""
    reply = await clients.call(payments_of(request).PauseMandate,
                               payments_pb2.PauseMandateRequest(mandate_id=mandate_id))
    await audit(request, "mandate.pause", "mandate", mandate_id)
    return Mandate.from_pb(reply.mandate)


@router.post("/mandates/{mandate_id}/cancel", response_model=Mandate, summary="Cancel a mandate for good")
async def cancel_mandate(mandate_id: str, request: Request):
    reply = await clients.call(payments_of(request).CancelMandate,
                               payments_pb2.CancelMandateRequest(mandate_id=mandate_id))
    await audit(request, "mandate.cancel", "mandate", mandate_id)
    return Mandate.from_pb(reply.mandate)


@router.get("/invoices/{invoice_id}/auto-debit", response_model=AutoDebit,
            summary="An invoice's debit on its organisation's mandate")
async def get_auto_debit(invoice_id: str, request: Request):
    reply = await clients.call(payments_of(request).GetAutoDebit,
                               payments_pb2.GetAutoDebitRequest(invoice_id=invoice_id))
    return AutoDebit.from_pb(reply.debit)
