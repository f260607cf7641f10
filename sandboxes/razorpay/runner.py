"""Running the sandbox: inside the current event loop for tests, or as the process `python -m sandboxes.razorpay`
serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from sandboxes.razorpay.app import build_app
from sandboxes.razorpay.control import SandboxControl
from sandboxes.razorpay.ids import reset_clock
from sandboxes.razorpay.settings import SandboxSettings
from sandboxes.razorpay.state import Sandbox


@dataclass
class RunningSandbox:
    """A started sandbox: where it listens, the credentials it accepts, and a client of its control API."""

    url: str
    key_id: str
    key_secret: str
    webhook_secret: str
    control: SandboxControl
    sandbox: Sandbox  # the in-process state, for assertions the control API does not offer


def server_for(settings: SandboxSettings) -> tuple[uvicorn.Server, Sandbox]:
    sandbox = Sandbox.from_settings(settings)
    config = uvicorn.Config(
        build_app(sandbox), host=settings.host, port=settings.port, log_level="warning", lifespan="off",
        timeout_graceful_shutdown=1, access_log=False,
    )
    return uvicorn.Server(config), sandbox


async def start(server: uvicorn.Server, sandbox: Sandbox) -> tuple[asyncio.Task[None], str]:
    """Start serving and return once the port is bound, with the URL it is reachable at."""
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("razorpay sandbox stopped during start-up")
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    url = f"http://{host}:{port}"
    sandbox.bind(url)
    reset_clock()
    sandbox.ledger.resume()
    return task, url


async def stop(server: uvicorn.Server, task: asyncio.Task[None], sandbox: Sandbox) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sandbox.ledger.stop()
    sandbox.recurring.stop()
    await sandbox.webhooks.close()


@contextlib.asynccontextmanager
async def running_sandbox(settings: SandboxSettings | None = None, **overrides: Any) -> AsyncIterator[RunningSandbox]:
    """Run a sandbox in this event loop on a free port (`port=0` unless given), for the length of the block.

    `overrides` are SandboxSettings fields, e.g. `webhook_url=..., webhook_retry_initial_seconds=0.2`.
    """
    values = {"port": 0, **(settings.model_dump() if settings else {}), **overrides}
    server, sandbox = server_for(SandboxSettings(**values))
    task, url = await start(server, sandbox)
    control = SandboxControl(url)
    try:
        yield RunningSandbox(
            url=url,
            key_id=sandbox.settings.key_id,
            key_secret=sandbox.settings.key_secret,
            webhook_secret=sandbox.settings.webhook_secret,
            control=control,
            sandbox=sandbox,
        )
    finally:
        await control.aclose()
        await stop(server, task, sandbox)
