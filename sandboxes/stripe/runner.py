"""Running the local Stripe: inside the current event loop for tests, or as the process
``python -m sandboxes.stripe`` serves (``make run``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandboxes.stripe import patches
from sandboxes.stripe.control import LocalStripeControl
from sandboxes.stripe.settings import LocalStripeSettings

_running = False


@dataclass
class RunningLocalStripe:
    """A started local Stripe: where it listens, its keys and endpoint secret, and a payer/operator client."""

    url: str
    secret_key: str
    publishable_key: str
    webhook_secret: str
    control: LocalStripeControl
    deliveries: patches.Deliveries


async def start(settings: LocalStripeSettings) -> tuple[web.AppRunner, str, patches.Deliveries]:
    """Serve on settings.host:port (0: a free port); returns the runner, the URL and the webhook sender."""
    global _running
    if _running:
        raise RuntimeError("a local Stripe is already running in this process (localstripe keeps one store)")
    deliveries = patches.install(settings)
    runner = web.AppRunner(patches.build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
    _running = True
    return runner, f"http://{host}:{port}", deliveries


async def stop(runner: web.AppRunner, deliveries: patches.Deliveries) -> None:
    global _running
    for task in list(deliveries.tasks):
        task.cancel()
    await asyncio.gather(*deliveries.tasks, return_exceptions=True)
    await runner.cleanup()
    _running = False


@contextlib.asynccontextmanager
async def running_local_stripe(settings: LocalStripeSettings | None = None,
                               **overrides: Any) -> AsyncIterator[RunningLocalStripe]:
    """Run a local Stripe in this event loop on a free port (``port=0`` unless given), for the length of the block.
    ``overrides`` are LocalStripeSettings fields, e.g. ``webhook_url=..., webhook_delay_seconds=0.1``."""
    values = {"port": 0, **(settings.model_dump() if settings else {}), **overrides}
    settings = LocalStripeSettings(**values)
    runner, url, deliveries = await start(settings)
    control = LocalStripeControl(url, settings.secret_key)
    try:
        yield RunningLocalStripe(url, settings.secret_key, settings.publishable_key, settings.webhook_secret,
                                 control, deliveries)
    finally:
        await control.aclose()
        await stop(runner, deliveries)
