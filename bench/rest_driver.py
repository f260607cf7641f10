"""REST batch ingest through the gateway: pre-built JSON bodies posted by a few concurrent connections."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class RestResult:
    events: int
    seconds: float
    accepted: int
    duplicate: int
    rejected: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def post_batches(
    gateway_url: str, api_key: str, bodies: Sequence[bytes], events: int, concurrency: int = 4
) -> RestResult:
    """POST every body to /api/v1/events over ``concurrency`` keep-alive connections; time first to last reply."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    totals = [0, 0, 0]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            while not queue.empty():
                response = await client.post("/api/v1/events", content=queue.get_nowait())
                if response.status_code != 202:
                    raise RuntimeError(f"POST /api/v1/events: HTTP {response.status_code} {response.text[:300]}")
                body = json.loads(response.content)
                totals[0] += body["accepted"]
                totals[1] += body["duplicates"]
                totals[2] += body["rejected"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return RestResult(events, seconds, *totals)
