"""QuotaClient: "may this request go through?" and "what may this customer do?", asked of the platform's gateway
with a project's API key, with a short local cache so a busy API asks once a second, not once a request.

    async with QuotaClient("http://127.0.0.1:8080") as quotas:
        decision = await quotas.check_quota("bk_...", "api_calls")
        if not decision.allowed:
            ...  # 429, decision.retry_after_seconds, decision.message
        if await quotas.entitled("bk_...", "sso"):
            ...

A decision is the gateway's ``GET /api/v1/quota`` answer for the key's organisation; it is reused for
``cache_seconds`` (per key, metric and quantity), so it may be that much older than the platform's own bound
(docs/alerts-and-quotas.md). Entitlements are cached the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx

from billing_client.events import Value, decimal_string


class QuotaCheckFailed(Exception):
    """The gateway could not answer (unreachable, timed out, 5xx) or refused the question (4xx); ``status`` is
    the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class QuotaDecision:
    """The platform's answer: allowed or not, why, and the numbers behind it (exact decimal strings)."""

    allowed: bool
    reason: str
    message: str
    metric: str
    used: str
    limit: str | None
    remaining: str | None
    resets_at: datetime | None
    # The gateway's RateLimit-Policy / RateLimit fields, ready to pass on to your own client.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds until the quota resets (at least 1), for a ``Retry-After``."""
        if self.resets_at is None:
            return 1
        return max(1, int((self.resets_at - datetime.now(UTC)).total_seconds() + 0.999))


def _decision(body: dict[str, Any], headers: httpx.Headers) -> QuotaDecision:
    resets = body.get("resets_at")
    return QuotaDecision(
        allowed=bool(body["allowed"]), reason=body["reason"], message=body["message"], metric=body["metric"],
        used=body["used"], limit=body.get("limit"), remaining=body.get("remaining"),
        resets_at=datetime.fromisoformat(resets) if resets else None,
        headers={name: headers[name] for name in ("RateLimit-Policy", "RateLimit") if name in headers},
    )


class _TtlCache:
    """At most ``size`` answers, each for ``ttl`` seconds (monotonic clock), oldest evicted first."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()

    def get(self, key: tuple) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, key: tuple, value: Any) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class QuotaClient:
    """Quota checks and entitlements through the gateway (``gateway_url``, e.g. ``http://127.0.0.1:8080``).

    ``timeout_seconds`` bounds each HTTP call; ``cache_seconds`` is how long an answer is reused (0: never).
    ``http_client`` replaces the ``httpx.AsyncClient`` the client would create (it is not closed)."""

    def __init__(
        self,
        gateway_url: str,
        *,
        timeout_seconds: float = 0.5,
        cache_seconds: float = 1.0,
        max_cached: int = 10_000,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http_client or httpx.AsyncClient(base_url=gateway_url.rstrip("/"), timeout=timeout_seconds)
        self._owns_http = http_client is None
        self._timeout = timeout_seconds
        self._decisions = _TtlCache(cache_seconds, max_cached, clock)
        self._entitlements = _TtlCache(cache_seconds, max_cached, clock)
        # Concurrent requests for the same answer share one call.
        self._inflight: dict[tuple, asyncio.Future[Any]] = {}

    async def __aenter__(self) -> QuotaClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def check_quota(self, api_key: str, metric: str, quantity: Value = 1) -> QuotaDecision:
        """Whether the key's organisation may use ``quantity`` more of ``metric`` now. Raises QuotaCheckFailed."""
        amount = decimal_string(quantity)
        key = (_digest(api_key), metric, amount)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached

        async def ask() -> QuotaDecision:
            response = await self._get(api_key, "/api/v1/quota", {"metric": metric, "quantity": amount})
            decision = _decision(response.json(), response.headers)
            self._decisions.put(key, decision)
            return decision

        return await self._once(("quota", *key), ask)

    async def entitlements(self, api_key: str) -> dict[str, bool | Decimal | str]:
        """Every feature the key's organisation is granted: true/false, a number (as Decimal) or a word."""
        key = (_digest(api_key),)
        cached = self._entitlements.get(key)
        if cached is not None:
            return cached

        async def ask() -> dict[str, bool | Decimal | str]:
            response = await self._get(api_key, "/api/v1/entitlements", {})
            values = {e["feature"]: Decimal(e["value"]) if e["type"] == "number" else e["value"]
                      for e in response.json()["entitlements"]}
            self._entitlements.put(key, values)
            return values

        return await self._once(("entitlements", *key), ask)

    async def entitled(self, api_key: str, feature: str) -> bool | Decimal | str:
        """A feature's value; an unknown feature is ``False`` (not granted)."""
        return (await self.entitlements(api_key)).get(feature, False)

    async def _once(self, key: tuple, ask: Callable[[], Any]) -> Any:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.ensure_future(ask())
        self._inflight[key] = future
        try:
            return await asyncio.shield(future)
        finally:
            if future.done():
                self._inflight.pop(key, None)
            else:
                future.add_done_callback(lambda _: self._inflight.pop(key, None))

    async def _get(self, api_key: str, path: str, params: dict[str, str]) -> httpx.Response:
        try:
            response = await self._http.get(path, params=params, headers={"Authorization": f"Bearer {api_key}"},
                                            timeout=self._timeout)
        except httpx.HTTPError as error:
            raise QuotaCheckFailed(f"gateway unreachable: {type(error).__name__}") from error
        if response.status_code != 200:
            try:
                detail = str(response.json().get("detail", ""))[:200]
            except ValueError:
                detail = ""
            raise QuotaCheckFailed(f"gateway answered {response.status_code}: {detail}", response.status_code)
        return response


def _digest(api_key: str) -> bytes:
    """Cache keys hold a digest of the key, never the secret itself."""
    return hashlib.sha256(api_key.encode()).digest()
