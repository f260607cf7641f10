"""Paying an invoice from the dashboard, and what was paid and refunded: the invoice's page shows its payments,
refunds and credit notes, and, for an e-invoiced one, its IRN, Ack No and date (or that its registration with
the IRP is pending); **Pay** asks the API's checkout for the invoice's order and pays it the way payments' answer
says:

- a hosted page for the order (``checkout_url``: the local Razorpay sandbox's, in demo mode): there and back;
- Razorpay without one (real Razorpay has no hosted page per order): the invoice's page with Razorpay's
  Standard Checkout (Checkout.js) opened over it, whose ``handler`` comes back the same way;
- Stripe (``client_secret``): the invoice's page with Stripe.js's card Element; ``confirmCardPayment`` confirms
  the PaymentIntent in the browser and comes back with Stripe's return parameters; Stripe's webhook settles it.

Back on the invoice (``checkout-return``), Razorpay's answer is handed on (the API's verify route) and the
invoice's state asks for itself until the payment has settled it (htmx polling). The scripts come from the
gateway's settings (``GATEWAY_RAZORPAY_CHECKOUT_JS_URL``, ``GATEWAY_STRIPE_JS_URL``), and only the paying page's
Content-Security-Policy allows them (``domain/payment_scripts.py``). The same :class:`Paying` and
``static/paying.js`` open Razorpay's Checkout for a mandate's authorisation on the auto-debit page
(``auto_debit.py``). The prepaid credit page shows the organisation's balance, grants and credit notes.

Each route calls the REST API's own route function (``http/payments.py``, ``http/credits.py``,
``http/credit_notes.py``) with the signed-in person's scope: the same ``own_invoice`` check (another
organisation's invoice is 404), the same ``org_pay`` permission to pay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.gateway.domain.payment_scripts import RAZORPAY, STRIPE, PaymentScript
from services.gateway.entrypoints.http import credit_notes, credits, einvoices, invoices, payments
from services.gateway.entrypoints.http import payment_schemas as pys
from services.gateway.entrypoints.http.api_key import Scope
from services.gateway.entrypoints.web.customer import organisation_of, page_scope
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.rendering import PAGE_HEADERS, PREFIX, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# An invoice in one of these states with something left to pay shows **Pay**.
PAYABLE = frozenset({"issued", "partially_paid", "overdue"})
# Settled: the polling of the invoice's state stops.
SETTLED = frozenset({"paid", "partially_refunded", "refunded", "void", "uncollectible"})
CHECKOUT_FIELDS = ("razorpay_payment_id", "razorpay_order_id", "razorpay_signature")
# What Stripe's return_url is given after a confirmation (and what our page gives after confirmCardPayment).
STRIPE_RETURN_STATUSES = frozenset({"succeeded", "processing", "failed"})
MAX_RETURN_FIELD = 200
NOT_PAYABLE_HERE = "this invoice cannot be paid from the dashboard; ask for a payment link"


# What a page opens a provider's script for: paying an invoice, or authorising a mandate (Razorpay's Checkout with
# recurring "1"); static/paying.js says what happens in the words of each.
PAYMENT = "payment"
MANDATE = "mandate"


@dataclass(frozen=True)
class Paying:
    """A page while a provider's script runs on it: which script, and the options the page's own script
    (static/paying.js) gives it: for Razorpay, Checkout's own options as they are (it adds ``handler`` and
    ``modal``), and ``return_url``, where the handler brings the person back. Public values only: the key id or
    publishable key, the order (and a mandate's customer), and Stripe's client secret, which is made for the
    payer's browser (the page is never cached)."""

    provider: str
    script: PaymentScript
    options: dict[str, Any]
    purpose: str = PAYMENT

    @classmethod
    def of(cls, checkout: pys.Checkout, script: PaymentScript, back: str) -> Paying:
        prefill = {name: value for name, value in checkout.prefill.model_dump().items() if value}
        if script.provider == STRIPE:
            details = {name: prefill[name] for name in ("name", "email") if name in prefill}
            return cls(STRIPE, script, {"key": checkout.key_id, "client_secret": checkout.client_secret,
                                        "billing_details": details, "return_url": back})
        return cls(RAZORPAY, script, {
            "key": checkout.key_id, "order_id": checkout.order_id, "amount": checkout.amount_minor,
            "currency": checkout.currency, "name": checkout.name, "description": checkout.description,
            "prefill": prefill, "notes": {"invoice_id": checkout.invoice_id,
                                          "invoice_number": checkout.invoice_number},
            "return_url": back})


def script_for(request: Request, provider: str) -> PaymentScript | None:
    """The provider's browser script as the gateway's settings give it; None when there is none for it here."""
    return request.app.state.payment_scripts.get(provider)


def paying_with(request: Request, checkout: pys.Checkout, back: str) -> Paying:
    """How the dashboard pays an order without a hosted page: the provider's script, if the gateway has one for
    it and payments gave what it needs (a key; Stripe's client secret)."""
    script = script_for(request, checkout.provider or "")
    if script is None or not checkout.key_id or not checkout.order_id:
        raise FailedPrecondition(NOT_PAYABLE_HERE)
    if script.provider == STRIPE and not checkout.client_secret:
        raise FailedPrecondition(NOT_PAYABLE_HERE)
    return Paying.of(checkout, script, back)


def payable(invoice) -> bool:
    return invoice.status in PAYABLE and invoice.amount_due_minor > 0


async def collection_of(request: Request, scope: Scope, invoice_id: str) -> tuple[pys.InvoicePayments | None, str]:
    """The invoice's payments and refunds (``GET /api/v1/invoices/{id}/payments``), or why they cannot be shown:
    not yet seen by payments (it learns of an invoice when it is issued), or payments is down; the rest of the
    invoice's page does not depend on it."""
    try:
        return await payments.my_invoice_payments(invoice_id, request, scope), ""
    except Unavailable:
        return None, "Payments cannot be shown just now; try again in a minute."
    except NotFound:  # payments has not seen the invoice issued yet (own_invoice passed: it is this organisation's)
        return None, "No payment yet."


async def credit_notes_of(request: Request, scope: Scope, invoice_id: str) -> list:
    page = await credit_notes.my_invoice_credit_notes(invoice_id, request, scope, page_size=100, page_token="")
    return page.data


async def einvoice_of(request: Request, scope: Scope, invoice_id: str) -> einvoices.InvoiceEinvoice | None:
    """The invoice as the IRP acknowledged it (``GET /api/v1/invoices/{id}/einvoice``); None when it is not
    e-invoiced (B2C, or e-invoicing off)."""
    try:
        return await einvoices.my_invoice_einvoice(invoice_id, request, scope)
    except NotFound:
        return None


async def invoice_page(request: Request, invoice_id: str, *, checkout: dict[str, str] | None = None,
                       failure: str = "", watch: bool = False, paying: Paying | None = None) -> Response:
    """An invoice's page: its facts, **Pay** while something is due, its lines and GST, its payments, refunds
    and credit notes. ``checkout``: Razorpay's answer, handed on to the API's verify route by the page itself
    (an htmx post with the CSRF token as soon as it loads); ``watch``: a payment is on its way (Stripe's), so
    the state asks for itself until it settles; ``paying``: the provider's script, with its CSP sources."""
    scope = page_scope(request)
    invoice = await invoices.my_invoice(invoice_id, request, scope)  # another organisation's: 404, asked first
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    collection, collection_note = await collection_of(request, scope, invoice_id)
    notes = await credit_notes_of(request, scope, invoice_id)
    einvoice = await einvoice_of(request, scope, invoice_id)
    return render(request, "customer/invoice.html", organisation=organisation, show=show, invoice=invoice,
                  collection=collection, collection_note=collection_note, credit_notes=notes, einvoice=einvoice,
                  payable=payable(invoice), settled=invoice.status in SETTLED, checkout=checkout or {},
                  watch=watch, failure=failure, paying=paying, csp_sources=paying.script.sources if paying else None,
                  title=f"Pay invoice {invoice.number}" if paying else f"Invoice {invoice.number}")


@router.get("/invoices/{invoice_id}")
async def invoice_detail(invoice_id: str, request: Request) -> Response:
    return await invoice_page(request, invoice_id)


@router.get("/invoices/{invoice_id}/pay")
async def pay(invoice_id: str, request: Request) -> Response:
    """The API's checkout for the invoice (``GET /api/v1/invoices/{id}/checkout``: the provider order, made once),
    then, by what it answers: the provider's hosted page for it, told to come back to the invoice; or the
    invoice's page with Razorpay's Checkout.js or Stripe.js, which come back the same way."""
    scope = page_scope(request)
    checkout = await payments.my_invoice_checkout(invoice_id, request, scope)
    back = str(request.url_for("checkout_return", invoice_id=invoice_id))
    if not checkout.checkout_url:
        return await invoice_page(request, invoice_id, paying=paying_with(request, checkout, back))
    separator = "&" if "?" in checkout.checkout_url else "?"
    target = checkout.checkout_url + separator + urlencode({"callback_url": back, "callback_method": "get"})
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


def _returned(request: Request) -> tuple[dict[str, str], str, bool]:
    """What the checkout came back with: Razorpay's three fields of a payment, or a failure's description; or
    Stripe's return (``payment_intent``, ``redirect_status``): a payment on its way to watch for, or failed.
    Nothing here is believed beyond what it asks the page to do: payments verifies, webhooks settle."""
    query = request.query_params
    failure = query.get("error[description]", "")[:MAX_RETURN_FIELD]
    if failure:
        return {}, failure, False
    if query.get("payment_intent"):
        status = query.get("redirect_status", "")
        if status not in STRIPE_RETURN_STATUSES:
            raise InvalidArgument("must be succeeded, processing or failed", field="redirect_status")
        if status == "failed":
            return {}, "the card was not accepted; try again, or another card", False
        return {}, "", True
    fields = {name: query.get(name, "")[:MAX_RETURN_FIELD] for name in CHECKOUT_FIELDS}
    return (fields if all(fields.values()) else {}), "", False


@router.get("/invoices/{invoice_id}/checkout-return", name="checkout_return")
async def checkout_return(invoice_id: str, request: Request) -> Response:
    """Back from the checkout: the invoice's page, which hands Razorpay's payment on, and watches the invoice."""
    fields, failure, watch = _returned(request)
    return await invoice_page(request, invoice_id, checkout=fields, failure=failure, watch=watch)


@router.post("/invoices/{invoice_id}/checkout/verify")
async def verify(invoice_id: str, request: Request) -> Response:
    """``POST /api/v1/invoices/{id}/checkout/verify``: the signature checked and the payment fetched; answers the
    invoice's state, which polls itself until the payment has settled the invoice."""
    form = await form_fields(request)
    try:
        body = pys.CheckoutVerify(**{name: form.get(name, "") for name in CHECKOUT_FIELDS})
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidArgument(first.get("msg", "is not valid"), field=str(first.get("loc", ("form",))[0])) from None
    payment = await payments.my_invoice_checkout_verify(invoice_id, body, request, page_scope(request))
    return await state(invoice_id, request, payment_status=payment.status or "")


@router.get("/invoices/{invoice_id}/state")
async def state(invoice_id: str, request: Request, payment_status: str = "", watch: bool = False) -> Response:
    """The invoice's status and what is left to pay (``GET /api/v1/invoices/{id}``): while a payment is on its
    way (``watch``), a fragment asking for itself (``?watch=1``) every 2 s until the invoice is settled."""
    scope = page_scope(request)
    invoice = await invoices.my_invoice(invoice_id, request, scope)
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    return render(request, "customer/_invoice_state.html", invoice=invoice, show=show,
                  settled=invoice.status in SETTLED, payment_status=payment_status[:20], watch=watch)


@router.get("/credits")
async def credit(request: Request) -> Response:
    """Prepaid credit (``GET /api/v1/credits``): balances, grants and where they went; and the organisation's
    credit notes (``GET /api/v1/credit-notes``)."""
    scope = page_scope(request)
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    statement = await credits.my_credit_balance(request, scope)
    notes = await credit_notes.my_credit_notes(request, scope, page_size=100, page_token="")
    return render(request, "customer/credits.html", organisation=organisation, show=show, statement=statement,
                  credit_notes=notes.data, title="Credit")
