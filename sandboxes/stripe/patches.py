"""What our local Stripe adds to localstripe (1.15), so it behaves as Stripe does where payments relies on it.

localstripe is a stateful fake of Stripe's API on aiohttp, with its objects in one module-level store. It is
used as it is, except where Stripe's behaviour matters to us and localstripe's differs:

- **Idempotency-Key**: localstripe ignores it; Stripe answers a repeated key with the first answer (and a 400
  ``idempotency_error`` when the parameters differ). Added as a middleware.
- **Webhooks**: localstripe posts each event once, signed with the event's creation time. Stripe retries failed
  deliveries with backoff and signs each attempt with the time it is sent, so a retry is never "too old".
- **Refund events**: localstripe sends none; Stripe sends ``refund.created`` and ``charge.refunded``.
- **payment_intent.canceled**: localstripe cancels a PaymentIntent without an event; Stripe sends one.
- **created[gte|gt|lte|lt]** on the PaymentIntent, Charge and Refund listings (reconciliation windows):
  localstripe refuses the parameter (or implements ``gt`` alone, for charges); Stripe filters by it.
- **State**: localstripe pickles the whole store to /tmp/localstripe.pickle on every write (shared by every
  instance on the machine). Ours keeps it in the given file, or nowhere.
- **Stripe.js's confirm**: Stripe.js confirms a PaymentIntent from the payer's browser with
  ``POST /v1/payment_intents/{id}/confirm`` carrying the publishable key, the intent's client secret and the card
  (``payment_method_data``) or a ``payment_method``. localstripe's confirm takes neither a publishable key nor a
  payment method, and its fake Stripe.js only authenticates an intent its server already confirmed. Ours takes
  the call as Stripe does (the account's publishable key and the intent's own client secret, or the secret key;
  another attempt after a declined card), and serves localstripe's Stripe.js with ``confirmCardPayment`` made to
  call it (``stripe_js.js``). localstripe's CORS headers, which its own app adds, are kept.

Everything here patches module state of localstripe, so one local Stripe runs per process (tests start it once
per module; ``make run`` runs it as its own process).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import pickle
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from localstripe import resources, server, webhooks

log = logging.getLogger("sandboxes.stripe")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STRIPE_JS = "/js.stripe.com/v3/"
CONFIRM = "/v1/payment_intents/{id}/confirm"
_CONFIRM_PATH = re.compile(r"^/v1/payment_intents/pi_[A-Za-z0-9]+/confirm$")
_STRIPE_JS_ADDITIONS = Path(__file__).with_name("stripe_js.js")


class Deliveries:
    """Signed webhook deliveries, retried with backoff like Stripe's."""

    def __init__(self, delay: float, initial: float, maximum: float, attempts: int, timeout: float) -> None:
        self.delay, self.initial, self.maximum, self.attempts, self.timeout = delay, initial, maximum, attempts, timeout
        self.tasks: set[asyncio.Task[None]] = set()
        self.log: list[dict[str, Any]] = []

    def schedule(self, event: resources.Event) -> None:
        # Exported now, as localstripe does: the body says what the object was when the event happened.
        body = json.dumps(event._export(), indent=2, sort_keys=True).encode()
        task = asyncio.ensure_future(self._send(event.id, event.type, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, event_id: str, event_type: str, body: bytes) -> None:
        await asyncio.sleep(self.delay)
        for endpoint in list(webhooks._webhooks.values()):
            if endpoint.events is not None and event_type not in endpoint.events:
                continue
            await self._deliver(endpoint, event_id, event_type, body)

    async def _deliver(self, endpoint: Any, event_id: str, event_type: str, body: bytes) -> None:
        wait = self.initial
        for attempt in range(1, self.attempts + 1):
            timestamp = int(time.time())
            signature = hmac.new(endpoint.secret.encode(), b"%d.%s" % (timestamp, body), hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json; charset=utf-8",
                       "Stripe-Signature": f"t={timestamp},v1={signature}"}
            status: int | None = None
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session, \
                        session.post(endpoint.url, data=body, headers=headers) as answer:
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as error:
                log.info("webhook %s %s not delivered (attempt %d): %s", event_type, event_id, attempt, error)
            self.log.append({"event_id": event_id, "type": event_type, "attempt": attempt, "status": status})
            if status is not None and 200 <= status < 300:
                return
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.maximum)


_deliveries: Deliveries | None = None
_state_file: Path | None = None
_publishable_key = ""
_installed = False


def _dump(store: resources.Store) -> None:
    if _state_file is not None:
        partial = _state_file.with_suffix(".tmp")
        with partial.open("wb") as handle:
            pickle.dump(dict(store), handle, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(_state_file)


def _load(store: resources.Store) -> None:
    if _state_file is not None and _state_file.exists():
        with _state_file.open("rb") as handle:
            kept = pickle.load(handle)  # noqa: S301 - our own file, written by _dump
        dict.clear(store)
        dict.update(store, kept)


def _schedule(event: resources.Event) -> None:
    if _deliveries is not None:
        _deliveries.schedule(event)


def _listing_with_created(cls: type) -> None:
    """Let ``cls``'s listing take Stripe's ``created`` range filter."""
    original = cls._api_list_all

    def listing(klass: type, url: str, created: Any = None, **kwargs: Any) -> Any:
        found = original(url, **kwargs)
        if created is None:
            return found
        if not isinstance(created, dict) or not set(created) <= {"gt", "gte", "lt", "lte"}:
            raise resources.UserError(400, "Bad request")
        try:
            bounds = {op: int(value) for op, value in created.items()}
        except (TypeError, ValueError):
            raise resources.UserError(400, "Bad request") from None
        tests = {"gt": lambda c, v: c > v, "gte": lambda c, v: c >= v, "lt": lambda c, v: c < v,
                 "lte": lambda c, v: c <= v}
        found._list = [item for item in found._list
                       if all(tests[op](item.created, value) for op, value in bounds.items())]
        return found

    cls._api_list_all = classmethod(listing)


def _refunds_send_events() -> None:
    original = resources.Refund.__init__

    def init(self: resources.Refund, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _schedule(resources.Event("refund.created", self))
        _schedule(resources.Event("charge.refunded", resources.Charge._api_retrieve(self.charge)))

    resources.Refund.__init__ = init


def _cancel_sending_event(**data: Any) -> resources.PaymentIntent:
    """``POST /v1/payment_intents/{id}/cancel`` as localstripe does it, then Stripe's ``payment_intent.canceled``."""
    intent = resources.PaymentIntent._api_cancel(**data)
    _schedule(resources.Event("payment_intent.canceled", intent))
    return intent


CANCEL_INTENT = "/v1/payment_intents/{id}/cancel"


def install(settings: Any) -> Deliveries:
    """Patch localstripe (once per process) and (re)configure state and webhook delivery from ``settings``."""
    global _deliveries, _state_file, _publishable_key, _installed
    _state_file = settings.state_file
    _publishable_key = settings.publishable_key
    _deliveries = Deliveries(settings.webhook_delay_seconds, settings.webhook_retry_initial_seconds,
                             settings.webhook_retry_max_seconds, settings.webhook_max_attempts,
                             settings.webhook_timeout_seconds)
    if not _installed:
        resources.Store.dump_to_disk = _dump
        resources.Store.try_load_from_disk = _load
        resources.schedule_webhook = _schedule
        _listing_with_created(resources.PaymentIntent)
        _listing_with_created(resources.Refund)
        _listing_with_created(resources.Charge)
        _refunds_send_events()
        _installed = True
    dict.clear(resources.store)
    webhooks._webhooks.clear()
    resources.store.try_load_from_disk()
    if settings.webhook_url:
        webhooks.register_webhook("billing", settings.webhook_url, settings.webhook_secret, None)
    return _deliveries


def idempotency() -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Stripe's Idempotency-Key on POSTs: the first answer (not a 5xx) is kept per (API key, idempotency key) and
    replayed for a repeat with the same parameters; other parameters are a 400 ``idempotency_error``."""
    kept: dict[tuple[str, str], tuple[str, int, bytes, str]] = {}
    locks: dict[tuple[str, str], asyncio.Lock] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        scope = (request.headers.get("Authorization", ""), key)
        fingerprint = hashlib.sha256(request.method.encode() + request.path.encode() + b"\n"
                                     + await request.read()).hexdigest()
        async with locks.setdefault(scope, asyncio.Lock()):
            if scope in kept:
                first, status, body, content_type = kept[scope]
                if first != fingerprint:
                    return web.json_response({"error": {
                        "type": "idempotency_error",
                        "message": f"Keys for idempotent requests can only be used with the same parameters they "
                                   f"were first used with. Try using a key other than '{key}' if you meant to "
                                   "execute a different request."}}, status=400)
                return web.Response(status=status, body=body, content_type=content_type,
                                    headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
            response = await handler(request)
            if isinstance(response, web.Response) and response.status < 500 and response.body is not None:
                body = response.body if isinstance(response.body, bytes) else bytes(response.body)
                kept[scope] = (fingerprint, response.status, body, response.content_type)
            return response

    return middleware


def confirm_payment_intent(id: Any, client_secret: Any = None, payment_method: Any = None,
                           payment_method_data: Any = None, use_stripe_sdk: Any = None,
                           expected_payment_method_type: Any = None, return_url: Any = None,
                           **kwargs: Any) -> resources.PaymentIntent:
    """``POST /v1/payment_intents/{id}/confirm`` as Stripe answers it: with a ``payment_method`` (an id) or
    ``payment_method_data`` (the card Stripe.js collected) it is the intent's card from now on, also for another
    attempt after a declined one; with ``client_secret`` (Stripe.js's call) it must be the intent's. Stripe.js's
    bookkeeping parameters (``use_stripe_sdk``, ``expected_payment_method_type``, ``return_url``) are accepted. A
    declined card answers 402 and leaves the intent waiting for another payment method, as localstripe does."""
    if not isinstance(id, str) or not id.startswith("pi_"):
        raise resources.UserError(400, "Bad request")
    intent = resources.PaymentIntent._api_retrieve(id)
    if client_secret is not None and client_secret != intent.client_secret:
        raise resources.UserError(400, f"No such payment_intent: '{id}'",
                                  {"code": "resource_missing", "param": "intent"})
    if payment_method is not None and payment_method_data is not None:
        raise resources.UserError(400, "Received both payment_method and payment_method_data: send one of them")
    if payment_method_data is not None:
        if not isinstance(payment_method_data, dict):
            raise resources.UserError(400, "Bad request", {"param": "payment_method_data"})
        payment_method = resources.PaymentMethod._api_create(**payment_method_data).id
    if payment_method is not None:
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise resources.UserError(400, f"This PaymentIntent's status is {intent.status}: it cannot be confirmed",
                                      {"code": "payment_intent_unexpected_state"})
        resources.PaymentMethod._api_retrieve(payment_method)  # 404 for one that does not exist
        intent.payment_method = payment_method
        intent.latest_charge = None  # a new attempt (the declined charge stays in the store)
        intent.next_action = None
        intent._authentication_failed = False
    return resources.PaymentIntent._api_confirm(id, **kwargs)


def _publishable_confirm() -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """localstripe's authentication, and besides it Stripe.js's confirm: the account's publishable key with a
    client secret (which :func:`confirm_payment_intent` checks against the intent)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and _CONFIRM_PATH.match(request.path):
            data = await server.get_post_data(request, remove_auth=False) or {}
            if data.get("key") == _publishable_key and isinstance(data.get("client_secret"), str):
                return await handler(request)
        return await server.auth_middleware(request, handler)

    return middleware


async def stripe_js(_request: web.Request) -> web.Response:
    """localstripe's Stripe.js with our additions (``stripe_js.js``) after it."""
    base = Path(server.__file__).with_name("localstripe-v3.js").read_text()
    return web.Response(text=base + _STRIPE_JS_ADDITIONS.read_text(), content_type="application/javascript",
                        headers={"Cache-Control": "no-cache"})


def build_app() -> web.Application:
    """localstripe's routes (in its order: its extra routes come before the generic ones) behind its own
    middlewares and our idempotency; the PaymentIntent confirm and Stripe.js replaced by ours."""
    middlewares = [_publishable_confirm() if mw is server.auth_middleware else mw for mw in server.app.middlewares]
    app = web.Application(middlewares=[idempotency(), *middlewares])
    for route in server.app.router.routes():
        path = route.resource.canonical
        handler = route.handler
        if route.method == "POST" and path == CONFIRM:
            handler = server.api_extra(confirm_payment_intent, path)
        elif route.method == "POST" and path == CANCEL_INTENT:
            # localstripe's routes hold its functions: the cancel is wrapped here, where the event is sent.
            handler = server.api_extra(_cancel_sending_event, CANCEL_INTENT)
        elif route.method in ("GET", "HEAD") and path == STRIPE_JS:
            handler = stripe_js
        app.router.add_route(route.method, path, handler)
    # Stripe.js calls the API from the payer's page, another origin: localstripe's CORS headers.
    app.on_response_prepare.append(server.add_cors_headers)
    return app
