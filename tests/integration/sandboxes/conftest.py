"""A Razorpay sandbox per test, driven through the official SDK, and a webhook receiver that records what arrives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import razorpay
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxes.razorpay import RunningSandbox, running_sandbox
from tests.shared_fixtures import RAZORPAY_FIXTURES

FIXTURES = RAZORPAY_FIXTURES


def fixture(name: str) -> dict[str, Any]:
    """A body Razorpay published, as stored in the shared fixtures (never edited)."""
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.json["event"]


@dataclass
class WebhookReceiver:
    """Records every POST; answers the statuses queued in `answers` first, then 200."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        self._changed.set()
        return Response(status_code=self.answers.pop(0) if self.answers else 200)

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while not predicate(self.received):
                self._changed.clear()
                await self._changed.wait()
        return self.received

    async def wait_for_events(self, *events: str, timeout: float = 5.0) -> list[Received]:
        """Wait until every named event has arrived at least once."""
        await self.wait_for(lambda got: set(events) <= {item.event for item in got}, timeout)
        return self.received

    def of(self, event: str) -> list[Received]:
        return [item for item in self.received if item.event == event]


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("webhook receiver stopped during start-up")
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = Starlette(routes=[Route("/webhooks/razorpay", receiver.handle, methods=["POST"])])
    async with serving(app) as url:
        receiver.url = f"{url}/webhooks/razorpay"
        yield receiver


@pytest.fixture
async def sandbox(receiver: WebhookReceiver) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(
        key_id="rzp_test_SandboxKey0001",
        key_secret="test_key_secret",
        webhook_secret="test_webhook_secret",
        webhook_url=receiver.url,
        webhook_retry_initial_seconds=0.2,
        webhook_max_attempts=4,
    ) as running:
        yield running


@dataclass
class Sdk:
    """The official SDK pointed at the sandbox; `call` runs one of its (blocking) methods in a thread."""

    client: razorpay.Client

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, *args, **kwargs)


@pytest.fixture
def rzp(sandbox: RunningSandbox) -> Sdk:
    return Sdk(razorpay.Client(auth=(sandbox.key_id, sandbox.key_secret), base_url=sandbox.url))


async def paid_order(rzp: Sdk, sandbox: RunningSandbox, amount: int = 50000, **pay: Any) -> tuple[dict, dict]:
    """An order created through the SDK and paid through the control API: (order, payment)."""
    order = await rzp.call(rzp.client.order.create, {"amount": amount, "currency": "INR", "receipt": "rcpt-1"})
    payment = await sandbox.control.pay_order(order["id"], **pay)
    return order, payment
