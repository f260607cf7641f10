"""What notification's use cases need from the world: the unit of work, the mail server, the templates and
invoicing's documents and organisations. The adapters implement them; unit tests fake them."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Protocol

from services.notification.adapters.mailer import SendResult
from services.notification.adapters.templates import Rendered
from services.notification.adapters.webhook_poster import PostResult
from services.notification.domain.notice import Contact, InvoiceFacts, Notice


class Unit(Protocol):
    """One transaction with ``invoices``, ``messages``, ``recipients``, ``endpoints``, ``deliveries`` and
    ``reminders`` repositories."""

    invoices: Any
    messages: Any
    recipients: Any
    endpoints: Any
    deliveries: Any
    reminders: Any

    async def __aenter__(self) -> Unit: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


UnitFactory = Callable[[], Unit]


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> SendResult: ...


class Renderer(Protocol):
    def render(self, notice: Notice, invoice: InvoiceFacts | None) -> Rendered:
        """``invoice``: the facts of the invoice the message is about; None for a kind not about one (an alert)."""
        ...


class Documents(Protocol):
    async def pdf(self, invoice_id: str) -> tuple[str, bytes]: ...


class Organisations(Protocol):
    async def contact(self, organisation_id: str) -> Contact | None:
        """The organisation's billing contact now; None when it does not exist. Raises when it cannot tell."""
        ...


class Resolver(Protocol):
    async def addresses(self, host: str, port: int) -> list[str]:
        """The IP addresses a host resolves to (empty when it does not resolve)."""
        ...


class Poster(Protocol):
    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostResult:
        """POST without following redirects; never raises for the network's failures."""
        ...
