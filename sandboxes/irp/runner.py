"""Running the IRP sandbox: inside the current event loop for tests, or as ``python -m sandboxes.irp``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from sandboxes.irp.app import build_app
from sandboxes.irp.control import IrpControl
from sandboxes.irp.irp import Irp
from sandboxes.irp.settings import IrpSandboxSettings


@dataclass
class RunningIrp:
    """A started sandbox: where it listens, its credentials and public keys, and its in-process state."""

    url: str
    settings: IrpSandboxSettings
    irp: Irp

    @property
    def auth_public_key(self) -> str:
        return self.irp.auth_keys.public_pem

    @property
    def signing_public_key(self) -> str:
        return self.irp.signing_keys.public_pem

    async def advance(self, seconds: float) -> None:
        """Move the sandbox's clock on, through its control API (as a test in another process would)."""
        control = IrpControl(self.url)
        try:
            await control.advance(seconds)
        finally:
            await control.aclose()

    async def outage(self, calls: int) -> None:
        control = IrpControl(self.url)
        try:
            await control.outage(calls)
        finally:
            await control.aclose()


def server_for(settings: IrpSandboxSettings) -> tuple[uvicorn.Server, Irp]:
    irp = Irp.from_settings(settings)
    config = uvicorn.Config(
        build_app(irp),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        access_log=False,
    )
    return uvicorn.Server(config), irp


async def start(server: uvicorn.Server) -> tuple[asyncio.Task[None], str]:
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("irp sandbox stopped during start-up")
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return task, f"http://{host}:{port}"


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def running_irp(**overrides: Any) -> AsyncIterator[RunningIrp]:
    """Run an IRP sandbox in this event loop on a free port for the length of the block."""
    settings = IrpSandboxSettings(**{"port": 0, **overrides})
    server, irp = server_for(settings)
    task, url = await start(server)
    try:
        yield RunningIrp(url, settings, irp)
    finally:
        await stop(server, task)
