"""A typed async client of the sandbox's control API (/_sandbox), for tests.

    control = SandboxControl("http://127.0.0.1:PORT")
    payment = await control.pay_order(order_id, method="card", capture="manual")

Every method raises `SandboxControlError` (with Razorpay's error body) when the sandbox refuses.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

import httpx

Method = Literal["upi", "card", "netbanking", "wallet", "emandate"]
Capture = Literal["auto", "manual"]


class Delivery(TypedDict):
    """One line of the webhook delivery log: one copy of one event."""

    delivery_id: int
    event_id: str
    event: str
    copy: int
    attempts: int
    status_code: int | None
    delivered: bool
    finished: bool
    error: str | None
    forged: bool


class WebhookEvent(TypedDict):
    event_id: str
    event: str
    body: dict[str, Any]


class SandboxControlError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control call failed with HTTP {status}: {body}")
        self.status = status
        self.body = body


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class SandboxControl:
    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = await self._client.request(method, f"{self.base_url}/_sandbox{path}", json=json, params=params)
        body = response.json() if response.content else None
        if response.is_error:
            raise SandboxControlError(response.status_code, body)
        return body

    # ---- state
    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def reset(self) -> None:
        """Forget every object, event, delivery log line and armed fault."""
        await self._call("POST", "/reset")

    # ---- customers paying
    async def pay_order(
        self, order_id: str, *, method: Method = "upi", vpa: str | None = None, card_number: str | None = None,
        bank: str | None = None, wallet: str | None = None, capture: Capture | None = None,
        amount: int | None = None, email: str | None = None, contact: str | None = None,
        mandate: Literal["confirm", "reject", "pending"] | None = None,
    ) -> dict[str, Any]:
        """Pay the order as a customer would; `capture=None` follows the order's payment_capture. Returns the
        payment (authorized, captured, or failed for Razorpay's failing test VPA/card). On an authorisation order
        (recurring), `mandate` says what the bank does with the token (default: confirms it)."""
        body = _without_none(dict(method=method, vpa=vpa, card_number=card_number, bank=bank, wallet=wallet,
                                  capture=capture, amount=amount, email=email, contact=contact, mandate=mandate))
        return await self._call("POST", f"/orders/{order_id}/pay", body)

    async def fail_order(
        self, order_id: str, *, method: Method = "card", error_code: str | None = None,
        error_description: str | None = None, error_source: str | None = None, error_step: str | None = None,
        error_reason: str | None = None,
    ) -> dict[str, Any]:
        """A declined payment attempt on the order (payment.failed; the order becomes `attempted`)."""
        body = _without_none(dict(method=method, error_code=error_code, error_description=error_description,
                                  error_source=error_source, error_step=error_step, error_reason=error_reason))
        return await self._call("POST", f"/orders/{order_id}/fail", body)

    async def pay_payment_link(
        self, link_id: str, *, method: Method = "upi", vpa: str | None = None, card_number: str | None = None,
        capture: Capture | None = None, amount: int | None = None, fail: bool = False,
    ) -> dict[str, Any]:
        body = _without_none(dict(method=method, vpa=vpa, card_number=card_number, capture=capture, amount=amount,
                                  outcome="fail" if fail else "success"))
        return await self._call("POST", f"/payment_links/{link_id}/pay", body)

    # ---- refunds
    async def fail_next_refunds(self, count: int = 1) -> None:
        """The next `count` refunds created end in refund.failed."""
        await self._call("POST", "/refunds/fail-next", {"count": count})

    async def fail_refund(self, refund_id: str) -> dict[str, Any]:
        """Arm one pending refund to fail when it settles."""
        return await self._call("POST", f"/refunds/{refund_id}/fail")

    async def set_refund_settlement(self, mode: Literal["auto", "manual"]) -> None:
        """`manual` keeps new refunds pending until settle_refund()."""
        await self._call("PUT", "/refunds/settlement", {"mode": mode})

    async def settle_refund(
        self, refund_id: str, outcome: Literal["processed", "failed"] | None = None
    ) -> dict[str, Any]:
        return await self._call("POST", f"/refunds/{refund_id}/settle", {"outcome": outcome})

    # ---- faults of the REST API
    async def inject_fault(
        self, path_prefix: str = "/v1/", *, method: str | None = None, status: Literal[500, 502, 503] | None = 500,
        hang_seconds: float = 0.0, times: int = 1,
    ) -> list[dict[str, Any]]:
        """The next `times` /v1 calls matching answer `status` (after hanging `hang_seconds`; `status=None` hangs
        and then answers normally)."""
        body = {"path_prefix": path_prefix, "method": method, "status": status, "hang_seconds": hang_seconds,
                "times": times}
        return await self._call("POST", "/faults", body)

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    # ---- tampering, for reconciliation tests
    async def tamper_payment(
        self, payment_id: str, *, amount: int | None = None, currency: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        body = _without_none(dict(amount=amount, currency=currency, status=status))
        return await self._call("PATCH", f"/payments/{payment_id}", body)

    async def delete(self, kind: Literal["orders", "payments", "refunds", "payment_links"], object_id: str) -> None:
        await self._call("DELETE", f"/{kind}/{object_id}")

    async def create_orphan_payment(
        self, amount: int, *, currency: str = "INR", method: Method = "upi",
        status: Literal["authorized", "captured"] = "captured", notes: dict[str, str] | None = None,
        with_order: bool = True, notify: bool = False,
    ) -> dict[str, Any]:
        """A payment that none of our orders asked for."""
        body = dict(amount=amount, currency=currency, method=method, status=status, notes=notes or {},
                    with_order=with_order, notify=notify)
        return await self._call("POST", "/payments", body)

    # ---- webhooks
    async def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Where events go from now on (None: nowhere, only the log)."""
        await self._call("PUT", "/webhooks", {"url": url, "secret": secret})

    async def set_webhook_behaviour(
        self, *, duplicates: int = 0, delay_ms: int = 0, reorder_window: int = 0,
        reorder: Literal["reverse", "shuffle"] = "reverse", seed: int | None = None, wrong_secret: bool = False,
        events: int | None = None,
    ) -> dict[str, Any]:
        """How the next events (all, or the next `events`) are delivered."""
        body = dict(duplicates=duplicates, delay_ms=delay_ms, reorder_window=reorder_window, reorder=reorder,
                    seed=seed, wrong_secret=wrong_secret, events=events)
        return await self._call("PUT", "/webhooks/behaviour", body)

    async def flush_webhooks(self) -> int:
        """Release events held by a reorder window that has not filled."""
        return (await self._call("POST", "/webhooks/flush"))["released"]

    async def deliveries(self) -> list[Delivery]:
        return await self._call("GET", "/webhooks/deliveries")

    async def wait_for_deliveries(self, timeout: float = 10.0) -> list[Delivery]:
        """Wait until no delivery is in flight (retries included); returns the log."""
        return await self._call("POST", "/webhooks/idle", params={"timeout": timeout})

    async def events(self) -> list[WebhookEvent]:
        return await self._call("GET", "/webhooks/events")

    async def redeliver(self, event_id: str) -> Delivery:
        return await self._call("POST", f"/webhooks/events/{event_id}/redeliver")

    # ---- recurring payments
    async def advance_clock(self, seconds: int) -> dict[str, int]:
        """Move the sandbox clock forward; debits whose notice period has passed are made. Returns the new time
        and how many debits were made."""
        return await self._call("POST", "/clock/advance", {"seconds": seconds})

    async def clock(self) -> int:
        return (await self._call("GET", "/clock"))["now"]

    async def fail_next_debits(self, count: int = 1) -> None:
        await self._call("POST", "/recurring/fail-next-debits", {"count": count})

    async def fail_next_notifications(self, count: int = 1) -> None:
        await self._call("POST", "/recurring/fail-next-notifications", {"count": count})

    async def move_token(self, token_id: str, state: Literal["confirmed", "rejected", "paused", "cancelled"],
                         reason: str | None = None) -> dict[str, Any]:
        """The bank or the customer moves a mandate; its token.* webhook is sent."""
        return await self._call("POST", f"/tokens/{token_id}/state", _without_none({"state": state, "reason": reason}))
