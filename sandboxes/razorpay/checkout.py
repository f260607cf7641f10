"""The hosted checkout: the page a customer pays an order (or a payment link) on, and the return to the merchant.

After a successful payment the customer goes back to the callback URL with what Razorpay's Checkout hands the
merchant: `razorpay_payment_id`, `razorpay_order_id` and `razorpay_signature` for orders; the payment link fields
and their signature for links. A declined payment returns Razorpay's `error[...]` fields instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sandboxes.razorpay.errors import RazorpayError
from sandboxes.razorpay.links import payment_signature
from sandboxes.razorpay.state import Sandbox
from sandboxes.razorpay.store import Obj
from sandboxes.razorpay.validation import THREE_DECIMAL

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
FORM_FIELDS = ("method", "vpa", "card_number", "bank", "wallet", "outcome", "email", "contact", "mandate")
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


def page(sandbox: Sandbox, *, amount: int, currency: str, action: str, description: str, reference: str,
         hidden: dict[str, str]) -> HTMLResponse:
    return render(
        "checkout.html",
        merchant=sandbox.settings.merchant_name,
        amount=major_units(amount, currency),
        currency=currency,
        action=action,
        description=description,
        reference=reference,
        hidden={name: value for name, value in hidden.items() if value},
    )


def back_to_merchant(sandbox: Sandbox, url: str, method: str, fields: dict[str, str], title: str,
                     message: str) -> Response:
    if not url:
        return render("result.html", title=title, message=message, fields=fields)
    if method.lower() == "post":
        return render("autopost.html", merchant=sandbox.settings.merchant_name, url=url, fields=fields)
    separator = "&" if "?" in url else "?"
    return RedirectResponse(url + separator + urlencode(fields), status_code=303)


def failure_fields(payment: Obj) -> dict[str, str]:
    return {
        "error[code]": payment["error_code"],
        "error[description]": payment["error_description"],
        "error[source]": payment["error_source"],
        "error[step]": payment["error_step"],
        "error[reason]": payment["error_reason"],
        "error[metadata]": json.dumps({"payment_id": payment["id"], "order_id": payment["order_id"]}),
    }


def chosen(form: dict[str, str]) -> dict[str, Any]:
    return {name: form[name] for name in FORM_FIELDS if form.get(name)}


@router.get("/checkout/{order_id}")
async def order_page(order_id: str, request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    order = sandbox.store.orders.get(order_id)
    if order is None:
        return render("result.html", 404, title="Unknown order", message=f"No order {order_id}.", fields={})
    if order.get("_link_id"):
        return RedirectResponse(f"/l/{order['_link_id']}", status_code=303)
    if order["status"] == "paid":
        return render("result.html", title="Already paid", message="This order has been paid.", fields={})
    if order.get("_token") is not None and request.query_params.get("recurring") != "1":
        # Checkout opens an authorisation order only with recurring "1" (and the order's customer).
        return render("result.html", 400, title="Mandate not possible",
                      message="This order authorises a mandate: open Checkout with recurring \"1\".", fields={})
    return page(
        sandbox, amount=order["amount_due"], currency=order["currency"], action=f"/checkout/{order_id}/pay",
        description=order["notes"].get("description", "") if order["notes"] else "",
        reference=order["receipt"] or order_id,
        hidden={
            "callback_url": request.query_params.get("callback_url", ""),
            "callback_method": request.query_params.get("callback_method", ""),
        },
    )


@router.post("/checkout/{order_id}/pay")
async def pay_order(order_id: str, request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    form = await form_of(request)
    try:
        payment = sandbox.ledger.pay(order_id, chosen(form))
    except RazorpayError as exc:
        return render("result.html", 400, title="Payment not possible", message=exc.description, fields={})
    url, method = form.get("callback_url", ""), form.get("callback_method") or "post"
    if payment["status"] == "failed":
        return back_to_merchant(sandbox, url, method, failure_fields(payment), "Payment failed",
                                payment["error_description"])
    fields = {
        "razorpay_payment_id": payment["id"],
        "razorpay_order_id": order_id,
        "razorpay_signature": payment_signature(order_id, payment["id"], sandbox.settings.key_secret),
    }
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
