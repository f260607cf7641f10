"""Razorpay's REST API (/v1): every route the official Python SDK calls for orders, payments, refunds and payment
links, behind Basic auth with the configured key id and secret."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from sandboxes.razorpay.errors import authentication_failed, bad_request
from sandboxes.razorpay.state import Sandbox
from sandboxes.razorpay.store import Obj, collection, public, select


def sandbox_of(request: Request) -> Sandbox:
    return request.app.state.sandbox


MISSING_KEY = "Please provide your api key for authentication purposes."


def require_key(request: Request) -> None:
    """Basic auth with key id and key secret; anything else is Razorpay's 401, worded as Razorpay words it."""
    settings = sandbox_of(request).settings
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise authentication_failed(MISSING_KEY)
    try:
        key_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise authentication_failed() from None
    if not key_id:
        raise authentication_failed(MISSING_KEY)
    if not hmac.compare_digest(key_id, settings.key_id):
        raise authentication_failed("The api key provided is invalid")
    if not hmac.compare_digest(secret, settings.key_secret):
        raise authentication_failed()


router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("The request body is not a valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def payment_body(payment: Obj, request: Request) -> Obj:
    """`expand[]=card` adds the card object, as Razorpay does."""
    body = public(payment)
    if "card" in request.query_params.getlist("expand[]") and "_card" in payment:
        body["card"] = dict(payment["_card"])
    return body


# ---- orders
@router.post("/orders")
async def create_order(request: Request) -> Obj:
    return public(sandbox_of(request).ledger.create_order(await json_body(request)))


@router.get("/orders")
async def list_orders(request: Request) -> Obj:
    store = sandbox_of(request).store
    params = query(request)
    filters: dict[str, Any] = {}
    if params.get("receipt"):
        filters["receipt"] = params["receipt"]
    orders = list(store.orders.values())
    if params.get("authorized") in ("1", "true"):
        with_authorized = {p["order_id"] for p in store.payments.values() if p["status"] == "authorized"}
        orders = [order for order in orders if order["id"] in with_authorized]
    return collection(select(orders, params, filters))


@router.get("/orders/{order_id}")
async def fetch_order(order_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).store.get("orders", order_id))


@router.get("/orders/{order_id}/payments")
async def order_payments(order_id: str, request: Request) -> Obj:
    store = sandbox_of(request).store
    store.get("orders", order_id)
    found = [payment for payment in store.payments.values() if payment["order_id"] == order_id]
    return collection(select(found, {"count": "100"}))


# ---- payments
@router.get("/payments")
async def list_payments(request: Request) -> Obj:
    return collection(select(list(sandbox_of(request).store.payments.values()), query(request)))


@router.get("/payments/{payment_id}")
async def fetch_payment(payment_id: str, request: Request) -> Obj:
    return payment_body(sandbox_of(request).store.get("payments", payment_id), request)


@router.post("/payments/{payment_id}/capture")
async def capture_payment(payment_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).ledger.capture(payment_id, await json_body(request)))


@router.post("/payments/{payment_id}/refund")
async def refund_payment(payment_id: str, request: Request) -> Obj:
    body = await json_body(request)
    key = request.headers.get("x-refund-idempotency")
    return public(sandbox_of(request).ledger.refund(payment_id, body, key))


@router.get("/payments/{payment_id}/refunds")
async def payment_refunds(payment_id: str, request: Request) -> Obj:
    store = sandbox_of(request).store
    store.get("payments", payment_id)
    found = [refund for refund in store.refunds.values() if refund["payment_id"] == payment_id]
    return collection(select(found, query(request)))


@router.get("/payments/{payment_id}/refunds/{refund_id}")
async def payment_refund(payment_id: str, refund_id: str, request: Request) -> Obj:
    refund = sandbox_of(request).store.get("refunds", refund_id)
    if refund["payment_id"] != payment_id:
        raise bad_request("The id provided does not exist")
    return public(refund)


# ---- refunds
@router.post("/refunds")
async def create_refund(request: Request) -> Obj:
    body = await json_body(request)
    payment_id = body.get("payment_id")
    if not payment_id:
        raise bad_request("The payment id field is required.", "payment_id")
    key = request.headers.get("x-refund-idempotency")
    rest = {name: value for name, value in body.items() if name != "payment_id"}
    return public(sandbox_of(request).ledger.refund(str(payment_id), rest, key))


@router.get("/refunds")
async def list_refunds(request: Request) -> Obj:
    return collection(select(list(sandbox_of(request).store.refunds.values()), query(request)))


@router.get("/refunds/{refund_id}")
async def fetch_refund(refund_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).store.get("refunds", refund_id))


# ---- payment links
@router.post("/payment_links")
async def create_link(request: Request) -> Obj:
    return public(sandbox_of(request).links.create(await json_body(request)))


@router.get("/payment_links")
async def list_links(request: Request) -> Obj:
    """Razorpay answers this list as `{"payment_links": [...]}`, not as a collection."""
    sandbox = sandbox_of(request)
    params = query(request)
    filters = {"reference_id": params["reference_id"]} if params.get("reference_id") else {}
    chosen = select(sandbox.links.all(), {"count": "100", **params}, filters)
    return {"payment_links": [public(link) for link in chosen]}


@router.get("/payment_links/{link_id}")
async def fetch_link(link_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).links.get(link_id))


@router.post("/payment_links/{link_id}/cancel")
async def cancel_link(link_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).links.cancel(link_id))


# ---- customers, tokens and recurring payments (see recurring.py)
@router.post("/customers")
async def create_customer(request: Request) -> Obj:
    return public(sandbox_of(request).recurring.create_customer(await json_body(request)))


@router.get("/customers/{customer_id}")
async def fetch_customer(customer_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).store.get("customers", customer_id))


@router.get("/customers/{customer_id}/tokens")
async def list_tokens(customer_id: str, request: Request) -> Obj:
    return collection(sandbox_of(request).recurring.tokens_of(customer_id))


@router.get("/customers/{customer_id}/tokens/{token_id}")
async def fetch_token(customer_id: str, token_id: str, request: Request) -> Obj:
    return public(sandbox_of(request).recurring.token_of(customer_id, token_id))


@router.delete("/customers/{customer_id}/tokens/{token_id}")
async def delete_token(customer_id: str, token_id: str, request: Request) -> Obj:
    """The SDK's ``token.delete``: a recurring token is cancelled (token.cancelled), never forgotten."""
    recurring = sandbox_of(request).recurring
    recurring.token_of(customer_id, token_id)
    recurring.move(token_id, "cancelled", "cancelled by the merchant")
    return {"deleted": True}


@router.api_route("/customers/{customer_id}/tokens/{token_id}/cancel", methods=["POST", "PUT"])
async def cancel_token(customer_id: str, token_id: str, request: Request) -> Obj:
    recurring = sandbox_of(request).recurring
    recurring.token_of(customer_id, token_id)
    return public(recurring.move(token_id, "cancelled", "cancelled by the merchant"))


@router.api_route("/customers/{customer_id}/tokens/{token_id}/pause", methods=["POST", "PUT"])
async def pause_token(customer_id: str, token_id: str, request: Request) -> Obj:
    recurring = sandbox_of(request).recurring
    recurring.token_of(customer_id, token_id)
    return public(recurring.move(token_id, "paused", "paused by the merchant"))


@router.post("/payments/create/recurring")
async def create_recurring(request: Request) -> Obj:
    return sandbox_of(request).recurring.create_recurring(await json_body(request))
