"""Recurring mandates (Razorpay tokens) and the debits of invoices on them: for operators (admin, under
/api/v1/admin), and for the organisation's own people (``/api/v1``: its mandate only; an owner, signed in, sets one
up, pauses and cancels it). Payments owns both; these routes translate, fill the customer from the organisation's
billing details, and audit every change. See docs/payments.md ("Recurring auto-debit")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, model_validator

from billing.invoicing.v1 import invoicing_pb2
from billing.payments.v1 import payments_pb2
from billing_runtime import clients
from billing_runtime.errors import NotFound
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.account import a_person
from services.gateway.entrypoints.http.admin import audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope, Scope
from services.gateway.entrypoints.http.invoices import invoicing_of
from services.gateway.entrypoints.http.money_text import amount_fields, text_to_minor
from services.gateway.entrypoints.http.payments import payments_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 409, 422, 503)}

router = APIRouter(prefix="/api/v1/admin", tags=["payments"], dependencies=[Depends(require_admin)],
                   responses=_ERRORS)
customer_router = APIRouter(prefix="/api/v1", tags=["your account"],
                            responses={code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 422, 503)})

MethodName = Literal["card", "upi", "emandate"]
_METHODS = {"card": payments_pb2.MANDATE_METHOD_CARD, "upi": payments_pb2.MANDATE_METHOD_UPI,
            "emandate": payments_pb2.MANDATE_METHOD_EMANDATE}
_METHOD_NAMES = {number: name for name, number in _METHODS.items()}


def _state(number: int, enum) -> str:  # noqa: ANN001 - a protobuf enum wrapper
    return enum.Name(number).split("_STATE_", 1)[-1].lower()


def _time(message, field: str) -> datetime | None:  # noqa: ANN001 - a protobuf message
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


class MyMandateCreate(schemas.Request):
    """A mandate for the caller's own organisation: the customer at Razorpay is the organisation (its name and
    billing email)."""

    method: MethodName = Field(examples=["upi"], description="card, upi (UPI AutoPay) or emandate (eNACH)")
    max_amount: str | None = Field(None, examples=["15000.00"],
                                   description="The most one debit may take, in rupees (decimal text)")
    max_amount_minor: int | None = Field(None, examples=[1500000], description="The same in paise")
    customer_contact: str = Field("", max_length=15, examples=["+919000090000"])
    expire_at: datetime | None = Field(None, description="Default: five years from now")
    idempotency_key: str = Field("", max_length=100)

    @model_validator(mode="after")
    def _one_amount(self) -> MyMandateCreate:
        if self.max_amount is None and self.max_amount_minor is None:
            raise ValueError("send max_amount (decimal text) or max_amount_minor (paise)")
        if self.max_amount is not None:
            minor = text_to_minor(self.max_amount, "INR")
            if self.max_amount_minor is not None and self.max_amount_minor != minor:
                raise ValueError("max_amount and max_amount_minor disagree")
            self.max_amount_minor = minor
        return self


class MandateCreate(MyMandateCreate):
    customer_name: str | None = Field(None, max_length=50, description="Default: the organisation's name")
    customer_email: str | None = Field(None, max_length=64, description="Default: its billing email")


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
    checkout_url: str = Field(description="A hosted page where the customer authorises it (Razorpay Checkout, "
                                          "recurring \"1\"), where payments has one (demo mode); empty with real "
                                          "Razorpay: open Standard Checkout (Checkout.js) with key_id, "
                                          "authorisation_order_id, customer_id and recurring \"1\"")
    reason: str
    created_at: datetime | None
    key_id: str = Field(description="Razorpay's key id Checkout authorises it with (public, never the secret)")
    authorisation_amount_minor: int = Field(description="What the authorisation order takes, as Razorpay made it: "
                                                        "0 for eNACH, 100 (INR 1.00) for cards and UPI")
    authorisation_amount: str | None
    authorisation_currency: str = Field(examples=["INR"])

    @classmethod
    def from_pb(cls, message: payments_pb2.Mandate) -> Mandate:
        return cls(
            id=message.id, organisation_id=message.organisation_id, method=_METHOD_NAMES.get(message.method),
            state=_state(message.state, payments_pb2.MandateState),
            **amount_fields(message.max_amount_minor, "INR", "max_amount"),
            expire_at=_time(message, "expire_time"), customer_id=message.customer_id,
            authorisation_order_id=message.authorisation_order_id, token_id=message.token_id,
            checkout_url=message.checkout_url, reason=message.reason, created_at=_time(message, "create_time"),
            key_id=message.key_id,
            **amount_fields(message.authorisation_amount_minor, message.authorisation_currency or "INR",
                            "authorisation_amount"),
            authorisation_currency=message.authorisation_currency)


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
    """Makes the Razorpay customer and the authorisation order; answers what the customer authorises the mandate
    with at Checkout (`key_id`, `customer_id`, `authorisation_order_id`; `checkout_url` where there is a hosted
    page). Its invoices issued once Razorpay confirms it are debited on it. 409 when the
    organisation already has a live mandate."""
    return await _create(request, organisation_id, body)


async def _create(request: Request, organisation_id: str, body: MyMandateCreate, actor: str | None = None) -> Mandate:
    organisation = (await clients.call(invoicing_of(request).GetOrganisation,
                                       invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
                    ).organisation
    assert body.max_amount_minor is not None
    name = body.customer_name if isinstance(body, MandateCreate) else None
    email = body.customer_email if isinstance(body, MandateCreate) else None
    message = payments_pb2.CreateMandateRequest(
        organisation_id=organisation_id, method=_METHODS[body.method], max_amount_minor=body.max_amount_minor,
        customer_name=(name or organisation.name)[:50], customer_email=(email or organisation.billing_email)[:64],
        customer_contact=body.customer_contact, idempotency_key=body.idempotency_key,
        expire_time=to_timestamp(body.expire_at) if body.expire_at else None)
    reply = await clients.call(payments_of(request).CreateMandate, message)
    if reply.created:
        await audit(request, "mandate.create", "mandate", reply.mandate.id, actor=actor)
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


class AutoDebitList(BaseModel):
    data: list[AutoDebit] = Field(description="The latest due first (at most 200)")


@router.get("/mandates/{mandate_id}/debits", response_model=AutoDebitList, summary="A mandate's debits")
async def list_debits(mandate_id: str, request: Request):
    """Each invoice debited (or to be debited) on the mandate, with its state, amount and times."""
    reply = await clients.call(payments_of(request).ListAutoDebits,
                               payments_pb2.ListAutoDebitsRequest(mandate_id=mandate_id))
    return AutoDebitList(data=[AutoDebit.from_pb(d) for d in reply.debits])


# --- the organisation's own mandate ----------------------------------------------------------------------------


async def own_mandate(request: Request, scope: Scope, mandate_id: str) -> payments_pb2.Mandate:
    """The mandate if it is the caller's organisation's; another organisation's is not found, exactly as a made-up
    one (payments checks it again on every change)."""
    reply = await clients.call(payments_of(request).ListMandates, payments_pb2.ListMandatesRequest(
        organisation_id=scope.organisation_id, include_finished=True))
    found = next((m for m in reply.mandates if m.id == mandate_id), None)
    if found is None:
        raise NotFound(f"mandate {mandate_id} not found", field="mandate_id")
    return found


@customer_router.get("/mandates", response_model=MandateList, summary="Your organisation's recurring mandates")
async def my_mandates(request: Request, scope: OrgScope,
                      include_finished: bool = Query(False, description="Also rejected and cancelled ones")):
    """Newest first: the live one (created, confirmed or paused; at most one) and, if asked, those that ended."""
    reply = await clients.call(payments_of(request).ListMandates, payments_pb2.ListMandatesRequest(
        organisation_id=scope.organisation_id, include_finished=include_finished))
    return MandateList(data=[Mandate.from_pb(m) for m in reply.mandates])


@customer_router.post("/mandates", response_model=Mandate, status_code=201,
                      summary="Set up auto-debit: a recurring mandate for your organisation")
async def my_create_mandate(body: MyMandateCreate, request: Request, scope: OrgScope):
    """As the admin's (`POST /api/v1/admin/organisations/{id}/mandates`) for the caller's organisation, its name
    and billing email as the customer: answers what the mandate is authorised with at Razorpay Checkout (`key_id`,
    `customer_id`, `authorisation_order_id` with its amount, `recurring: "1"`; a hosted `checkout_url` in demo
    mode); Razorpay's token.confirmed makes it `confirmed`, and invoices issued from then on are debited on it.
    409 while the organisation has a live mandate. An owner's, signed in; audited `mandate.create`."""
    a_person(scope, "set up auto-debit")
    return await _create(request, scope.organisation_id, body, actor=scope.actor)


@customer_router.post("/mandates/{mandate_id}/pause", response_model=Mandate,
                      summary="Pause your organisation's confirmed mandate")
async def my_pause_mandate(mandate_id: str, request: Request, scope: OrgScope):
    """Invoices are collected without it from then on (checkout, payment links, dunning). A paused mandate is not
    resumed: cancel it and set up another to debit again. 422 unless confirmed; 404 for another organisation's.
    An owner's, signed in; audited `mandate.pause`."""
    await own_mandate(request, scope, mandate_id)  # another organisation's: not found for anyone, as a made-up one
    a_person(scope, "pause auto-debit")
    reply = await clients.call(payments_of(request).PauseMandate, payments_pb2.PauseMandateRequest(
        mandate_id=mandate_id, organisation_id=scope.organisation_id))
    await audit(request, "mandate.pause", "mandate", mandate_id, actor=scope.actor)
    return Mandate.from_pb(reply.mandate)


@customer_router.post("/mandates/{mandate_id}/cancel", response_model=Mandate,
                      summary="Cancel your organisation's mandate for good")
async def my_cancel_mandate(mandate_id: str, request: Request, scope: OrgScope):
    """Razorpay cancels the token; no invoice is debited on it again (a new mandate can be set up). Cancelling a
    cancelled one returns it unchanged. 404 for another organisation's. An owner's, signed in; audited
    `mandate.cancel`."""
    await own_mandate(request, scope, mandate_id)
    a_person(scope, "cancel auto-debit")
    reply = await clients.call(payments_of(request).CancelMandate, payments_pb2.CancelMandateRequest(
        mandate_id=mandate_id, organisation_id=scope.organisation_id))
    await audit(request, "mandate.cancel", "mandate", mandate_id, actor=scope.actor)
    return Mandate.from_pb(reply.mandate)


@customer_router.get("/mandates/{mandate_id}/debits", response_model=AutoDebitList,
                     summary="The debits on your organisation's mandate")
async def my_mandate_debits(mandate_id: str, request: Request, scope: OrgScope):
    """As the admin's: each invoice debited (or to be) on it, the latest due first. 404 for another
    organisation's mandate."""
    reply = await clients.call(payments_of(request).ListAutoDebits, payments_pb2.ListAutoDebitsRequest(
        mandate_id=mandate_id, organisation_id=scope.organisation_id))
    return AutoDebitList(data=[AutoDebit.from_pb(d) for d in reply.debits])
