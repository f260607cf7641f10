"""Stripe's REST API through the official SDK (``stripe.StripeClient``), asynchronously over httpx.

One PaymentIntent per invoice (a new one, and the first cancelled, when a credit note lowers what it owes), for a
customer made once per organisation. Every create carries an ``Idempotency-Key`` derived from our ids
(``customer:<organisation>``, ``payment_intent:<invoice>`` (``…#O2`` for a remade one),
``refund:<refund key>``, ``capture:<payment intent>``): a retry after a lost answer gets Stripe's first answer
back instead of a second object. Amounts go out in Stripe's units and come back in ISO minor units
(:mod:`..domain.stripe_money`). The base address is configurable, so tests and ``make run`` talk to the local
Stripe (localstripe) exactly as production talks to api.stripe.com.

Failures are sorted as for Razorpay (:mod:`..domain.provider`): a 4xx is a **rejection** (but 408, 409 — a
concurrent request with the same idempotency key — and 429 ask us to come back); a 5xx or a connection that
never opened is an **outage**; a request that may have reached Stripe with no answer (a read timeout) is
**unknown**. Every one is retried with the same idempotency key, which is what makes the unknown safe.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx
import stripe

from billing_runtime.logging import get_logger
from services.payments.domain import stripe_money
from services.payments.domain.payment import Provider
from services.payments.domain.provider import FailureKind, ProviderFailure
from services.payments.domain.reports import (
    LinkRequest,
    ProviderLink,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
)
from services.payments.domain.stripe_events import (
    order_from_intent,
    payment_from_intent,
    refund_from_object,
)

log = get_logger(__name__)

# Stripe's listings answer at most 100 items a page.
PAGE = 100
# PaymentIntent statuses in which nobody is paying it yet.
_UNPAID_INTENT = ("requires_payment_method", "requires_confirmation", "requires_action")
# httpx errors raised before a request could have reached Stripe: nothing was done.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class StripeApi:
    """The calls payments makes. Each raises :class:`ProviderFailure` on anything but success."""

    name = Provider.STRIPE
    # A PaymentIntent belongs to a customer; Stripe makes no payment links for an amount due; Stripe.js confirms
    # the PaymentIntent itself, so there is no checkout callback to verify.
    uses_customers = True
    makes_links = False
    verifies_checkout = False
    # A PaymentIntent a credit note outdated is cancelled, so it can no longer be paid.
    cancels_orders = True

    def __init__(self, secret_key: str, publishable_key: str, api_base: str, timeout_seconds: float) -> None:
        self.key_id = publishable_key
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(secret_key, base_addresses={"api": api_base.rstrip("/")},
                                           http_client=self._http, max_network_retries=0)

    async def create_customer(self, organisation_id: str, name: str, email: str) -> str:
        params: dict[str, Any] = {"metadata": {"organisation_id": organisation_id}}
        if name:
            params["name"] = name[:256]
        if email:
            params["email"] = email[:512]
        customer = await self._call(self._client.v1.customers.create_async(
            params, {"idempotency_key": f"customer:{organisation_id}"}))
        return str(customer["id"])

    async def create_order(self, amount_minor: int, currency: str, receipt: str, notes: dict[str, str],
                           customer_id: str = "") -> ProviderOrder:
        """A PaymentIntent for the invoice named in ``notes`` (its ``invoice_id`` keys the idempotency)."""
        params: dict[str, Any] = {"amount": self._amount(amount_minor, currency), "currency": currency.lower(),
                                  "metadata": {**notes, "invoice_number": receipt}}
        if customer_id:
            params["customer"] = customer_id
        intent = await self._call(self._client.v1.payment_intents.create_async(
            params, {"idempotency_key": _intent_key(notes, receipt)}))
        return order_from_intent(intent)

    async def cancel_order(self, order_id: str) -> ProviderOrder:
        """Cancel a PaymentIntent nobody is paying (``POST /v1/payment_intents/{id}/cancel``), and answer it as it
        then is. It is looked at first: one cancelled before (a retry after a lost answer) is answered as it is,
        and so is one that succeeded, is processing or holds an authorisation (cancelling that would release the
        customer's money): a payment on it is still its invoice's."""
        intent = await self._call(self._client.v1.payment_intents.retrieve_async(order_id))
        if intent.get("status") in _UNPAID_INTENT:
            intent = await self._call(self._client.v1.payment_intents.cancel_async(order_id))
        return order_from_intent(intent)

    async def find_order(self, receipt: str) -> ProviderOrder | None:
        # Stripe has no lookup by receipt: the retried create, with the same idempotency key, finds the first.
        return None

    async def fetch_order(self, order_id: str) -> ProviderOrder:
        return order_from_intent(await self._call(self._client.v1.payment_intents.retrieve_async(order_id)))

    async def fetch_payment(self, payment_id: str) -> ProviderPayment:
        return payment_from_intent(await self._call(self._client.v1.payment_intents.retrieve_async(
            payment_id, {"expand": ["latest_charge"]})))

    async def capture_payment(self, payment_id: str, amount_minor: int, currency: str) -> ProviderPayment:
        return payment_from_intent(await self._call(self._client.v1.payment_intents.capture_async(
            payment_id, {"amount_to_capture": self._amount(amount_minor, currency)},
            {"idempotency_key": f"capture:{payment_id}"})))

    async def create_refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str,
                            notes: dict[str, str], receipt: str, currency: str = "") -> ProviderRefund:
        params = {"payment_intent": payment_id, "amount": self._amount(amount_minor, currency),
                  "metadata": {**notes, "receipt": receipt}}
        return refund_from_object(await self._call(self._client.v1.refunds.create_async(
            params, {"idempotency_key": f"refund:{idempotency_key}"})))

    async def fetch_refund(self, refund_id: str) -> ProviderRefund:
        return refund_from_object(await self._call(self._client.v1.refunds.retrieve_async(refund_id)))

    async def create_payment_link(self, link: LinkRequest) -> ProviderLink:
        raise ProviderFailure(FailureKind.REJECTED, code="not_supported",
                              description="Stripe makes no payment links for an amount due: pay the PaymentIntent")

    async def find_payment_link(self, reference_id: str) -> ProviderLink | None:
        return None

    async def cancel_payment_link(self, link_id: str) -> ProviderLink:
        raise ProviderFailure(FailureKind.REJECTED, code="not_supported",
                              description="Stripe makes no payment links for an amount due")

    async def list_payments(self, start: int, end: int) -> list[ProviderPayment]:
        """The PaymentIntents attempted in [start, end): those with a charge made in the window (Razorpay lists
        payment attempts by when they were made; a PaymentIntent's own ``created`` is when the invoice was
        issued, long before it may be paid). Each is fetched as it now stands."""
        charges = await self._listed(self._client.v1.charges, start, end)
        intents = dict.fromkeys(found for charge in charges if (found := _id_of(charge.get("payment_intent"))))
        return [await self.fetch_payment(intent) for intent in intents]

    async def list_refunds(self, start: int, end: int) -> list[ProviderRefund]:
        return [refund_from_object(item) for item in await self._listed(self._client.v1.refunds, start, end)]

    async def close(self) -> None:
        await self._http.close_async()

    async def _listed(self, service: Any, start: int, end: int) -> list[dict[str, Any]]:
        """Every item of a listing created in [start, end), page by page (``starting_after`` the last one)."""
        found: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"created": {"gte": start, "lt": end}, "limit": PAGE}
            if found:
                params["starting_after"] = found[-1]["id"]
            page = await self._call(service.list_async(params))
            items = [item for item in page.get("data") or [] if isinstance(item, dict)]
            found.extend(items)
            if not page.get("has_more") or not items:
                return found

    @staticmethod
    def _amount(amount_minor: int, currency: str) -> int:
        if not currency:
            return amount_minor
        try:
            return stripe_money.to_stripe(amount_minor, currency)
        except stripe_money.NotConvertible as error:
            raise ProviderFailure(FailureKind.REJECTED, code="amount_not_convertible", description=str(error),
                                  field="amount") from None

    @staticmethod
    async def _call(request: Awaitable[Any]) -> dict[str, Any]:
        """The answer as plain JSON (what the webhook bodies are read from too), or a ProviderFailure."""
        try:
            answer = await request
        except stripe.APIConnectionError as error:
            cause = error.__cause__
            if isinstance(cause, _NOT_SENT):
                raise ProviderFailure(FailureKind.UNAVAILABLE, description=type(cause).__name__) from None
            raise ProviderFailure(FailureKind.UNKNOWN,
                                  description=type(cause).__name__ if cause else "no answer") from None
        except stripe.StripeError as error:
            raise _failure(error) from None
        found = answer.to_dict() if hasattr(answer, "to_dict") else answer
        if not isinstance(found, dict):
            raise ProviderFailure(FailureKind.UNKNOWN, description="the answer was not a JSON object")
        return found


def _intent_key(notes: dict[str, str], receipt: str) -> str:
    """The idempotency key of an invoice's PaymentIntent: ``payment_intent:<invoice>`` for the one made at issue,
    with the receipt's suffix for one remade for a lower amount (``payment_intent:<invoice>#O2``), which Stripe
    would otherwise answer with the first (or refuse, its amount being another)."""
    key = f"payment_intent:{notes.get('invoice_id') or receipt}"
    return f"{key}#{receipt.rsplit('#', 1)[1]}" if "#" in receipt else key


def _id_of(value: Any) -> str:
    """An object's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _failure(error: stripe.StripeError) -> ProviderFailure:
    status = error.http_status or 0
    body = error.json_body.get("error") if isinstance(error.json_body, dict) else None
    body = body if isinstance(body, dict) else {}
    if 400 <= status < 500 and status not in (408, 409, 429):
        kind = FailureKind.REJECTED
    else:
        kind = FailureKind.UNAVAILABLE
    return ProviderFailure(
        kind, http_status=status, code=str(body.get("code") or error.code or "")[:500],
        description=str(body.get("message") or error.user_message or "")[:500],
        field=str(body.get("param") or "")[:500], reason=str(body.get("decline_code") or "")[:500],
        source=str(body.get("type") or "")[:500],
    )
