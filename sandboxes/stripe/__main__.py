"""``python -m sandboxes.stripe``: a local Stripe for ``make run`` and manual testing.

Flags override STRIPE_SANDBOX_* variables, which override the defaults in settings.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from pydantic import ValidationError

from sandboxes.stripe.runner import start, stop
from sandboxes.stripe.settings import LocalStripeSettings

FLAGS = {
    "host": str, "port": int, "secret_key": str, "publishable_key": str, "webhook_url": str, "webhook_secret": str,
    "webhook_delay_seconds": float, "webhook_retry_initial_seconds": float, "webhook_retry_max_seconds": float,
    "webhook_max_attempts": int, "webhook_timeout_seconds": float, "state_file": Path,
}


def parse(argv: list[str] | None = None) -> LocalStripeSettings:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.stripe", description=__doc__)
    for name, kind in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None)
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    try:
        return LocalStripeSettings(**given)
    except ValidationError as exc:
        parser.exit(2, f"local stripe: invalid settings:\n{exc}\n")


async def main(settings: LocalStripeSettings) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    runner, url, deliveries = await start(settings)
    print(f"local stripe listening on {url}", flush=True)
    print(f"  secret key {settings.secret_key}; webhooks to {settings.webhook_url or '(none)'}", flush=True)
    if settings.state_file:
        print(f"  state kept in {settings.state_file}", flush=True)
    await stopping.wait()
    await stop(runner, deliveries)


if __name__ == "__main__":
    asyncio.run(main(parse()))
