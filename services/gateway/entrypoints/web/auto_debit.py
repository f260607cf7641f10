"""A customer's auto-debit page: the organisation's recurring mandate (method, state, the most one debit may take,
until when, the next debit and every debit with its state); an owner sets one up (the mandate is made, then its
authorisation opens at Razorpay's Checkout, which comes back here; Razorpay's token.confirmed then confirms it, and
the page watches until it has), pauses a confirmed one and
cancels it, each after a confirmation. A paused mandate is not resumed (a mandate's states only move forward):
the page says so and offers cancelling it to set up another.

Each route calls the customer API's own route function (``http/mandates.py``) with the signed-in person's scope:
the same use cases as the operators' (payments' ``mandates``), the same ``org_read`` to see and ``org_manage`` (an
owner) to change, and another organisation's mandate is 404 here as there.

The authorisation is Razorpay's Checkout with ``recurring: "1"``, opened the way the mandate's answer allows: on
the provider's hosted page where payments has one (``checkout_url``: the local sandbox's, in demo mode), there and
back; otherwise (real Razorpay has no hosted page per order) on this page, with Razorpay's Standard Checkout
(Checkout.js) opened over it as Razorpay documents for recurring payments (``key``, ``order_id`` the
authorisation order, ``customer_id``, ``recurring: "1"``, prefill, ``handler``, ``modal.ondismiss``), through the
invoice Pay's own script (``paying.py``, ``static/paying.js``) and with the same Content-Security-Policy
exception, on that page only. Either way the checkout's answer decides nothing: it brings the person back to
``/app/auto-debit/authorised``, which watches for the bank's answer."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.gateway.domain.payment_scripts import RAZORPAY
from services.gateway.entrypoints.http import invoices, mandates
from services.gateway.entrypoints.http.schemas import Organisation
from services.gateway.entrypoints.web.account import may_manage
from services.gateway.entrypoints.web.customer import organisation_of, page_scope
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_body, form_fields
from services.gateway.entrypoints.web.paying import MANDATE, Paying, script_for
from services.gateway.entrypoints.web.rendering import PAGE_HEADERS, PREFIX, redirect, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

METHODS = (("upi", "UPI AutoPay"), ("card", "Card"), ("emandate", "Bank account (eNACH)"))
# A debit not finished yet, in the order it gets there.
UNDER_WAY = ("scheduled", "ordered", "requested")
# The states a mandate watched after its authorisation may still leave by itself (the bank's answer).
WAITING = frozenset({"created"})
KEY_PREFIX = "ad-"
DONE = {"paused": "Auto-debit is paused: invoices are collected without it from now on.",
        "cancelled": "Auto-debit is cancelled: no invoice is debited on it again."}
MAX_RETURN_FIELD = 200
NOT_AUTHORISABLE_HERE = "this mandate cannot be authorised from the dashboard here; ask for the authorisation link"


def next_debit(debits: list[mandates.AutoDebit]) -> mandates.AutoDebit | None:
    """The debit that happens next: of those under way (scheduled, ordered or requested), the one starting first
    (one without a start time last); None when none is."""
    far = datetime.max.replace(tzinfo=UTC)
    under_way = [d for d in debits if d.state in UNDER_WAY]
    return min(under_way, key=lambda d: (d.debit_at or far, d.due_at or far), default=None)


def shown_mandate(listed: list[mandates.Mandate]) -> mandates.Mandate | None:
    """The mandate the page is about: the live one (at most one), else the latest that ended."""
    live = [m for m in listed if m.state in ("created", "confirmed", "paused")]
    return (live or listed or [None])[0]


async def _shown(request: Request):
    scope = page_scope(request)
    organisation = await organisation_of(request, scope)
    return scope, organisation, Presentation.of(organisation.country, organisation.timezone)


async def _mandate_and_debits(request: Request, scope) -> tuple[mandates.Mandate | None, list[mandates.AutoDebit]]:
    listed = (await mandates.my_mandates(request, scope, include_finished=True)).data
    mandate = shown_mandate(listed)
    if mandate is None:
        return None, []
    return mandate, (await mandates.my_mandate_debits(mandate.id, request, scope)).data


@router.get("/auto-debit")
async def auto_debit(request: Request, done: str = "") -> Response:
    return await _page(request, done=done)


def authorising_with(request: Request, mandate: mandates.Mandate, organisation: Organisation, show: Presentation,
                     back: str) -> Paying:
    """Razorpay's Checkout options for the mandate's authorisation, as Razorpay documents them for recurring
    payments: the key id, the authorisation order (with what it really takes), its customer and ``recurring``
    "1", prefilled with the organisation's billing details (what the customer at Razorpay was made from); the
    handler comes back to ``back``. FailedPrecondition when the gateway has no Checkout.js or payments gave no
    key (Razorpay not configured)."""
    script = script_for(request, RAZORPAY)
    if script is None or not (mandate.key_id and mandate.authorisation_order_id and mandate.customer_id):
        raise FailedPrecondition(NOT_AUTHORISABLE_HERE)
    prefill = {name: value for name, value in (("name", organisation.name), ("email", organisation.billing_email))
               if value}
    return Paying(RAZORPAY, script, {
        "key": mandate.key_id, "order_id": mandate.authorisation_order_id, "customer_id": mandate.customer_id,
        "recurring": "1", "amount": mandate.authorisation_amount_minor,
        "currency": mandate.authorisation_currency or "INR",
        "description": f"Auto-debit: up to {show.money(mandate.max_amount, 'INR')} a debit",
        "prefill": prefill, "notes": {"mandate_id": mandate.id}, "return_url": back}, purpose=MANDATE)


async def _page(request: Request, *, done: str = "", returned: bool = False, failure: str = "",
                authorising: mandates.Mandate | None = None) -> Response:
    """The page; ``authorising``: the mandate whose authorisation opens here in Razorpay's Checkout.js (with the
    page's policy allowing exactly Razorpay's script and frame origins)."""
    scope, organisation, show = await _shown(request)
    mandate, debits = await _mandate_and_debits(request, scope)
    paying = None
    if authorising is not None:
        paying = authorising_with(request, authorising, organisation, show,
                                  str(request.url_for("mandate_authorised")))
    numbers: dict[str, str] = {}
    if debits:
        page = await invoices.my_invoices(request, scope, status=None, period_key="", page_size=100, page_token="")
        numbers = {i.id: i.number for i in page.data}
    return render(request, "customer/auto_debit.html", organisation=organisation, show=show, mandate=mandate,
                  debits=debits, coming=next_debit(debits), numbers=numbers, methods=METHODS,
                  may_manage=may_manage(request), done=DONE.get(done, ""), returned=returned, failure=failure,
                  watching=returned and mandate is not None and mandate.state in WAITING,
                  new_key=KEY_PREFIX + secrets.token_hex(12), paying=paying,
                  csp_sources=paying.script.sources if paying else None,
                  title="Authorise auto-debit" if paying else "Auto-debit")


@router.post("/auto-debit")
async def set_up(request: Request) -> Response:
    """``POST /api/v1/mandates`` (the form's idempotency key: a second submit answers the same mandate), then its
    authorisation at Razorpay's Checkout."""
    scope = page_scope(request)
    fields = await form_fields(request)
    key = fields.get("idempotency_key", "")
    if not key.startswith(KEY_PREFIX) or len(key) > 64:
        raise InvalidArgument("the form is out of date: reload the page", field="idempotency_key")
    body = form_body(mandates.MyMandateCreate, {"method": fields.get("method", ""),
                                                "max_amount": fields.get("max_amount", "").strip().replace(",", ""),
                                                "idempotency_key": key}, whole="max_amount")
    made = await mandates.my_create_mandate(body, request, scope)
    return redirect(request, f"{PREFIX}/auto-debit/{quote(made.id)}/authorise")


@router.get("/auto-debit/{mandate_id}/authorise")
async def authorise(mandate_id: str, request: Request) -> Response:
    """The mandate's authorisation at Razorpay's Checkout (recurring "1"), coming back to this page: on the
    provider's hosted page where payments has one (demo mode), else this page with Checkout.js opened over it. A
    mandate already answered by the bank goes back to the page."""
    scope = page_scope(request)
    listed = (await mandates.my_mandates(request, scope, include_finished=True)).data
    mandate = next((m for m in listed if m.id == mandate_id), None)
    if mandate is None:  # another organisation's, as a made-up one
        raise NotFound(f"mandate {mandate_id} not found", field="mandate_id")
    if mandate.state != "created":
        return redirect(request, f"{PREFIX}/auto-debit")
    if not mandate.checkout_url:
        return await _page(request, authorising=mandate)
    back = str(request.url_for("mandate_authorised"))
    separator = "&" if "?" in mandate.checkout_url else "?"
    target = mandate.checkout_url + separator + urlencode({"callback_url": back, "callback_method": "get"})
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


@router.get("/auto-debit/authorised", name="mandate_authorised")
async def authorised(request: Request) -> Response:
    """Back from the checkout (the hosted page's callback, or Checkout.js's handler): the page, watching the
    mandate until the bank's answer (token.confirmed or token.rejected, through Razorpay's webhook) has moved it.
    The checkout's own answer decides nothing."""
    failure = request.query_params.get("error[description]", "")[:MAX_RETURN_FIELD]
    return await _page(request, returned=True, failure=failure)


@router.get("/auto-debit/state")
async def state(request: Request) -> Response:
    """The mandate's state: a fragment asking for itself every 2 s while the bank's answer is awaited."""
    scope, organisation, show = await _shown(request)
    listed = (await mandates.my_mandates(request, scope, include_finished=True)).data
    mandate = shown_mandate(listed)
    return render(request, "customer/_mandate_state.html", mandate=mandate, show=show,
                  watching=mandate is not None and mandate.state in WAITING)


@router.post("/auto-debit/{mandate_id}/pause")
async def pause(mandate_id: str, request: Request) -> Response:
    await mandates.my_pause_mandate(mandate_id, request, page_scope(request))
    return redirect(request, f"{PREFIX}/auto-debit?done=paused")


@router.post("/auto-debit/{mandate_id}/cancel")
async def cancel(mandate_id: str, request: Request) -> Response:
    await mandates.my_cancel_mandate(mandate_id, request, page_scope(request))
    return redirect(request, f"{PREFIX}/auto-debit?done=cancelled")
