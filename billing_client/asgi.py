"""UsageMiddleware: quotas in front of, and usage events behind, a customer's own ASGI API (FastAPI, Starlette).

Before a request: ask the platform whether the caller's organisation may use the metric (a cached answer
within ``cache_seconds``, a fresh one within ``check_timeout_seconds``); refuse with 429, ``Retry-After`` and the
platform's ``RateLimit`` fields when it may not. After the response has gone out: send a usage event through an
:class:`~billing_client.EventSender` (batched, exactly once), never holding up the response.

    app.add_middleware(
        UsageMiddleware,
        resolve=lambda scope: Metered(api_key=tenant_key(scope), metric="api_calls"),
        gateway_url="http://127.0.0.1:8080", ingest_target="127.0.0.1:50051",
    )

See docs/client.md for a complete FastAPI example.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from billing_client.events import Value
from billing_client.quotas import QuotaCheckFailed, QuotaClient, QuotaDecision
from billing_client.sender import EventSender

log = logging.getLogger("billing_client")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Metered:
    """What a request uses: the caller's organisation (through its project's API key), the metric and how much.
    ``dimensions`` go on the usage event."""

    api_key: str
    metric: str
    quantity: Value = 1
    dimensions: Mapping[str, str] | None = None


Resolver = Callable[[Scope], "Metered | None | Awaitable[Metered | None]"]


class SenderPool:
    """One EventSender per API key (each organisation's events go with its own project's key), started on first
    use and closed together."""

    def __init__(self, ingest_target: str, **sender_options: Any) -> None:
        self._target = ingest_target
        self._options = sender_options
        self._senders: dict[str, EventSender] = {}

    def sender(self, api_key: str) -> EventSender:
        sender = self._senders.get(api_key)
        if sender is None:
            sender = self._senders[api_key] = EventSender(self._target, api_key, **self._options)
            sender.start()
        return sender

    async def close(self, timeout: float | None = 10.0) -> None:
        senders, self._senders = list(self._senders.values()), {}
        results = await asyncio.gather(*(s.close(timeout) for s in senders), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("usage sender did not close cleanly: %s", type(result).__name__)


class UsageMiddleware:
    """See the module's docstring. ``fail_open`` (default True): when the platform cannot answer in time, let the
    request through (and still send its usage); False answers 503 instead. Responses with a status for which
    ``counts(status)`` is false (default: 5xx) send no usage event."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolve: Resolver,
        gateway_url: str = "",
        ingest_target: str = "",
        quotas: QuotaClient | None = None,
        senders: SenderPool | None = None,
        check_quota: bool = True,
        send_usage: bool = True,
        fail_open: bool = True,
        check_timeout_seconds: float = 0.25,
        cache_seconds: float = 1.0,
        counts: Callable[[int], bool] = lambda status: status < 500,
    ) -> None:
        if check_quota and quotas is None and not gateway_url:
            raise ValueError("give gateway_url (or a QuotaClient) to check quotas, or check_quota=False")
        if send_usage and senders is None and not ingest_target:
            raise ValueError("give ingest_target (or a SenderPool) to send usage, or send_usage=False")
        self.app = app
        self._resolve = resolve
        self._quotas = (quotas or QuotaClient(gateway_url, timeout_seconds=check_timeout_seconds,
                                              cache_seconds=cache_seconds)) if check_quota else None
        self._senders = (senders or SenderPool(ingest_target)) if send_usage else None
        self._fail_open = fail_open
        self._timeout = check_timeout_seconds
        self._counts = counts
        self._sending: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metered = self._resolve(scope)
        if inspect.isawaitable(metered):
            metered = await metered
        if metered is None:
            await self.app(scope, receive, send)
            return
        decision = await self._decide(metered) if self._quotas is not None else None
        if decision is not None and not decision.allowed:
            await _refuse(send, 429, "quota_exceeded", decision.message,
                          {**decision.headers, "Retry-After": str(decision.retry_after_seconds)})
            return
        if decision is None and self._quotas is not None and not self._fail_open:
            await _refuse(send, 503, "quota_unavailable", "usage limits cannot be checked right now; retry shortly",
                          {"Retry-After": "1"})
            return
        status = 500
        extra = _encoded(decision.headers) if decision is not None else []

        async def send_through(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._record(metered, status)

        await self.app(scope, receive, send_through)

    async def _decide(self, metered: Metered) -> QuotaDecision | None:
        """The platform's decision, or None when it could not be had in time."""
        assert self._quotas is not None
        try:
            return await asyncio.wait_for(
                self._quotas.check_quota(metered.api_key, metered.metric, metered.quantity), self._timeout
            )
        except (QuotaCheckFailed, TimeoutError) as error:
            log.warning("quota check failed (%s): request %s", error or type(error).__name__,
                        "let through" if self._fail_open else "refused")
            return None

    def _record(self, metered: Metered, status: int) -> None:
        if self._senders is None or not self._counts(status):
            return
        task = asyncio.ensure_future(self._senders.sender(metered.api_key).send(
            metered.metric, metered.quantity, dimensions=dict(metered.dimensions or {})))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[Any]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("usage event not queued: %s", type(task.exception()).__name__)

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        async def wrapped() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.aclose()
            return message

        return wrapped

    async def aclose(self) -> None:
        """Send what is queued and close (done at the application's lifespan shutdown)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._senders is not None:
            await self._senders.close()
        if self._quotas is not None:
            await self._quotas.aclose()


async def _refuse(send: Send, status: int, error: str, detail: str, headers: Mapping[str, str]) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *_encoded(headers)]})
    await send({"type": "http.response.body", "body": body})


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
