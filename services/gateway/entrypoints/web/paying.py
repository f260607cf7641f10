"""Paying an invoice from the dashboard, and what was paid and refunded: the invoice's page shows its payments,
refunds and credit notes, and, for an e-invoiced one, its IRN, Ack No and date (or that its registration with the
IRP is pending); **Pay** opens the provider's hosted checkout for the invoice's order (the local
Razorpay sandbox's in demo mode) and comes back here, where the checkout's answer is handed on (the API's
verify route) and the invoice's state asks for itself until the payment has settled it (htmx polling). The
prepaid credit page shows the organisation's balance, grants and credit notes.

Each route calls the REST API's own route function (``http/payments.py``, ``http/credits.py``,
``http/credit_notes.py``) with the signed-in person's scope: the same ``own_invoice`` check (another
organisation's invoice is 404), the same ``org_pay`` permission to pay."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
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
MAX_RETURN_FIELD = 200


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
                       failure: str = "") -> Response:
    """An invoice's page: its facts, **Pay** while something is due, its lines and GST, its payments, refunds
    and credit notes. ``checkout``: the hosted checkout's answer, handed on to the API's verify route by the page
    itself (an htmx post with the CSRF token as soon as it loads)."""
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
                  failure=failure, title=f"Invoice {invoice.number}")


@router.get("/invoices/{invoice_id}")
async def invoice_detail(invoice_id: str, request: Request) -> Response:
    return await invoice_page(request, invoice_id)


@router.get("/invoices/{invoice_id}/pay")
async def pay(invoice_id: str, request: Request) -> Response:
    """The API's checkout for the invoice (``GET /api/v1/invoices/{id}/checkout``: the provider order, made once),
    then the provider's hosted page for it, told to come back to the invoice."""
    scope = page_scope(request)
    checkout = await payments.my_invoice_checkout(invoice_id, request, scope)
    if not checkout.checkout_url:
        raise FailedPrecondition("this invoice cannot be paid on a hosted checkout page; ask for a payment link")
    back = str(request.url_for("checkout_return", invoice_id=invoice_id))
    separator = "&" if "?" in checkout.checkout_url else "?"
    target = checkout.checkout_url + separator + urlencode({"callback_url": back, "callback_method": "get"})
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


def _returned(request: Request) -> tuple[dict[str, str], str]:
    """What the checkout came back with: the three fields of a payment, or a failure's description."""
    query = request.query_params
    failure = query.get("error[description]", "")[:MAX_RETURN_FIELD]
    if failure:
        return {}, failure
    fields = {name: query.get(name, "")[:MAX_RETURN_FIELD] for name in CHECKOUT_FIELDS}
    return (fields if all(fields.values()) else {}), ""


@router.get("/invoices/{invoice_id}/checkout-return", name="checkout_return")
async def checkout_return(invoice_id: str, request: Request) -> Response:
    """Back from the checkout: the invoice's page, which hands the payment on and then watches the invoice."""
    fields, failure = _returned(request)
    return await invoice_page(request, invoice_id, checkout=fields, failure=failure)


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
async def state(invoice_id: str, request: Request, payment_status: str = "") -> Response:
    """The invoice's status and what is left to pay (``GET /api/v1/invoices/{id}``): a fragment asking for
    itself every 2 s until the invoice is settled."""
    scope = page_scope(request)
    invoice = await invoices.my_invoice(invoice_id, request, scope)
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    return render(request, "customer/_invoice_state.html", invoice=invoice, show=show,
                  settled=invoice.status in SETTLED, payment_status=payment_status[:20])


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
