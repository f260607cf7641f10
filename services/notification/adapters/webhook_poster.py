"""Posting a webhook with httpx, and resolving endpoint hosts with the event loop's resolver."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import httpx
from prometheus_client import Counter, Histogram

# Enough of an answer to show an operator what the receiver said, never the whole of a large reply.
BODY_EXCERPT_BYTES = 1024

WEBHOOK_DELIVERIES = Counter(
    "billing_notification_webhook_deliveries_total",
    "Webhook POSTs to customers' endpoints, by result: 2xx, 3xx, 4xx, 5xx (the status class), or no_answer "
    "(timeout, refused connection, TLS failure).",
    ["result"],
)
WEBHOOK_SECONDS = Histogram(
    "billing_notification_webhook_delivery_seconds",
    "Time for a customer's endpoint to answer a webhook POST (or to fail to).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


@dataclass(frozen=True)
class PostResult:
    # 0 when no HTTP answer came back (timeout, refused connection, TLS failure).
    status_code: int
    body_excerpt: str = ""
    duration_ms: int = 0
    error: str = ""


class HttpxPoster:
    """One client (connection pool) for all endpoints; redirects are never followed, since a 3xx to an internal
    address would sidestep the address rule, and it counts as a failed attempt."""

    def __init__(self, timeout_seconds: float, user_agent: str = "billing-platform-webhooks/1") -> None:
        self._client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False,
                                         headers={"user-agent": user_agent}, trust_env=False)

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostResult:
        result = await self._post(url, headers, body)
        WEBHOOK_DELIVERIES.labels(f"{result.status_code // 100}xx" if result.status_code else "no_answer").inc()
        WEBHOOK_SECONDS.observe(result.duration_ms / 1000)
        return result

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> PostResult:
        started = time.monotonic()
        try:
            async with self._client.stream("POST", url, headers=headers, content=body) as response:
                excerpt = b""
                async for chunk in response.aiter_raw():
                    excerpt += chunk
                    if len(excerpt) >= BODY_EXCERPT_BYTES:
                        break
                text = excerpt[:BODY_EXCERPT_BYTES].decode("utf-8", "replace")
                return PostResult(response.status_code, text, _since(started))
        except httpx.TimeoutException as error:
            return PostResult(0, "", _since(started), f"timed out: {type(error).__name__}")
        except httpx.HTTPError as error:
            return PostResult(0, "", _since(started), f"{type(error).__name__}: {error}"[:500])

    async def close(self) -> None:
        await self._client.aclose()


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class LoopResolver:
    """Resolves with the running loop's getaddrinfo (a thread pool, so a slow DNS server blocks nothing)."""

    async def addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return []
        return sorted({str(info[4][0]) for info in infos})
