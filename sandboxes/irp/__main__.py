"""`python -m sandboxes.irp`: a local IRP (NIC's e-invoice API) for `make run` and manual testing.

Flags override IRP_SANDBOX_* variables, which override the defaults in settings.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from pydantic import ValidationError

from sandboxes.irp.runner import server_for, start, stop
from sandboxes.irp.settings import IrpSandboxSettings

FLAGS = {
    "host": str,
    "port": int,
    "client_id": str,
    "client_secret": str,
    "username": str,
    "password": str,
    "key_dir": Path,
    "token_minutes": int,
    "state_file": Path,
}


def parse(argv: list[str] | None = None) -> IrpSandboxSettings:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.irp", description=__doc__)
    for name, kind in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None)
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    try:
        return IrpSandboxSettings(**given)
    except ValidationError as exc:
        parser.exit(2, f"irp sandbox: invalid settings:\n{exc}\n")


async def main(settings: IrpSandboxSettings) -> None:
    server, irp = server_for(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    task, url = await start(server)
    print(f"irp sandbox listening on {url}", flush=True)
    print(f"  client id {settings.client_id}; control API at {url}/_sandbox/docs", flush=True)
    if settings.key_dir:
        print(
            f"  keys in {settings.key_dir} (auth.public.pem encrypts the AppKey; signing.public.pem verifies)",
            flush=True,
        )
    waiter = asyncio.create_task(stopping.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    await stop(server, task)


if __name__ == "__main__":
    asyncio.run(main(parse()))
