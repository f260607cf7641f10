"""A real HTTP receiver for webhooks (uvicorn + Starlette on a free port) that verifies every delivery with the
standardwebhooks library, as an organisation's endpoint would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    path: str
    webhook_id: str
    body: bytes
    headers: dict[str, str]
    # Which of the receiver's secrets for this path verified the delivery.
    verified_by: list[str]
    status: int


@dataclass
class Receiver:
    url: str = ""
    # Per path: secrets to verify with, and statuses to answer in turn (then 200).
    secrets: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        path = request.path_params["name"]
        body = await request.body()
        headers = dict(request.headers)
        verified = []
        for secret in self.secrets.get(path, []):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(secret)
            except WebhookVerificationError:
                pass
        queue = self.answers.get(path, [])
        status = queue.pop(0) if queue else 200
        self.received.append(Received(path, headers.get("webhook-id", ""), body, headers, verified, status))
        self._changed.set()
        return Response("ok" if status < 300 else f"answer {status}", status_code=status)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    receiver.url = f"http://{host}:{port}"
    yield receiver
    server.should_exit = True
    await task
