"""All SQL of the notification service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notification.adapters import tables as t
from services.notification.domain.messages import AttemptRecord, Message, MessageKind, MessageState, Recipients
from services.notification.domain.notice import InvoiceFacts


def _message(row: sa.Row[Any]) -> Message:
    values = {k: v for k, v in row._mapping.items() if k in Message.__dataclass_fields__}
    return Message(**{**values, "kind": MessageKind(row.kind), "state": MessageState(row.state),
                      "cc": tuple(row.cc or ())})


class InvoiceFactsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, facts: InvoiceFacts) -> None:
        await self._conn.execute(insert(t.invoices).values(**facts.__dict__).on_conflict_do_nothing())

    async def get(self, invoice_id: str) -> InvoiceFacts | None:
        row = (await self._conn.execute(sa.select(t.invoices).where(t.invoices.c.invoice_id == invoice_id))).first()
        if row is None:
            return None
        return InvoiceFacts(**{k: v for k, v in row._mapping.items() if k in InvoiceFacts.__dataclass_fields__})

    async def latest_of(self, organisation_id: str) -> InvoiceFacts | None:
        """The organisation's latest invoice: notification's only record of its billing contact (for mail that
        is about no invoice, such as a disabled webhook endpoint)."""
        row = (await self._conn.execute(
            sa.select(t.invoices).where(t.invoices.c.organisation_id == organisation_id)
            .order_by(t.invoices.c.created_at.desc(), t.invoices.c.invoice_id.desc()).limit(1))).first()
        if row is None:
            return None
        return InvoiceFacts(**{k: v for k, v in row._mapping.items() if k in InvoiceFacts.__dataclass_fields__})


class MessageRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, message: Message) -> bool:
        """Record a message; False when its (event, recipient, kind), or its idempotency key, was recorded."""
        values = {k: v for k, v in message.__dict__.items() if k not in ("created_at", "sent_at")}
        values.update(kind=message.kind.value, state=message.state.value, cc=list(message.cc))
        statement = insert(t.messages).values(**values).on_conflict_do_nothing().returning(t.messages.c.id)
        return (await self._conn.execute(statement)).first() is not None

    async def get(self, message_id: str) -> Message | None:
        row = (await self._conn.execute(sa.select(t.messages).where(t.messages.c.id == message_id))).first()
        return _message(row) if row else None

    async def by_idempotency_key(self, key: str) -> Message | None:
        row = (await self._conn.execute(sa.select(t.messages).where(t.messages.c.idempotency_key == key))).first()
        return _message(row) if row else None

    async def page(self, *, organisation_id: str, invoice_id: str, kind: str, state: str, limit: int,
                   before: str | None) -> list[Message]:
        statement = sa.select(t.messages).order_by(t.messages.c.id.desc()).limit(limit)
        for column, value in ((t.messages.c.organisation_id, organisation_id), (t.messages.c.invoice_id, invoice_id),
                              (t.messages.c.kind, kind), (t.messages.c.state, state)):
            if value:
                statement = statement.where(column == value)
        if before:
            statement = statement.where(t.messages.c.id < before)
        return [_message(row) for row in (await self._conn.execute(statement)).all()]

    async def give_up_on_lost_sends(self, now: datetime) -> list[str]:
        """Messages a sender claimed and never finished (it died, or hangs past its lease): UNKNOWN, for an
        operator, since the mail may have gone out. Returns their ids."""
        rows = (await self._conn.execute(
            sa.update(t.messages)
            .where(t.messages.c.state == MessageState.SENDING.value, t.messages.c.lease_until < now)
            .values(state=MessageState.UNKNOWN.value, lease_until=None,
                    last_reply="the sender stopped before it knew whether the server took the message")
            .returning(t.messages.c.id)
        )).scalars().all()
        return list(rows)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Message]:
        """Queued messages due now, marked SENDING with a lease and one more attempt, their attempts recorded:
        committed before anything is sent, so a crash leaves a trace instead of a second mail."""
        due = (
            sa.select(t.messages.c.id)
            .where(t.messages.c.state == MessageState.QUEUED.value, t.messages.c.next_attempt_at <= now)
            .order_by(t.messages.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.messages).where(t.messages.c.id.in_(due))
            .values(state=MessageState.SENDING.value, attempts=t.messages.c.attempts + 1, lease_until=now + lease)
            .returning(t.messages)
        )).all()
        claimed = [_message(row) for row in rows]
        if claimed:
            await self._conn.execute(sa.insert(t.attempts), [
                {"message_id": m.id, "number": m.attempts, "started_at": now} for m in claimed])
        return claimed

    async def finish(self, message: Message, state: MessageState, *, outcome: str, reply: str, now: datetime,
                     next_attempt_at: datetime | None = None, subject: str = "") -> None:
        """Record how attempt ``message.attempts`` ended (even if the lease ran out meanwhile: the truth wins)."""
        values: dict[str, Any] = {"state": state.value, "last_reply": reply[:1000], "lease_until": None,
                                  "next_attempt_at": next_attempt_at}
        if state is MessageState.SENT:
            values["sent_at"] = now
        if subject:
            values["subject"] = subject[:500]
        await self._conn.execute(sa.update(t.messages).where(
            t.messages.c.id == message.id, t.messages.c.attempts == message.attempts).values(**values))
        await self._conn.execute(sa.update(t.attempts).where(
            t.attempts.c.message_id == message.id, t.attempts.c.number == message.attempts
        ).values(ended_at=now, outcome=outcome, reply=reply[:1000]))

    async def suppress_queued(self, invoice_id: str, kind: MessageKind, reason: str) -> int:
        """Queued messages of a kind about an invoice, SUPPRESSED with the reason as their last reply (a reminder
        of an invoice paid meanwhile); one the sender already claimed is left to it. Returns how many."""
        rows = (await self._conn.execute(
            sa.update(t.messages).where(t.messages.c.invoice_id == invoice_id, t.messages.c.kind == kind.value,
                                        t.messages.c.state == MessageState.QUEUED.value)
            .values(state=MessageState.SUPPRESSED.value, last_reply=reason, next_attempt_at=None)
            .returning(t.messages.c.id))).all()
        return len(rows)

    async def attempts(self, message_id: str) -> list[AttemptRecord]:
        rows = (await self._conn.execute(sa.select(t.attempts).where(t.attempts.c.message_id == message_id)
                                         .order_by(t.attempts.c.number))).all()
        return [AttemptRecord(**dict(row._mapping)) for row in rows]


class RecipientsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, organisation_id: str) -> Recipients | None:
        row = (await self._conn.execute(
            sa.select(t.recipients).where(t.recipients.c.organisation_id == organisation_id))).first()
        if row is None:
            return None
        return Recipients(organisation_id, tuple(row.cc), frozenset(MessageKind(k) for k in row.opted_out))

    async def set(self, recipients: Recipients) -> None:
        values = {"organisation_id": recipients.organisation_id, "cc": list(recipients.cc),
                  "opted_out": sorted(k.value for k in recipients.opted_out)}
        statement = insert(t.recipients).values(**values)
        await self._conn.execute(statement.on_conflict_do_update(
            index_elements=[t.recipients.c.organisation_id],
            set_={"cc": statement.excluded.cc, "opted_out": statement.excluded.opted_out,
                  "updated_at": sa.func.now()}))


