"""The email itself: headers, a text part, the HTML alternative, and attachments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

from services.notification.adapters.templates import Rendered
from services.notification.domain.messages import Message

_POLICY = policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class Sender:
    from_address: str = "Billing Platform <billing@billing.example>"
    # Where "unsubscribe" requests go for reminders (mailto); empty: no List-Unsubscribe header.
    unsubscribe_address: str = ""


def build(message: Message, rendered: Rendered, sender: Sender, attachments: list[tuple[str, str, bytes]],
          now: datetime) -> EmailMessage:
    """``attachments``: (file name, MIME type, bytes)."""
    # Lines up to RFC 5322's hard limit: the default 78 made Python fold a subject right after "Subject:", which
    # some clients show with a leading space.
    email = EmailMessage(policy=_POLICY)
    email["From"] = sender.from_address
    email["To"] = message.recipient
    if message.cc:
        email["Cc"] = ", ".join(message.cc)
    email["Subject"] = rendered.subject
    email["Date"] = format_datetime(now)
    email["Message-ID"] = message.message_id_header
    email["X-Billing-Message-Id"] = message.id
    if not message.kind.transactional and sender.unsubscribe_address:
        topic = quote(f"unsubscribe {message.organisation_id} {message.kind}")
        email["List-Unsubscribe"] = f"<mailto:{sender.unsubscribe_address}?subject={topic}>"
    email.set_content(rendered.text)
    email.add_alternative(rendered.html, subtype="html")
    for filename, mime, content in attachments:
        maintype, _, subtype = mime.partition("/")
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return email
