"""`python -m sandboxes.razorpay`: a local Razorpay for `make run` and manual testing.

Flags override RAZORPAY_SANDBOX_* variables, which override the defaults in settings.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from pydantic import ValidationError

from sandboxes.razorpay.runner import server_for, start, stop
from sandboxes.razorpay.settings import SandboxSettings

FLAGS = {
    "host": str, "port": int, "public_url": str, "key_id": str, "key_secret": str, "merchant_name": str,
    "account_id": str, "webhook_url": str, "webhook_secret": str, "webhook_retry_initial_seconds": float,
    "webhook_retry_max_seconds": float, "webhook_max_attempts": int, "webhook_timeout_seconds": float,
    "refund_settle_seconds": float, "state_file": Path,
}


def parse(argv: list[str] | None = None) -> SandboxSettings:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.razorpay", description=__doc__)
    for name, kind in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None)
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    try:
        return SandboxSettings(**given)
    except ValidationError as exc:
        parser.exit(2, f"razorpay sandbox: invalid settings:\n{exc}\n")


async def main(settings: SandboxSettings) -> None:
    server, sandbox = server_for(settings)
    # uvicorn's own signal handlers are not installed when it is started as a task: ours end it cleanly.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    task, url = await start(server, sandbox)
    print(f"razorpay sandbox listening on {url}", flush=True)
    print(f"  key id {settings.key_id}; checkout at {url}/checkout/<order_id>; control API at {url}/_sandbox/docs",
          flush=True)
    if settings.state_file:
        print(f"  state kept in {settings.state_file}", flush=True)
    waiter = asyncio.create_task(stopping.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    await stop(server, task, sandbox)


if __name__ == "__main__":
    asyncio.run(main(parse()))
