"""Sending over SMTP with aiosmtplib, and what the server's answer means.

A reply code decides: 2xx sent, 4xx (or no connection at all) transient, 5xx permanent. A connection that breaks
after it was made leaves the outcome unknown (the server may have queued the message before the line dropped),
which is never retried by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

import aiosmtplib
from prometheus_client import Counter

from services.notification.domain.messages import SendOutcome, outcome_of_reply

EMAILS = Counter("billing_notification_emails_total", "Emails handed to the SMTP server, by outcome (sent, transient, "
                 "permanent, unknown).", ["outcome"])


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    reply: str


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    # "none", "starttls" or "tls"
    security: str = "none"
    username: str = ""
    password: str = ""
    timeout_seconds: float = 30.0


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    sender = getaddresses([str(message["From"])])[0][1]
    headers = [str(value) for name in ("To", "Cc") for value in message.get_all(name, [])]
    return sender, [address for _, address in getaddresses(headers) if address]


def _flatten(message: EmailMessage) -> bytes:
    """The message as the builder made it (its own line-length policy): aiosmtplib's send_message flattens with
    email.policy.SMTP, whose 78-character lines fold a subject right after "Subject:"."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


class SmtpMailer:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def send(self, message: EmailMessage) -> SendResult:
        result = await self._send(message)
        EMAILS.labels(result.outcome.value).inc()
        return result

    async def _send(self, message: EmailMessage) -> SendResult:
        server = self._server
        client = aiosmtplib.SMTP(
            hostname=server.host, port=server.port, timeout=server.timeout_seconds,
            use_tls=server.security == "tls", start_tls=True if server.security == "starttls" else False,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError, OSError) as error:
            return SendResult(SendOutcome.TRANSIENT, f"cannot connect to {server.host}:{server.port}: {error}")
        except aiosmtplib.SMTPResponseException as error:
            return SendResult(outcome_of_reply(error.code), f"{error.code} {error.message}")
        try:
            if server.username:
                await client.login(server.username, server.password)
            refused, reply = await client.sendmail(*_envelope(message), _flatten(message))
        except aiosmtplib.SMTPRecipientsRefused as error:
            first = error.recipients[0]
            return SendResult(outcome_of_reply(first.code), f"{first.code} {first.message} ({first.recipient})")
        except aiosmtplib.SMTPResponseException as error:
            return SendResult(outcome_of_reply(error.code), f"{error.code} {error.message}")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as error:
            return SendResult(SendOutcome.UNKNOWN, f"the connection broke during the transfer: {error}")
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()
        note = f"; refused: {', '.join(refused)}" if refused else ""
        # aiosmtplib gives the text of the final reply; its code is 250, the only answer that accepts the data.
        return SendResult(SendOutcome.SENT, f"250 {reply}{note}")
