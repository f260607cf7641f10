"""Driving the local Stripe as a payer and as its operator, for tests and demos.

A payer confirms a PaymentIntent in the browser with Stripe.js; here the same happens through the official SDK:
the card is attached (``pm_card_visa``, or ``pm_card_chargeCustomerFail`` to be declined) and the intent
confirmed. ``set_webhook`` points localstripe's endpoint at a URL (localstripe's own ``/_config/webhooks`` API).
"""

from __future__ import annotations

from typing import Any

import httpx
import stripe

SUCCEEDS = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"


class LocalStripeControl:
    def __init__(self, url: str, secret_key: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._secret_key = secret_key
        self._http = stripe.HTTPXClient(timeout=timeout)
        self.client = stripe.StripeClient(secret_key, base_addresses={"api": self.url}, http_client=self._http,
                                          max_network_retries=0)

    async def pay(self, payment_intent: str, payment_method: str = SUCCEEDS) -> dict[str, Any]:
        """Attach a card to the intent and confirm it, as Stripe.js's confirmPayment does; returns the intent.
        A declined card answers 402 at Stripe; the intent then waits for another payment method."""
        await self.client.v1.payment_intents.update_async(payment_intent, {"payment_method": payment_method})
        try:
            confirmed = await self.client.v1.payment_intents.confirm_async(payment_intent)
        except stripe.CardError:
            confirmed = await self.client.v1.payment_intents.retrieve_async(payment_intent)
        return confirmed.to_dict()

    async def decline(self, payment_intent: str) -> dict[str, Any]:
        return await self.pay(payment_intent, DECLINED)

    async def refund(self, payment_intent: str, amount: int | None = None) -> dict[str, Any]:
        """A refund made in Stripe's dashboard, not through payments."""
        params: dict[str, Any] = {"payment_intent": payment_intent}
        if amount is not None:
            params["amount"] = amount
        return (await self.client.v1.refunds.create_async(params)).to_dict()

    async def set_webhook(self, url: str, secret: str, events: list[str] | None = None) -> None:
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(f"{self.url}/_config/webhooks/billing", json=body,
                                       headers={"Authorization": f"Bearer {self._secret_key}"})
            answer.raise_for_status()

    async def aclose(self) -> None:
        await self._http.close_async()
