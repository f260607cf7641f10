"""One accepted message: the bytes exactly as received, its envelope, and the parsed view pages and tests read.

Parsing uses the standard library's `email` package with `policy.default`, the same model the sending side builds
messages with, so headers come back decoded (RFC 2047 subjects, address lists) and bodies as text or bytes.
"""

from __future__ import annotations

import datetime as dt
import email
import mimetypes
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from functools import cached_property
from typing import Any


def _content(part: EmailMessage | None) -> str | None:
    """A body as text with the wire's CRLF line endings back to the newlines the sender wrote."""
    return None if part is None else part.get_content().replace("\r\n", "\n")


@dataclass(frozen=True)
class Attachment:
    """A part that is not one of the bodies shown (the HTML and text): a file, an inline image, a calendar..."""

    index: int
    filename: str
    content_type: str
    content: bytes
    disposition: str | None
    content_id: str | None

    def summary(self) -> dict[str, Any]:
        return {"index": self.index, "filename": self.filename, "content_type": self.content_type,
                "size": len(self.content), "disposition": self.disposition, "content_id": self.content_id}


@dataclass
class ReceivedMessage:
    id: str
    received_at: dt.datetime
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    peer: str | None = None
    authenticated_as: str | None = None

    @cached_property
    def email(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)  # policy.default builds EmailMessage objects
        return parsed

    def header(self, name: str) -> str | None:
        value = self.email[name]
        return None if value is None else str(value)

    def addresses(self, name: str) -> list[str]:
        """The address specs of every `name` header (To, Cc...); a malformed header gives what could be parsed."""
        found: list[str] = []
        for value in self.email.get_all(name, []):
            found += [address.addr_spec for address in getattr(value, "addresses", ())]
        return found

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @cached_property
    def _html_part(self) -> EmailMessage | None:
        return self.email.get_body(preferencelist=("html",))  # type: ignore[return-value]

    @cached_property
    def _text_part(self) -> EmailMessage | None:
        return self.email.get_body(preferencelist=("plain",))  # type: ignore[return-value]

    @property
    def html(self) -> str | None:
        return _content(self._html_part)

    @property
    def text(self) -> str | None:
        return _content(self._text_part)

    @cached_property
    def attachments(self) -> list[Attachment]:
        """Every leaf part except the bodies shown, numbered from 0 in message order."""
        bodies = {id(self._html_part), id(self._text_part)}
        found: list[Attachment] = []
        for part in self.email.walk():
            if part.is_multipart() or id(part) in bodies:
                continue
            content_type = part.get_content_type()
            filename = part.get_filename() or f"part-{len(found)}{mimetypes.guess_extension(content_type) or ''}"
            found.append(Attachment(
                index=len(found), filename=filename, content_type=content_type,
                content=part.get_payload(decode=True) or b"", disposition=part.get_content_disposition(),
                content_id=part.get("Content-ID"),
            ))
        return found

    def parts(self) -> list[dict[str, Any]]:
        """The MIME tree flattened: every part with its type, and for leaves their filename and decoded size."""
        rows = []
        for part in self.email.walk():
            leaf = not part.is_multipart()
            rows.append({"content_type": part.get_content_type(), "filename": part.get_filename(),
                         "disposition": part.get_content_disposition(),
                         "size": len(part.get_payload(decode=True) or b"") if leaf else None})
        return rows

    def summary(self) -> dict[str, Any]:
        """What a list shows: envelope, the headers people look for, and the attachments without their bytes."""
        return {
            "id": self.id, "received_at": self.received_at.isoformat(), "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos, "peer": self.peer, "authenticated_as": self.authenticated_as,
            "size": len(self.raw), "subject": self.subject, "from": self.header("From"), "to": self.addresses("To"),
            "cc": self.addresses("Cc"), "reply_to": self.addresses("Reply-To"),
            "message_id": self.header("Message-ID"), "date": self.header("Date"),
            "has_html": self._html_part is not None, "has_text": self._text_part is not None,
            "parts": self.parts(), "attachments": [attachment.summary() for attachment in self.attachments],
        }

    def detail(self) -> dict[str, Any]:
        """The summary plus every header in order and both bodies."""
        headers = [[name, str(value)] for name, value in self.email.items()]
        return {**self.summary(), "headers": headers, "html": self.html, "text": self.text}
