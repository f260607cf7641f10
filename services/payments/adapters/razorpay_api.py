"""Razorpay's REST API through the official SDK.

The SDK is synchronous and sets no timeout of its own, so every call runs in a worker thread with an explicit
timeout. It also reduces a failure to an exception carrying only the description; the HTTP status and the
error body's code, field, reason, source and step are read from the last response of the calling thread (a
``requests`` response hook) and kept in a :class:`ProviderFailure`. Secrets stay inside the SDK's session.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import razorpay
import requests

from billing_runtime.logging import get_logger
from services.payments.domain.payment import Provider
from services.payments.domain.provider import FailureKind, ProviderFailure
from services.payments.domain.razorpay_events import (
    LinkRequest,
    ProviderLink,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    link_from_entity,
    order_from_entity,
    payment_from_entity,
    refund_from_entity,
)

log = get_logger(__name__)
T = TypeVar("T")


# Razorpay's listings answer at most 100 items a page.
PAGE = 100


class RazorpayApi:
    """The calls payments makes. Each raises :class:`ProviderFailure` on anything but success."""

    name = Provider.RAZORPAY
    # Orders need no customer at Razorpay; it makes payment links for an amount, and Checkout hands back a
    # signature to verify.
    uses_customers = False
    makes_links = True
    verifies_checkout = True
    # Razorpay's orders can be neither edited nor cancelled: one a credit note outdated is only no longer offered.
    cancels_orders = False

    def __init__(self, key_id: str, key_secret: str, base_url: str, timeout_seconds: float) -> None:
        self.key_id = key_id
        self._timeout = timeout_seconds
        self._local = threading.local()
        session = requests.Session()
        session.hooks["response"].append(self._remember)
        self._client = razorpay.Client(session=session, auth=(key_id, key_secret), base_url=base_url.rstrip("/"))
        self._client.set_app_details({"title": "billing-platform-payments", "version": "1"})
        self._session = session

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.response = response

    async def create_customer(self, organisation_id: str, name: str, email: str) -> str:
        raise ProviderFailure(FailureKind.REJECTED, description="orders at Razorpay are made without a customer")

    async def create_order(
        self, amount_minor: int, currency: str, receipt: str, notes: dict[str, str], customer_id: str = ""
    ) -> ProviderOrder:
        body = {"amount": amount_minor, "currency": currency, "receipt": receipt, "notes": notes,
                "payment_capture": 1}
        return order_from_entity(await self._call(lambda: self._client.order.create(body, timeout=self._timeout)))

    async def find_order(self, receipt: str) -> ProviderOrder | None:
        """The order made earlier with this receipt (after an attempt whose answer was lost), if any."""
        found = await self._call(lambda: self._client.order.all({"receipt": receipt}, timeout=self._timeout))
        items = found.get("items") or []
        return order_from_entity(items[0]) if items else None

    async def cancel_order(self, order_id: str) -> ProviderOrder:
        raise ProviderFailure(FailureKind.REJECTED, code="not_supported",
                              description="Razorpay's orders cannot be cancelled")

    async def fetch_order(self, order_id: str) -> ProviderOrder:
        return order_from_entity(await self._call(lambda: self._client.order.fetch(order_id, timeout=self._timeout)))

    async def fetch_payment(self, payment_id: str) -> ProviderPayment:
        return payment_from_entity(
            await self._call(lambda: self._client.payment.fetch(payment_id, timeout=self._timeout))
        )

    async def capture_payment(self, payment_id: str, amount_minor: int, currency: str) -> ProviderPayment:
        return payment_from_entity(await self._call(
            lambda: self._client.payment.capture(payment_id, amount_minor, {"currency": currency},
                                                 timeout=self._timeout)
        ))

    async def create_refund(
        self, payment_id: str, amount_minor: int, *, idempotency_key: str, notes: dict[str, str], receipt: str,
        currency: str = "",
    ) -> ProviderRefund:
        body = {"amount": amount_minor, "notes": notes, "receipt": receipt, "speed": "normal"}
        headers = {"X-Refund-Idempotency": idempotency_key}
        return refund_from_entity(await self._call(
            lambda: self._client.payment.refund(payment_id, body, headers=headers, timeout=self._timeout)
        ))

    async def fetch_refund(self, refund_id: str) -> ProviderRefund:
        return refund_from_entity(await self._call(lambda: self._client.refund.fetch(refund_id, timeout=self._timeout)))

    async def create_payment_link(self, link: LinkRequest) -> ProviderLink:
        body: dict[str, Any] = {
            "amount": link.amount_minor, "currency": link.currency, "accept_partial": False,
            "reference_id": link.reference_id, "description": link.description[:2048],
            "customer": {"name": link.customer_name, "email": link.customer_email},
            # We send our own emails (with the invoice attached); the provider's would be a second one.
            "notify": {"sms": False, "email": False}, "reminder_enable": False,
            "notes": link.notes, "expire_by": int(link.expire_by.timestamp()),
        }
        if link.callback_url:
            body.update(callback_url=link.callback_url, callback_method="get")
        return link_from_entity(await self._call(lambda: self._client.payment_link.create(body, timeout=self._timeout)))

    async def find_payment_link(self, reference_id: str) -> ProviderLink | None:
        """The link made earlier with this reference (after an attempt whose answer was lost), if any."""
        found = await self._call(
            lambda: self._client.payment_link.all({"reference_id": reference_id}, timeout=self._timeout))
        items = found.get("payment_links") or found.get("items") or []
        return link_from_entity(items[0]) if items else None

    async def cancel_payment_link(self, link_id: str) -> ProviderLink:
        """``POST /v1/payment_links/{id}/cancel``: the link can no longer be paid. Razorpay refuses (a 400) a link
        that is paid, expired or cancelled already."""
        return link_from_entity(await self._call(
            lambda: self._client.payment_link.cancel(link_id, timeout=self._timeout)))

    # ---- recurring payments (tokens, create/recurring): see services.payments.service.autodebit
    async def create_recurring_customer(self, name: str, email: str, contact: str) -> str:
        # fail_existing "0": the customer made before for this email and contact is answered, not an error.
        body = {"name": name[:50], "email": email[:64], "contact": contact[:15], "fail_existing": "0"}
        made = await self._call(lambda: self._client.customer.create(body, timeout=self._timeout))
        return str(made.get("id") or "")

    async def create_authorisation_order(self, customer_id: str, method: str, max_amount_minor: int,
                                         expire_at: datetime, receipt: str, notes: dict[str, str]) -> ProviderOrder:
        body: dict[str, Any] = {
            # eNACH authorises for nothing; cards and UPI take a token payment of INR 1.00.
            "amount": 0 if method == "emandate" else 100, "currency": "INR", "method": method,
            "customer_id": customer_id, "receipt": receipt, "notes": notes, "payment_capture": 1,
            "token": {"max_amount": max_amount_minor, "expire_at": int(expire_at.timestamp()),
                      "frequency": "as_presented"},
        }
        return order_from_entity(await self._call(lambda: self._client.order.create(body, timeout=self._timeout)))

    async def order_payments(self, order_id: str) -> list[ProviderPayment]:
        found = await self._call(lambda: self._client.order.payments(order_id, timeout=self._timeout))
        return [payment_from_entity(item) for item in found.get("items") or []]

    async def create_recurring_payment(self, order_id: str, customer_id: str, token_id: str, amount_minor: int,
                                       currency: str, email: str, contact: str, notes: dict[str, str]) -> str:
        body = {"email": email, "contact": contact, "amount": amount_minor, "currency": currency,
                "order_id": order_id, "customer_id": customer_id, "token": token_id, "recurring": "1",
                "notes": notes}
        made = await self._call(lambda: self._client.payment.createRecurring(body, timeout=self._timeout))
        return str(made.get("razorpay_payment_id") or "")

    async def pause_token(self, customer_id: str, token_id: str) -> None:
        path = f"/v1/customers/{customer_id}/tokens/{token_id}/pause"
        await self._call(lambda: self._client.token.post_url(path, {}, timeout=self._timeout))

    async def cancel_token(self, customer_id: str, token_id: str) -> None:
        await self._call(lambda: self._client.token.delete(customer_id, token_id, timeout=self._timeout))

    async def list_payments(self, start: int, end: int) -> list[ProviderPayment]:
        return [payment_from_entity(item) for item in await self._listed(self._client.payment, start, end)]

    async def list_refunds(self, start: int, end: int) -> list[ProviderRefund]:
        return [refund_from_entity(item) for item in await self._listed(self._client.refund, start, end)]

    async def _listed(self, resource: Any, start: int, end: int) -> list[dict[str, Any]]:
        """Every item of a listing (``GET /v1/payments?from=&to=&skip=&count=``), page by page."""
        found: list[dict[str, Any]] = []
        while True:
            query = {"from": start, "to": end, "skip": len(found), "count": PAGE}
            page = await self._call(lambda q=query: resource.all(q, timeout=self._timeout))
            items = page.get("items") or []
            found.extend(items)
            if len(items) < PAGE:
                return found

    async def close(self) -> None:
        await asyncio.to_thread(self._session.close)

    async def _call(self, request: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._in_thread, request)

    def _in_thread(self, request: Callable[[], T]) -> T:
        self._local.response = None
        try:
            result = request()
        except requests.exceptions.ConnectTimeout:
            raise ProviderFailure(FailureKind.UNAVAILABLE, description="could not connect in time") from None
        except requests.exceptions.ConnectionError as error:
            # Refused or reset: the provider never answered, so nothing is known to be done; the retry of an
            # order looks it up first, and a refund resends its idempotency key.
            raise ProviderFailure(FailureKind.UNAVAILABLE, description=type(error).__name__) from None
        except requests.exceptions.Timeout:
            raise ProviderFailure(FailureKind.UNKNOWN, description="no answer in time") from None
        except (razorpay.errors.BadRequestError, razorpay.errors.GatewayError, razorpay.errors.ServerError,
                requests.exceptions.RequestException, ValueError) as error:
            raise self._failure(error) from None
        if not isinstance(result, dict):
            raise ProviderFailure(FailureKind.UNKNOWN, description="the answer was not a JSON object")
        return result  # type: ignore[return-value]

    def _failure(self, error: Exception) -> ProviderFailure:
        response: requests.Response | None = getattr(self._local, "response", None)
        if response is None:
            return ProviderFailure(FailureKind.UNAVAILABLE, description=type(error).__name__)
        status = response.status_code
        fields: dict[str, Any] = {}
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                fields = body["error"]
        except ValueError:
            pass
        kind = FailureKind.REJECTED if 400 <= status < 500 else FailureKind.UNAVAILABLE
        if status in (408, 429):  # the provider asks us to come back: not a refusal of the request itself
            kind = FailureKind.UNAVAILABLE
        return ProviderFailure(
            kind, http_status=status,
            **{name: str(fields.get(name) or "")[:500] for name in ("code", "description", "field", "reason",
                                                                       "source", "step")},
        )
