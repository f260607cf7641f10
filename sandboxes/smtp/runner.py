"""Running the mailbox: inside the current event loop for tests, or as the process `python -m sandboxes.smtp`
serves. Both servers, SMTP and HTTP, share the loop and the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from sandboxes.smtp.app import build_app
from sandboxes.smtp.control import MailboxControl
from sandboxes.smtp.message import ReceivedMessage
from sandboxes.smtp.settings import MailboxSettings
from sandboxes.smtp.smtp_server import MailboxHandler, SmtpListener
from sandboxes.smtp.state import Mailbox


@dataclass
class Servers:
    """Both listeners of one mailbox, once started: where they are and how to stop them."""

    mailbox: Mailbox
    smtp: SmtpListener
    http: uvicorn.Server
    http_task: asyncio.Task[None]
    smtp_host: str
    smtp_port: int
    http_url: str

    async def stop(self) -> None:
        self.http.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.http_task
        await self.smtp.stop()


async def start(settings: MailboxSettings) -> Servers:
    """Start SMTP, then HTTP, and return once both ports are bound."""
    mailbox = Mailbox.from_settings(settings)
    smtp = SmtpListener(settings, MailboxHandler(mailbox.store, mailbox.faults))
    smtp_host, smtp_port = await smtp.start()
    mailbox.smtp_address = f"{smtp_host}:{smtp_port}"
    http = uvicorn.Server(uvicorn.Config(
        build_app(mailbox), host=settings.host, port=settings.http_port, log_level="warning", lifespan="off",
        timeout_graceful_shutdown=1, access_log=False,
    ))
    task = asyncio.create_task(http.serve())
    try:
        while not http.started:
            if task.done():
                task.result()  # raises the start-up error
                raise RuntimeError("the mailbox's web server stopped during start-up")
            await asyncio.sleep(0.01)
    except BaseException:
        await smtp.stop()
        raise
    host, port = http.servers[0].sockets[0].getsockname()[:2]
    return Servers(mailbox, smtp, http, task, smtp_host, smtp_port, f"http://{host}:{port}")


@dataclass
class RunningMailbox:
    """A started mailbox: where it listens, the credentials it wants, its messages and a client of its API."""

    smtp_host: str
    smtp_port: int
    http_url: str
    username: str | None
    password: str | None
    control: MailboxControl
    mailbox: Mailbox  # the in-process state, for assertions the API does not offer

    def messages(self) -> list[ReceivedMessage]:
        """Every kept message, parsed, oldest first."""
        return self.mailbox.store.all()

    async def wait_for(
        self, match: int | Callable[[ReceivedMessage], bool] = 1, timeout: float = 5.0, *, count: int | None = None
    ) -> list[ReceivedMessage]:
        """Wait until `count` messages match (a count, or a predicate on one message); returns the matching ones."""
        return await self.mailbox.store.wait_for(match, timeout, count=count)


@contextlib.asynccontextmanager
async def running_mailbox(settings: MailboxSettings | None = None, **overrides: Any) -> AsyncIterator[RunningMailbox]:
    """Run a mailbox in this event loop, SMTP and HTTP on free ports unless given, for the length of the block.

    `overrides` are MailboxSettings fields, e.g. `username="mailer", password="secret", store_dir=tmp_path`.
    """
    values = {"smtp_port": 0, "http_port": 0, **(settings.model_dump() if settings else {}), **overrides}
    servers = await start(MailboxSettings(**values))
    control = MailboxControl(servers.http_url)
    try:
        yield RunningMailbox(
            smtp_host=servers.smtp_host, smtp_port=servers.smtp_port, http_url=servers.http_url,
            username=servers.mailbox.settings.username, password=servers.mailbox.settings.password,
            control=control, mailbox=servers.mailbox,
        )
    finally:
        await control.aclose()
        await servers.stop()
