"""`python -m sandboxes.smtp`: a local SMTP server that keeps every message, and a web page to read them.

Flags override SMTP_SANDBOX_* variables, which override the defaults in settings.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from pydantic import ValidationError

from sandboxes.smtp.runner import start
from sandboxes.smtp.settings import MailboxSettings

FLAGS = {
    "host": str, "smtp_port": int, "http_port": int, "store_dir": Path, "max_messages": int,
    "max_message_bytes": int, "username": str, "password": str, "tls_cert_file": Path, "tls_key_file": Path,
    "server_name": str,
}


def parse(argv: list[str] | None = None) -> MailboxSettings:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.smtp", description=__doc__)
    for name, kind in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None)
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    try:
        return MailboxSettings(**given)
    except ValidationError as exc:
        parser.exit(2, f"smtp mailbox: invalid settings:\n{exc}\n")


async def main(settings: MailboxSettings) -> None:
    # uvicorn's own signal handlers are not installed when it is started as a task: ours end it cleanly.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    servers = await start(settings)
    print(f"smtp mailbox listening on smtp://{servers.smtp_host}:{servers.smtp_port}, web {servers.http_url}",
          flush=True)
    auth = f"AUTH required as {settings.username!r}" if settings.username else "no AUTH required (any login accepted)"
    tls = "STARTTLS offered" if settings.tls_cert_file else "no TLS"
    print(f"  {auth}; {tls}; JSON API at {servers.http_url}/api/docs", flush=True)
    kept = servers.mailbox.store
    print(f"  {len(kept.all())} messages kept in {settings.store_dir}" if settings.store_dir
          else "  messages kept in memory only", flush=True)
    waiter = asyncio.create_task(stopping.wait())
    await asyncio.wait({servers.http_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    await servers.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("sandboxes.smtp").setLevel(logging.INFO)  # one line per message received or fault met
    asyncio.run(main(parse()))
