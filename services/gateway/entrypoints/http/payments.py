"""Collecting invoices: the admin routes under /api/v1/admin (an invoice's payments, offline payments, refunds,
payment links, the webhook log), and Razorpay Checkout and payment links for the key holder's own invoices under
/api/v1. Dunning and reconciliation, payments' too, have modules of their own (:mod:`.dunning`,
:mod:`.reconciliation`).

Payments owns the money; these routes translate. Amounts go to payments as integer minor units: decimal text
from the client is converted here, exactly, with the currency's exponent (see :mod:`.payment_schemas`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from billing.payments.v1 import payments_pb2
from billing_runtime import clients
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http import payment_schemas as pys
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute
from services.gateway.entrypoints.http.invoices import own_invoice

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 409, 422, 503)}
# Making a payment link asks the provider (at most twice: a lookup by reference, then a create, each bounded by
# payments' provider timeout), so the lookup timeout of the other routes would give up before payments does.
PROVIDER_CALL_TIMEOUT_SECONDS = 30.0
_EXISTING_LINK = {200: {"model": pys.PaymentLink, "description": "The invoice's open link, made before"}}


def _replay_of(model: type) -> dict:
    return {200: {"model": model, "description": "Recorded before: the first result, with `Idempotent-Replayed: true`"}}


# Bodies are read with exact decimals, so not even a refused amount is ever a float in this process.
admin_router = APIRouter(prefix="/api/v1/admin", tags=["payments"], dependencies=[Depends(require_admin)],
                         route_class=DecimalJsonRoute, responses=_ERRORS)
router = APIRouter(prefix="/api/v1", tags=["payments (API key)"], route_class=DecimalJsonRoute,
                   responses={**_ERRORS, 403: {"model": schemas.Error}})



def payments_of(request: Request):
    """The payments service's stub (for this module, :mod:`.dunning` and :mod:`.reconciliation`)."""
    return request.app.state.clients.payments


def _replayed(response: Response, created: bool) -> None:
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"


async def _invoice_payments(request: Request, invoice_id: str) -> pys.InvoicePayments:
    reply = await clients.call(payments_of(request).GetInvoicePayments,
                               payments_pb2.GetInvoicePaymentsRequest(invoice_id=invoice_id))
    return pys.InvoicePayments.from_pb(invoice_id, reply)


async def _checkout(request: Request, invoice_id: str) -> pys.Checkout:
    reply = await clients.call(payments_of(request).GetCheckout, payments_pb2.GetCheckoutRequest(invoice_id=invoice_id))
    return pys.Checkout.from_pb(reply.checkout)


# --- an invoice's collection (admin) -------------------------------------------------------------------------


@admin_router.get("/invoices/{invoice_id}/payments", response_model=pys.InvoicePayments,
                  summary="How an invoice is being collected")
async def invoice_payments(invoice_id: str, request: Request):
    """The invoice's provider order (its status, why it is `not_needed` or `failed`, and the provider's error),
    its payments and refunds, payment links, what was captured, refunded and credited so far, and what is still
    being collected (`amount_due_minor`, credit notes counted). 404 until payments has seen the invoice issued."""
    return await _invoice_payments(request, invoice_id)


@admin_router.get("/invoices/{invoice_id}/checkout", response_model=pys.Checkout,
                  summary="What Razorpay Checkout needs to pay an invoice")
async def invoice_checkout(invoice_id: str, request: Request):
    """422 when the invoice cannot be paid online: settled, void, below the provider's minimum, online payments
    not configured, or its order is not created yet (retry shortly)."""
    return await _checkout(request, invoice_id)


@admin_router.post("/invoices/{invoice_id}/offline-payments", status_code=status.HTTP_201_CREATED,
                   response_model=pys.Payment, responses=_replay_of(pys.Payment),
                   summary="Record money received outside the provider")
async def record_offline_payment(invoice_id: str, body: pys.OfflinePaymentCreate, request: Request,
                                 response: Response):
    """A bank transfer, cheque or cash, recorded as a captured payment of the invoice (201). The amount is
    `amount_minor` or `amount` as decimal text in `currency` (more decimals than the currency has are refused).
    The same `reference` again for the invoice returns the payment recorded first (200,
    `Idempotent-Replayed: true`), so a retry never records the money twice."""
    amount_minor = pys.minor_amount(body.amount_minor, body.amount, body.currency)
    if amount_minor is None:
        raise InvalidArgument("is required (or amount, as decimal text)", field="amount_minor")
    message = payments_pb2.RecordOfflinePaymentRequest(
        invoice_id=invoice_id, amount_minor=amount_minor, currency=body.currency, method=body.method,
        reference=body.reference, note=body.note)
    if body.received_at is not None:
        message.receive_time.CopyFrom(to_timestamp(body.received_at))
    # Payments names its own fields; the client knows the ones it sent.
    names = {"receive_time": "received_at", **({"amount_minor": "amount"} if body.amount is not None else {})}
    reply = await field_paths.call(payments_of(request).RecordOfflinePayment, message, field_paths.renamed(names))
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "payment.record_offline", "payment", reply.payment.id, reason=body.note,
                    after={"invoice_id": invoice_id, "amount_minor": reply.payment.amount_minor,
                           "currency": reply.payment.currency, "reference": body.reference})
    return pys.Payment.from_pb(reply.payment)


async def _payment_link(request: Request, response: Response, invoice_id: str) -> tuple[pys.PaymentLink, bool]:
    reply = await clients.call(payments_of(request).CreatePaymentLink,
                               payments_pb2.CreatePaymentLinkRequest(invoice_id=invoice_id),
                               timeout=PROVIDER_CALL_TIMEOUT_SECONDS)
    if not reply.created:
        # Not a replay of a request (there is no key): the link made before is still open, so 200 without
        # Idempotent-Replayed.
        response.status_code = status.HTTP_200_OK
    return pys.PaymentLink.from_pb(reply.payment_link), reply.created


@admin_router.post("/invoices/{invoice_id}/payment-link", status_code=status.HTTP_201_CREATED,
                   response_model=pys.PaymentLink, responses=_EXISTING_LINK,
                   summary="A payment link for what an invoice has due")
async def create_payment_link(invoice_id: str, request: Request, response: Response):
    """A URL at the provider where the customer pays what the invoice has due, without a checkout page of your
    own (for an email or a chat). 201 with a new link, or 200 with the invoice's link still open for the same
    amount, so asking twice never makes two. 422 when the invoice has nothing to pay (settled or void) or online
    payments are not configured; 404 until payments has seen the invoice issued."""
    link, created = await _payment_link(request, response, invoice_id)
    if created:
        await audit(request, "payment_link.create", "payment_link", link.id)
    return link


# --- payments and refunds (admin) ----------------------------------------------------------------------------


@admin_router.get("/payments", response_model=schemas.Page[pys.Payment], summary="List payments")
async def list_payments(
    request: Request,
    organisation_id: Annotated[str, Query(description="Only this organisation's payments")] = "",
    invoice_id: Annotated[str, Query(description="Only this invoice's payments")] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Payments newest first, online and offline, in every status (failed attempts included)."""
    reply = await clients.call(payments_of(request).ListPayments, payments_pb2.ListPaymentsRequest(
        organisation_id=organisation_id, invoice_id=invoice_id, page_size=page_size, page_token=page_token))
    return schemas.Page[pys.Payment](data=[pys.Payment.from_pb(p) for p in reply.payments],
                                     next_page_token=reply.next_page_token)


@admin_router.get("/payments/{payment_id}", response_model=pys.PaymentWithRefunds, summary="Get a payment")
async def get_payment(payment_id: str, request: Request):
    """A payment with its refunds."""
    reply = await clients.call(payments_of(request).GetPayment, payments_pb2.GetPaymentRequest(payment_id=payment_id))
    return pys.PaymentWithRefunds.from_reply(reply)


@admin_router.post("/payments/{payment_id}/refunds", status_code=status.HTTP_201_CREATED, response_model=pys.Refund,
                   responses=_replay_of(pys.Refund), summary="Refund all or part of a captured payment")
async def create_refund(payment_id: str, body: pys.RefundCreate, request: Request, response: Response,
                        idempotency_key: IdempotencyKey = ""):
    """Refunds `amount_minor` (or `amount` as decimal text in the payment's currency); without either, everything
    not yet refunded. A payment's refunds never add up to more than was captured, however many requests arrive
    at once: 422 says how much is left. Send an `Idempotency-Key`: a retry with it returns the first refund (200,
    `Idempotent-Replayed: true`) and the provider is asked once; the same key with another body is 409.
    An offline payment's refund is recorded as processed: the operator pays the money back."""
    amount_minor = body.amount_minor
    names: dict[str, str] = {}
    if body.amount is not None:
        # The amount is in the payment's currency, which only payments knows.
        payment = await clients.call(payments_of(request).GetPayment,
                                     payments_pb2.GetPaymentRequest(payment_id=payment_id))
        amount_minor = pys.minor_amount(body.amount_minor, body.amount, payment.payment.currency)
        names["amount_minor"] = "amount"
    reply = await field_paths.call(
        payments_of(request).CreateRefund,
        payments_pb2.CreateRefundRequest(payment_id=payment_id, amount_minor=amount_minor or 0, reason=body.reason,
                                         idempotency_key=idempotency_key),
        field_paths.renamed(names),
    )
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "refund.create", "refund", reply.refund.id, reason=body.reason,
                    after={"payment_id": payment_id, "amount_minor": reply.refund.amount_minor,
                           "currency": reply.refund.currency})
    return pys.Refund.from_pb(reply.refund)


@admin_router.get("/refunds", response_model=schemas.Page[pys.Refund], summary="List refunds")
async def list_refunds(
    request: Request,
    payment_id: Annotated[str, Query(description="Only this payment's refunds")] = "",
    invoice_id: Annotated[str, Query(description="Only this invoice's refunds")] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Refunds newest first, with their status at the provider (`requested`, `pending`, `processed`,
    `failed`) and the provider's error when it refused one."""
    reply = await clients.call(payments_of(request).ListRefunds, payments_pb2.ListRefundsRequest(
        payment_id=payment_id, invoice_id=invoice_id, page_size=page_size, page_token=page_token))
    return schemas.Page[pys.Refund](data=[pys.Refund.from_pb(r) for r in reply.refunds],
                                    next_page_token=reply.next_page_token)


@admin_router.get("/webhook-events", response_model=schemas.Page[pys.WebhookEvent],
                  summary="The provider webhook log")
async def list_webhook_events(
    request: Request,
    event_type: Annotated[str, Query(description="Only this event type", examples=["payment.captured"])] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Razorpay's webhooks as payments processed them, newest first: one entry per provider event id (a
    redelivery is not a second entry), with what processing did (`applied`, `duplicate state`, `unmatched: no
    such order` ...)."""
    reply = await clients.call(payments_of(request).ListWebhookEvents, payments_pb2.ListWebhookEventsRequest(
        event_type=event_type, page_size=page_size, page_token=page_token))
    return schemas.Page[pys.WebhookEvent](data=[pys.WebhookEvent.from_pb(e) for e in reply.events],
                                          next_page_token=reply.next_page_token)


# --- the key holder's own invoices ---------------------------------------------------------------------------


@router.get("/invoices/{invoice_id}/checkout", response_model=pys.Checkout,
            summary="Pay one of your organisation's invoices with Razorpay Checkout")
async def my_invoice_checkout(invoice_id: str, request: Request, scope: OrgScope):
    """The options for Razorpay Checkout (`key_id` is its `key`, `order_id`, `amount_minor` is its `amount`,
    `currency`, `name`, `description`, `prefill`), and `checkout_url`, a hosted page paying the same order.
    404 for another organisation's invoice, as for one that does not exist; 422 when it cannot be paid online."""
    await own_invoice(request, scope, invoice_id)
    return await _checkout(request, invoice_id)


@router.post("/invoices/{invoice_id}/checkout/verify", response_model=pys.Payment,
             summary="Hand on what Razorpay Checkout's handler received")
async def my_invoice_checkout_verify(invoice_id: str, body: pys.CheckoutVerify, request: Request,
                                     scope: OrgScope):
    """Checks the signature (400 naming `razorpay_signature` when it does not match the order and payment) and
    returns the payment. A verified signature alone does not mark the invoice paid: the provider's webhook, or
    a fetch from the provider, settles the payment, so its status may still be `created`."""
    await own_invoice(request, scope, invoice_id)
    reply = await clients.call(payments_of(request).VerifyCheckout, payments_pb2.VerifyCheckoutRequest(
        invoice_id=invoice_id, razorpay_order_id=body.razorpay_order_id,
        razorpay_payment_id=body.razorpay_payment_id, razorpay_signature=body.razorpay_signature))
    return pys.Payment.from_pb(reply.payment)


@router.post("/invoices/{invoice_id}/payment-link", status_code=status.HTTP_201_CREATED,
             response_model=pys.PaymentLink, responses=_EXISTING_LINK,
             summary="A payment link for one of your organisation's invoices")
async def my_invoice_payment_link(invoice_id: str, request: Request, response: Response, scope: OrgScope):
    """The same link as the admin's: 201 new, 200 the one still open. 404 for another organisation's invoice,
    as for one that does not exist; 422 when it has nothing to pay."""
    await own_invoice(request, scope, invoice_id)
    link, _ = await _payment_link(request, response, invoice_id)
    return link


@router.get("/invoices/{invoice_id}/payments", response_model=pys.InvoicePayments,
            summary="How one of your organisation's invoices is being collected")
async def my_invoice_payments(invoice_id: str, request: Request, scope: OrgScope):
    """The same view as the admin's: order, payments, refunds and totals, with what credit notes took off and what
    is still due. 404 for another organisation's invoice."""
    await own_invoice(request, scope, invoice_id)
    return await _invoice_payments(request, invoice_id)
