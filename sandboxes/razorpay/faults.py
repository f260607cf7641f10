"""Armed failures of the REST API: the next N calls matching a method and path prefix answer a 5xx in Razorpay's
SERVER_ERROR shape, or hang first (longer than the client's timeout, to simulate one)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandboxes.razorpay.errors import server_error

# Where checkout.py serves the sandbox's Checkout.js: under /v1 like Razorpay's, but not part of the API.
CHECKOUT_JS = "/v1/checkout.js"


@dataclass
class Fault:
    path_prefix: str = "/v1/"
    method: str | None = None  # None matches every method
    status: int | None = 500  # 500, 502 or 503; None: after hanging, answer normally
    hang_seconds: float = 0.0
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and path.startswith(self.path_prefix) and self.method in (None, method.upper())


@dataclass
class FaultInjector:
    faults: list[Fault] = field(default_factory=list)
    injected: int = 0

    def arm(self, fault: Fault) -> None:
        if fault.method is not None:
            fault.method = fault.method.upper()
        self.faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                self.injected += 1
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [asdict(fault) for fault in self.faults if fault.times > 0]

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Only the Razorpay API (/v1) is faulted: the control API, the checkout page and Checkout.js (served
        from checkout.razorpay.com, not the API, by Razorpay) stay reachable."""
        path = request.url.path
        fault = self.take(request.method, path) if path.startswith("/v1") and path != CHECKOUT_JS else None
        if fault is None:
            return await call_next(request)
        if fault.hang_seconds:
            # Read the request first: a client that times out and hangs up while we hang must not stop the work
            # being done afterwards (that is what a hang stands for), and reading a body after a disconnect fails.
            await request.body()
            await asyncio.sleep(fault.hang_seconds)
        if fault.status is None:
            return await call_next(request)
        return server_error(fault.status).response()
