"""Inspecting and acting on messages: list, show with attempts, preview as sent, resend; recipient settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.notification.adapters.templates import Rendered
from services.notification.domain.messages import (
    AttemptRecord,
    Message,
    MessageKind,
    MessageState,
    Recipients,
    message_id_header,
)
from services.notification.domain.notice import Notice
from services.notification.service.ports import Renderer, UnitFactory


async def list_messages(uow: UnitFactory, *, organisation_id: str, invoice_id: str, kind: str, state: str,
                        page_size: int, page_token: str) -> tuple[list[Message], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.messages.page(organisation_id=organisation_id, invoice_id=invoice_id, kind=kind,
                                        state=state, limit=size + 1, before=before)
    return paging.split_page(rows, size)


async def get_message(uow: UnitFactory, message_id: str) -> tuple[Message, list[AttemptRecord]]:
    if not message_id:
        raise InvalidArgument("is required", field="message_id")
    async with uow() as unit:
        message: Message | None = await unit.messages.get(message_id)
        if message is None:
            raise NotFound(f"no message with id {message_id!r}")
        return message, await unit.messages.attempts(message_id)


async def preview(uow: UnitFactory, renderer: Renderer, message_id: str) -> tuple[Rendered, list[str]]:
    message, _ = await get_message(uow, message_id)
    if not message.kind.about_an_invoice:
        return renderer.render(Notice.from_record(message.notice), None), []
    async with uow() as unit:
        invoice = await (unit.invoices.get(message.invoice_id) if message.invoice_id
                         else unit.invoices.latest_of(message.organisation_id))
    if invoice is None:
        raise FailedPrecondition("the invoice this message is about is no longer known to notification")
    attachments = [f"{invoice.number.replace('/', '-')}.pdf"] if message.kind is MessageKind.INVOICE_ISSUED else []
    return renderer.render(Notice.from_record(message.notice), invoice), attachments


async def resend(uow: UnitFactory, message_id: str, idempotency_key: str, now: datetime) -> tuple[Message, bool]:
    """A new copy of the message (its own Message-ID), queued now; the same key again returns that copy."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidArgument("is required (at most 200 characters): a resend is made once per key",
                              field="idempotency_key")
    original, _ = await get_message(uow, message_id)
    async with uow() as unit:
        existing: Message | None = await unit.messages.by_idempotency_key(idempotency_key)
        if existing is not None:
            return existing, False
        event_id = f"resend:{original.id}:{idempotency_key}"
        copy = replace(original, id=new_id("msg"), event_id=event_id, state=MessageState.QUEUED, attempts=0,
                       last_reply="", next_attempt_at=now, lease_until=None, idempotency_key=idempotency_key,
                       # Derived like every Message-ID, from the copy's own key, in the original's domain.
                       message_id_header=message_id_header(event_id, original.recipient, original.kind,
                                                           original.message_id_header.rsplit("@", 1)[-1].rstrip(">")),
                       created_at=None, sent_at=None)
        await unit.messages.add(copy)
    return copy, True


async def recipients(uow: UnitFactory, organisation_id: str) -> Recipients:
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    async with uow() as unit:
        found = await unit.recipients.get(organisation_id)
    return found or Recipients(organisation_id)


async def set_recipients(uow: UnitFactory, settings: Recipients) -> Recipients:
    if not settings.organisation_id or len(settings.organisation_id) > 64:
        raise InvalidArgument("is required (at most 64 characters)", field="recipients.organisation_id")
    async with uow() as unit:
        await unit.recipients.set(settings)
    return settings
