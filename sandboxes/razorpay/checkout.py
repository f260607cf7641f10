"""The hosted checkout: the page a customer pays an order (or a payment link) on, and the return to the merchant;
and Checkout.js, which opens the same page in a frame over the merchant's own page.

After a successful payment the customer goes back to the callback URL with what Razorpay's Checkout hands the
merchant: `razorpay_payment_id`, `razorpay_order_id` and `razorpay_signature` for orders; the payment link fields
and their signature for links. A declined payment returns Razorpay's `error[...]` fields instead.

An authorisation order (one carrying a ``token``: a mandate) opens only with ``recurring=1`` and its own
``customer_id``, as Razorpay's Checkout asks, whether hosted or opened by Checkout.js; paying it makes the token
(``recurring.py``), and the answer is an order's like any other.

Opened by Checkout.js (``embedded=1``, with the merchant's ``origin`` and ``key``), the page answers the script
instead, by ``postMessage`` to that origin only: the same three fields for the ``handler`` after a payment, and
Razorpay's ``error`` object for ``payment.failed`` after a decline, the page staying open for another attempt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sandboxes.razorpay.errors import RazorpayError
from sandboxes.razorpay.faults import CHECKOUT_JS
from sandboxes.razorpay.links import payment_signature
from sandboxes.razorpay.state import Sandbox
from sandboxes.razorpay.store import Obj
from sandboxes.razorpay.validation import THREE_DECIMAL

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
FORM_FIELDS = ("method", "vpa", "card_number", "bank", "wallet", "outcome", "email", "contact", "mandate")
STATIC = Path(__file__).parent / "static"
# What the frame's messages carry, so Checkout.js can tell them from anything else the page receives.
MESSAGE_SOURCE = "razorpay-sandbox"
# A web origin to post to: scheme, host (a name, an IPv4 address or a bracketed IPv6 one) and an optional port.
ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")
router = APIRouter(include_in_schema=False)


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**context), status_code=status)


def major_units(amount: int, currency: str) -> str:
    """Integer minor units shown as a decimal string, without floats."""
    digits = 3 if currency in THREE_DECIMAL else 2
    whole, fraction = divmod(amount, 10**digits)
    return f"{whole:,}.{fraction:0{digits}d}"


async def form_of(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


@dataclass(frozen=True)
class Embedding:
    """The page opened by Checkout.js in a frame of the merchant's page: where its answers go, and what the
    merchant's options asked it to show."""

    origin: str
    name: str = ""
    description: str = ""
    email: str = ""
    contact: str = ""

    @classmethod
    def of(cls, fields: dict[str, str]) -> Embedding | None:
        """From the page's query (as Checkout.js opens it) or its form (as the page posts it back); None when
        the page is not embedded."""
        if fields.get("embedded") != "1":
            return None
        return cls(origin=fields.get("origin", ""), name=fields.get("name", ""),
                   description=fields.get("description", ""),
                   email=fields.get("prefill[email]", fields.get("email", "")),
                   contact=fields.get("prefill[contact]", fields.get("contact", "")))

    def refusal(self, sandbox: Sandbox, key: str | None) -> str:
        """Why Checkout.js may not open the page: Razorpay's own checks of the options it is given."""
        if not ORIGIN.match(self.origin):
            return "Checkout.js must say which page opened it (origin)."
        if key is not None and key != sandbox.settings.key_id:
            return "Authentication failed: the key passed to Checkout is not this account's key id."
        return ""

    def hidden(self) -> dict[str, str]:
        """The form fields that keep the page embedded after a post (and the prefill on the payment)."""
        return {"embedded": "1", "origin": self.origin, "name": self.name, "description": self.description,
                "email": self.email, "contact": self.contact}


def handler_response(order_id: str, payment_id: str, key_secret: str) -> dict[str, str]:
    """What Checkout hands the merchant after a payment of an order (its ``handler``, or the callback URL):
    the ids and the signature ``Utility.verify_payment_signature`` checks, HMAC-SHA256 of
    ``order_id|payment_id`` with the key secret."""
    return {
        "razorpay_payment_id": payment_id,
        "razorpay_order_id": order_id,
        "razorpay_signature": payment_signature(order_id, payment_id, key_secret),
    }


def message(event: str, **body: Any) -> dict[str, Any]:
    return {"source": MESSAGE_SOURCE, "event": event, **body}


def page(sandbox: Sandbox, *, amount: int, currency: str, action: str, description: str, reference: str,
         hidden: dict[str, str], embedding: Embedding | None = None, failure: str = "",
         posted: dict[str, Any] | None = None, status: int = 200, mandate: str = "") -> HTMLResponse:
    merchant = (embedding.name if embedding else "") or sandbox.settings.merchant_name
    if embedding is not None:
        description = embedding.description or description
        hidden = {**hidden, **embedding.hidden()}
    return render(
        "checkout.html", status,
        merchant=merchant,
        amount=major_units(amount, currency),
        currency=currency,
        action=action,
        description=description,
        reference=reference,
        hidden={name: value for name, value in hidden.items() if value},
        failure=failure,
        embedding=embedding,
        posted=posted,
        mandate=mandate,
    )


def embedded_result(embedding: Embedding, status: int, title: str, text: str,
                    posted: dict[str, Any] | None = None) -> HTMLResponse:
    """A result inside Checkout.js's frame: said, posted to the merchant's page when there is something to
    post, with the close button that dismisses the modal."""
    return render("result.html", status, title=title, message=text, fields={}, embedding=embedding, posted=posted)


def back_to_merchant(sandbox: Sandbox, url: str, method: str, fields: dict[str, str], title: str,
                     message: str) -> Response:
    if not url:
        return render("result.html", title=title, message=message, fields=fields)
    if method.lower() == "post":
        return render("autopost.html", merchant=sandbox.settings.merchant_name, url=url, fields=fields)
    separator = "&" if "?" in url else "?"
    return RedirectResponse(url + separator + urlencode(fields), status_code=303)


def failure_error(payment: Obj) -> dict[str, Any]:
    """Razorpay's ``error`` of a declined payment, as ``payment.failed`` hands it to Checkout.js's listeners."""
    return {
        "code": payment["error_code"],
        "description": payment["error_description"],
        "source": payment["error_source"],
        "step": payment["error_step"],
        "reason": payment["error_reason"],
        "metadata": {"payment_id": payment["id"], "order_id": payment["order_id"]},
    }


def failure_fields(payment: Obj) -> dict[str, str]:
    """The same error as the form fields a callback URL receives."""
    error = failure_error(payment)
    return {f"error[{name}]": json.dumps(value) if name == "metadata" else value for name, value in error.items()}


def chosen(form: dict[str, str]) -> dict[str, Any]:
    return {name: form[name] for name in FORM_FIELDS if form.get(name)}


@router.get(CHECKOUT_JS)
async def checkout_js() -> Response:
    """Checkout.js: ``new Razorpay(options).open()`` opens this sandbox's checkout page in a modal frame."""
    return Response((STATIC / "checkout.js").read_text(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def order_view(order: Obj) -> dict[str, Any]:
    token = order.get("_token")
    mandate = ""
    if token is not None:  # an authorisation order: what paying it registers
        mandate = (f"Authorises a {order['_method']} mandate: up to {order['currency']} "
                   f"{major_units(token['max_amount'], order['currency'])} a debit.")
    return {"amount": order["amount_due"], "currency": order["currency"],
            "description": order["notes"].get("description", "") if order["notes"] else "",
            "reference": order["receipt"] or order["id"], "mandate": mandate}


def authorisation_refusal(order: Obj, query: dict[str, str]) -> str:
    """Why Checkout may not open an authorisation order with these options: as Razorpay's, only with
    ``recurring: "1"`` and the order's own customer (``customer_id``); empty when it may (or the order is not one)."""
    if order.get("_token") is None:
        return ""
    if query.get("recurring") != "1":
        return "This order authorises a mandate: open Checkout with recurring \"1\"."
    if query.get("customer_id") != order["_customer_id"]:
        return "This order authorises a mandate for its customer: open Checkout with that customer_id."
    return ""


@router.get("/checkout/{order_id}")
async def order_page(order_id: str, request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    query = dict(request.query_params)
    embedding = Embedding.of(query)
    if embedding is not None and (refusal := embedding.refusal(sandbox, query.get("key", ""))):
        return render("result.html", 400, title="Checkout could not open", message=refusal, fields={},
                      embedding=embedding if ORIGIN.match(embedding.origin) else None)
    order = sandbox.store.orders.get(order_id)
    if order is None:
        return render("result.html", 404, title="Unknown order", message=f"No order {order_id}.", fields={},
                      embedding=embedding)
    if order.get("_link_id"):
        return RedirectResponse(f"/l/{order['_link_id']}", status_code=303)
    if order["status"] == "paid":
        return render("result.html", title="Already paid", message="This order has been paid.", fields={},
                      embedding=embedding)
    if refusal := authorisation_refusal(order, query):
        return render("result.html", 400, title="Mandate not possible", message=refusal, fields={},
                      embedding=embedding)
    return page(
        sandbox, **order_view(order), action=f"/checkout/{order_id}/pay",
        hidden={
            "callback_url": request.query_params.get("callback_url", ""),
            "callback_method": request.query_params.get("callback_method", ""),
        },
        embedding=embedding,
    )


@router.post("/checkout/{order_id}/pay")
async def pay_order(order_id: str, request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    form = await form_of(request)
    embedding = Embedding.of(form)
    if embedding is not None and (refusal := embedding.refusal(sandbox, None)):
        return render("result.html", 400, title="Payment not possible", message=refusal, fields={})
    try:
        payment = sandbox.ledger.pay(order_id, chosen(form))
    except RazorpayError as exc:
        if embedding is not None:
            return embedded_result(embedding, 400, "Payment not possible", exc.description)
        return render("result.html", 400, title="Payment not possible", message=exc.description, fields={})
    if embedding is not None:
        if payment["status"] == "failed":
            # Razorpay's modal stays open after a decline, saying so, for another attempt.
            order = sandbox.store.orders[order_id]
            return page(sandbox, **order_view(order), action=f"/checkout/{order_id}/pay", hidden={},
                        embedding=embedding, failure=payment["error_description"],
                        posted=message("payment.failed", error=failure_error(payment)))
        response = handler_response(order_id, payment["id"], sandbox.settings.key_secret)
        return embedded_result(embedding, 200, "Paid", "The payment was successful.",
                               posted=message("payment.success", response=response))
    url, method = form.get("callback_url", ""), form.get("callback_method") or "post"
    if payment["status"] == "failed":
        return back_to_merchant(sandbox, url, method, failure_fields(payment), "Payment failed",
                                payment["error_description"])
    fields = handler_response(order_id, payment["id"], sandbox.settings.key_secret)
    return back_to_merchant(sandbox, url, method, fields, "Paid", "The payment was successful.")


@router.get("/l/{link_id}")
async def link_page(link_id: str, request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    try:
        link = sandbox.links.get(link_id)
    except RazorpayError:
        return render("result.html", 404, title="Unknown payment link", message=f"No link {link_id}.", fields={})
    if link["status"] not in ("created", "partially_paid"):
        return render("result.html", title=f"Payment link {link['status']}",
                      message=f"This payment link is {link['status']}.", fields={})
    return page(
        sandbox, amount=link["amount"] - link["amount_paid"], currency=link["currency"],
        action=f"/l/{link_id}/pay", description=link["description"], reference=link["reference_id"], hidden={},
    )


@router.post("/l/{link_id}/pay")
async def pay_link(link_id: str, request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    form = await form_of(request)
    try:
        payment = sandbox.links.pay(link_id, chosen(form))
    except RazorpayError as exc:
        return render("result.html", 400, title="Payment not possible", message=exc.description, fields={})
    link = sandbox.links.get(link_id)
    if payment["status"] == "failed":
        return back_to_merchant(sandbox, link["callback_url"], "get", failure_fields(payment), "Payment failed",
                                payment["error_description"])
    fields = sandbox.links.callback_params(link, payment, sandbox.settings.key_secret)
    return back_to_merchant(sandbox, link["callback_url"], "get", fields, "Paid", "The payment was successful.")
