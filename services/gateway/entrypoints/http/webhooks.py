"""Provider webhooks, verified over the raw body before anything is read, stored in JetStream once, answered.

POST /api/v1/webhooks/razorpay: Razorpay's.

The signature (``X-Razorpay-Signature``, lowercase hex HMAC-SHA256 of the exact body with the webhook secret)
is checked first, in constant time, against the current secret and, during a rotation, the previous one. A
missing or wrong signature is 401 and nothing is stored. A genuine delivery is stored in JetStream
(deduplicated by ``X-Razorpay-Event-Id``) and answered 200 at once: payments processes it from there, and the
provider is never called inside this request.

POST /api/v1/webhooks/stripe: Stripe's. ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=...]`` is checked
(:func:`billing_runtime.signatures.verify_stripe`: HMAC-SHA256 of ``"<t>.<raw body>"`` with the endpoint secret,
any ``v1`` matching the current or previous secret, ``t`` within the tolerance of our clock either way); anything
else is 401 and nothing is stored. Stripe sends no event-id header: the id is the body's ``id`` (``evt_...``),
read only once the signature holds, and the delivery is stored and deduplicated by it exactly as Razorpay's.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from billing_runtime.logging import get_logger
from billing_runtime.signatures import StripeVerdict, matches, verify_stripe
from services.gateway.entrypoints.http.events import PayloadTooLarge, _read_body

log = get_logger(__name__)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

_EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_EVENT_TYPE = re.compile(r"^[a-z0-9_.]{1,64}$")
_STRIPE_EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_]{1,100}$")
_STRIPE_EVENT_TYPE = re.compile(r"^[a-z0-9_.]{1,100}$")


def _refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


@router.post(
    "/razorpay",
    summary="Receive a Razorpay webhook",
    responses={401: {"description": "missing or wrong X-Razorpay-Signature"}, 400: {"description": "not an event"},
               413: {"description": "body too large"}, 503: {"description": "not stored; Razorpay will retry"}},
)
async def razorpay_webhook(request: Request) -> JSONResponse:
    """Verify, store once, answer 200. Razorpay retries anything else, so only a stored delivery gets a 2xx."""
    settings = request.app.state.settings
    store = request.app.state.webhooks
    secrets = settings.razorpay_webhook_secrets()
    if not secrets or store is None:
        return _refuse(503, "unavailable", "Razorpay webhooks are not configured on this gateway")
    try:
        body = await _read_body(request, settings.webhook_max_body_bytes)
    except PayloadTooLarge:
        return _refuse(413, "payload_too_large", f"the body is over {settings.webhook_max_body_bytes} bytes")
    signature = request.headers.get("x-razorpay-signature", "")
    if not signature:
        return _refuse(401, "unauthenticated", "X-Razorpay-Signature is missing")
    if len(signature) > 128 or not matches(body, signature, secrets):
        log.warning("webhook signature does not match", bytes=len(body))
        return _refuse(401, "unauthenticated", "X-Razorpay-Signature does not match the body")
    event_id = request.headers.get("x-razorpay-event-id", "")
    if event_id and not _EVENT_ID.fullmatch(event_id):
        return _refuse(400, "invalid_argument", "X-Razorpay-Event-Id is not an event id")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "invalid_argument", "the body is not JSON")
    event_type = document.get("event") if isinstance(document, dict) else None
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        return _refuse(400, "invalid_argument", "the body names no Razorpay event")
    # Razorpay always sends the header; without it the body's digest stands in, so identical bodies dedupe.
    event_id = event_id or "sha256-" + hashlib.sha256(body).hexdigest()[:48]
    try:
        duplicate = await store.store("razorpay", event_id, event_type, body, datetime.now(UTC))
    except Exception as error:  # noqa: BLE001 - not stored: Razorpay must retry, so never 2xx here
        log.warning("webhook not stored", event_id=event_id, error=str(error) or repr(error))
        return _refuse(503, "unavailable", "the webhook could not be stored; retry")
    return JSONResponse({"received": True, "event_id": event_id, "duplicate": duplicate})


@router.post(
    "/stripe",
    summary="Receive a Stripe webhook",
    responses={401: {"description": "missing, malformed, wrong or expired Stripe-Signature"},
               400: {"description": "not a Stripe event"}, 413: {"description": "body too large"},
               503: {"description": "not stored; Stripe will retry"}},
)
async def stripe_webhook(request: Request) -> JSONResponse:
    """Verify, store once by the event's id, answer 200. Stripe retries anything else, so only a stored delivery
    gets a 2xx."""
    settings = request.app.state.settings
    store = request.app.state.webhooks
    secrets = settings.stripe_webhook_secrets()
    if not secrets or store is None:
        return _refuse(503, "unavailable", "Stripe webhooks are not configured on this gateway")
    try:
        body = await _read_body(request, settings.webhook_max_body_bytes)
    except PayloadTooLarge:
        return _refuse(413, "payload_too_large", f"the body is over {settings.webhook_max_body_bytes} bytes")
    verdict = verify_stripe(body, request.headers.get("stripe-signature", ""), secrets, time.time(),
                            settings.stripe_webhook_tolerance_seconds)
    if verdict is not StripeVerdict.VALID:
        log.warning("stripe webhook refused", verdict=str(verdict), bytes=len(body))
        return _refuse(401, "unauthenticated", verdict.detail)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "invalid_argument", "the body is not JSON")
    if not isinstance(document, dict) or document.get("object") != "event":
        return _refuse(400, "invalid_argument", "the body is not a Stripe event")
    event_id, event_type = document.get("id"), document.get("type")
    if not isinstance(event_id, str) or not _STRIPE_EVENT_ID.fullmatch(event_id):
        return _refuse(400, "invalid_argument", "the event has no Stripe event id")
    if not isinstance(event_type, str) or not _STRIPE_EVENT_TYPE.fullmatch(event_type):
        return _refuse(400, "invalid_argument", "the event names no Stripe event type")
    try:
        duplicate = await store.store("stripe", event_id, event_type, body, datetime.now(UTC))
    except Exception as error:  # noqa: BLE001 - not stored: Stripe must retry, so never 2xx here
        log.warning("webhook not stored", event_id=event_id, error=str(error) or repr(error))
        return _refuse(503, "unavailable", "the webhook could not be stored; retry")
    return JSONResponse({"received": True, "event_id": event_id, "duplicate": duplicate})
