"""What notification's use cases need from the world: the unit of work, the mail server, the templates and
invoicing's documents. The adapters implement them; unit tests fake them."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Protocol

from services.notification.adapters.mailer import SendResult
from services.notification.adapters.templates import Rendered
from services.notification.domain.notice import InvoiceFacts, Notice


class Unit(Protocol):
    """One transaction with ``invoices``, ``messages`` and ``recipients`` repositories."""

    invoices: Any
    messages: Any
    recipients: Any

    async def __aenter__(self) -> Unit: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


UnitFactory = Callable[[], Unit]


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> SendResult: ...


class Renderer(Protocol):
    def render(self, notice: Notice, invoice: InvoiceFacts) -> Rendered: ...


class Documents(Protocol):
    async def pdf(self, invoice_id: str) -> tuple[str, bytes]: ...
