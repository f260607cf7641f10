"""All SQL of reminders and of invoices' closures (paid or void)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notification.adapters import tables as t
from services.notification.domain.reminders import Closure, ClosureReason, Reminder, ReminderState

_R, _C = t.reminders, t.invoice_closures


def _reminder(row: sa.Row[Any]) -> Reminder:
    values = {k: v for k, v in row._mapping.items() if k in Reminder.__dataclass_fields__}
    return Reminder(**{**values, "state": ReminderState(row.state)})


class ReminderRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def schedule(self, reminders: list[Reminder]) -> int:
        """Record reminders not yet recorded (a redelivered invoice.issued adds nothing); returns how many."""
        if not reminders:
            return 0
        rows = [{"invoice_id": r.invoice_id, "offset_days": r.offset_days, "organisation_id": r.organisation_id,
                 "due_at": r.due_at, "expires_at": r.expires_at, "state": r.state.value, "reason": r.reason}
                for r in reminders]
        statement = insert(_R).values(rows).on_conflict_do_nothing().returning(_R.c.offset_days)
        return len((await self._conn.execute(statement)).all())

    async def of_invoice(self, invoice_id: str) -> list[Reminder]:
        rows = (await self._conn.execute(sa.select(_R).where(_R.c.invoice_id == invoice_id)
                                         .order_by(_R.c.offset_days))).all()
        return [_reminder(row) for row in rows]

    async def closure(self, invoice_id: str) -> ClosureReason | None:
        reason = (await self._conn.execute(sa.select(_C.c.reason).where(_C.c.invoice_id == invoice_id))).scalar()
        return ClosureReason(reason) if reason else None

    async def close(self, closure: Closure, now: datetime) -> int:
        """Remember that the invoice is paid or void (the first closure wins) and cancel its scheduled reminders;
        returns how many were cancelled. The update waits for a worker holding one of them, then sees it sent."""
        await self._conn.execute(insert(_C).values(invoice_id=closure.invoice_id, reason=closure.reason.value,
                                                   event_id=closure.event_id, closed_at=now)
                                 .on_conflict_do_nothing())
        rows = (await self._conn.execute(
            sa.update(_R).where(_R.c.invoice_id == closure.invoice_id,
                                _R.c.state == ReminderState.SCHEDULED.value)
            .values(state=ReminderState.CANCELLED.value, reason=closure.reason.value, updated_at=now)
            .returning(_R.c.offset_days))).all()
        return len(rows)

    async def claim_due(self, now: datetime, limit: int) -> list[Reminder]:
        """Scheduled reminders due now, locked for this transaction; another worker skips them rather than waits,
        and an invoice.paid cancelling them waits for this transaction."""
        rows = (await self._conn.execute(
            sa.select(_R).where(_R.c.state == ReminderState.SCHEDULED.value, _R.c.due_at <= now)
            .order_by(_R.c.due_at, _R.c.invoice_id, _R.c.offset_days).limit(limit)
            .with_for_update(skip_locked=True))).all()
        return [_reminder(row) for row in rows]

    async def finish(self, reminder: Reminder, state: ReminderState, reason: str, now: datetime) -> None:
        await self._conn.execute(sa.update(_R).where(
            _R.c.invoice_id == reminder.invoice_id, _R.c.offset_days == reminder.offset_days,
        ).values(state=state.value, reason=reason, updated_at=now))
