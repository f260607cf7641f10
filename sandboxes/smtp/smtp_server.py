"""The SMTP side: aiosmtpd's protocol on an asyncio server in the current loop, keeping what it accepts.

aiosmtpd's `Controller` would run its own loop in a thread; serving from the caller's loop instead lets async tests
and the web page share the store without locks.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import warnings
import weakref
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandboxes.smtp.faults import Fault, FaultPlan, Stage
from sandboxes.smtp.settings import MailboxSettings
from sandboxes.smtp.store import MessageStore

log = logging.getLogger("sandboxes.smtp")
IDENT = "billing-platform local mailbox"


class _QuietAiosmtpd(logging.Filter):
    """aiosmtpd warns on every connection that AUTH without TLS is unsafe, and on every login about its own
    deprecated `login_data`: both are by design here (a local server), so they would only bury real news."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not (text.startswith("auth_required == True but auth_require_tls") or "login_data is deprecated" in text)


logging.getLogger("mail.log").addFilter(_QuietAiosmtpd())


class MailboxHandler:
    """aiosmtpd's hooks: the armed faults get the first word at each stage, then the message is kept."""

    def __init__(self, store: MessageStore, faults: FaultPlan) -> None:
        self.store = store
        self.faults = faults

    async def _fault(self, server: SMTP, stage: Stage, envelope: Envelope, recipients: list[str]) -> str | None:
        fault = self.faults.take(stage, envelope, recipients)
        if fault is None:
            return None
        log.info("mailbox: fault %s at %s for %s", fault.id, stage, recipients or envelope.mail_from)
        return await _misbehave(server, fault)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if (status := await self._fault(server, "MAIL", envelope, [])) is not None:
            return status
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if (status := await self._fault(server, "RCPT", envelope, [address])) is not None:
            return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (status := await self._fault(server, "DATA", envelope, list(envelope.rcpt_tos))) is not None:
            return status
        assert isinstance(envelope.original_content, bytes)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        message = self.store.add(
            envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content,
            peer=":".join(str(part) for part in session.peer[:2]) if session.peer else None,
            authenticated_as=login.decode(errors="replace") if login else None,
        )
        log.info("mailbox: received %s from %s to %s: %r", message.id, message.mail_from, ", ".join(message.rcpt_tos),
                 message.subject)
        return f"250 2.0.0 OK: queued as {message.id}"


async def _misbehave(server: SMTP, fault: Fault) -> str | None:
    """Hang, then answer the fault's reply; a closing fault never returns (the connection's task is cancelled)."""
    if fault.hang_seconds:
        await asyncio.sleep(fault.hang_seconds)
    if not fault.closes_connection:
        return fault.reply
    if fault.reply is not None:
        await server.push(fault.reply)
    assert server.transport is not None
    server.transport.close()
    # aiosmtpd cancels this connection's task once the transport reports the loss; returning would push a reply.
    await asyncio.Event().wait()
    return None  # pragma: no cover - cancelled above


def _authenticator(settings: MailboxSettings):  # noqa: ANN202 - aiosmtpd's callback shape
    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        if settings.username is None:
            return AuthResult(success=True, auth_data=auth_data)  # no credentials configured: any login passes
        assert settings.password is not None
        good = hmac.compare_digest(auth_data.login, settings.username.encode()) & hmac.compare_digest(
            auth_data.password, settings.password.encode())
        if not good:
            return AuthResult(success=False, handled=False)  # handled=False: aiosmtpd answers 535 for us
        return AuthResult(success=True, auth_data=auth_data)

    return authenticate


def tls_context(settings: MailboxSettings) -> ssl.SSLContext | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


class SmtpListener:
    """The listening socket and the sessions it opened, so stopping also ends sessions clients keep open."""

    def __init__(self, settings: MailboxSettings, handler: MailboxHandler) -> None:
        self.settings = settings
        self.handler = handler
        self._context = tls_context(settings)
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        settings = self.settings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the AUTH-without-TLS warning, wanted here (see _QuietAiosmtpd)
            smtp = SMTP(
                self.handler, hostname=settings.server_name, ident=IDENT, data_size_limit=settings.max_message_bytes,
                enable_SMTPUTF8=True, tls_context=self._context, auth_required=settings.auth_required,
                auth_require_tls=False, authenticator=_authenticator(settings), timeout=60,
            )
        self._sessions.add(smtp)
        return smtp

    async def start(self) -> tuple[str, int]:
        """Listen on settings.host:smtp_port in the running loop; returns the address bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.settings.host, self.settings.smtp_port)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for smtp in list(self._sessions):
            if smtp.transport is not None:
                smtp.transport.close()
        await self._server.wait_closed()
        self._server = None
