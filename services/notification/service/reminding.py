"""Turning due reminders into messages.

A round claims due reminders with ``FOR UPDATE SKIP LOCKED`` and, in that same transaction, records each one's
message (and webhook deliveries) through intake under the event id ``reminder:<invoice id>:<offset>``, then marks
it sent. Holding the row is what makes a paid or void invoice safe: invoice.paid cancels scheduled reminders in its
own transaction, so either it committed first (the reminder is no longer scheduled, or the invoice's closure is
found here) or it waits for this round and then suppresses the message still queued. A crash before the commit
leaves the reminder scheduled and nothing recorded; recording it twice anyway (two rounds racing past a lock)
would still be one message, since the message's (event, recipient, kind) is unique.
"""

from __future__ import annotations

from datetime import datetime

from billing_runtime.logging import get_logger
from services.notification.domain.messages import MessageKind
from services.notification.domain.notice import Notice
from services.notification.domain.reminders import MISSED, Reminder, ReminderState
from services.notification.service import intake
from services.notification.service.ports import Unit, UnitFactory

log = get_logger(__name__)


async def send_due(uow: UnitFactory, domain: str, now: datetime, limit: int = 20) -> tuple[int, int]:
    """One round; returns how many reminders it handled and how many messages and deliveries it recorded."""
    recorded = 0
    async with uow() as unit:
        claimed: list[Reminder] = await unit.reminders.claim_due(now, limit)
        for reminder in claimed:
            recorded += await _handle(unit, reminder, domain, now)
    return len(claimed), recorded


async def _handle(unit: Unit, reminder: Reminder, domain: str, now: datetime) -> int:
    closure = await unit.reminders.closure(reminder.invoice_id)
    if closure is not None:
        # Scheduled while its closure was being recorded (an out-of-order redelivery of invoice.issued).
        await unit.reminders.finish(reminder, ReminderState.CANCELLED, closure.value, now)
        return 0
    if now >= reminder.expires_at:
        await unit.reminders.finish(reminder, ReminderState.CANCELLED, MISSED, now)
        log.warning("reminder missed: its day ended before it could be sent", invoice_id=reminder.invoice_id,
                    offset_days=reminder.offset_days, due_at=reminder.due_at.isoformat())
        return 0
    invoice = await unit.invoices.get(reminder.invoice_id)
    notice = Notice(reminder.event_id, MessageKind.INVOICE_REMINDER, reminder.invoice_id,
                    occurred_at=reminder.due_at, amount_minor=invoice.total_minor if invoice else None,
                    reminder_offset_days=reminder.offset_days)
    created = await intake.record_in(unit, notice, now, domain)
    await unit.reminders.finish(reminder, ReminderState.SENT, "", now)
    return created
