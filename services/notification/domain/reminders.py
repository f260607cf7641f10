"""Reminders about an invoice's due date: when they are due, and when they stop.

A reminder is one per (invoice, offset in days from the due date; negative is before it), scheduled when the
invoice is issued. It is due at the start of its day in the supplier's zone (the due date is a day in that zone)
and is good for that day only: "due in 3 days" read a day later would be wrong, so a reminder whose day ended
before it could be sent (notification was not running) is cancelled as missed rather than sent late. An invoice
that is paid or void gets no more reminders: its scheduled ones are cancelled, and the closure is remembered so
that a reminder scheduled by an out-of-order redelivery of invoice.issued is not sent either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notification.domain.notice import InvoiceFacts


class ReminderState(enum.StrEnum):
    SCHEDULED = "scheduled"
    # Turned into a message (whose own state says what became of the mail).
    SENT = "sent"
    CANCELLED = "cancelled"


class ClosureReason(enum.StrEnum):
    PAID = "paid"
    VOID = "void"


# Why a reminder was cancelled when it was not the invoice's closure.
MISSED = "missed: its day ended before notification could send it"


@dataclass(frozen=True)
class Closure:
    """The invoice is paid or void: nothing more is due, so no reminder may go out."""

    invoice_id: str
    event_id: str
    reason: ClosureReason


@dataclass(frozen=True)
class Reminder:
    invoice_id: str
    offset_days: int
    organisation_id: str
    # The start of the reminder's day in the supplier's zone, and the start of the next: it is sent in between.
    due_at: datetime
    expires_at: datetime
    state: ReminderState = ReminderState.SCHEDULED
    reason: str = ""

    @property
    def event_id(self) -> str:
        """Deterministic, so recording the reminder's message twice (a crash, a second worker) records it once:
        the message's unique (event, recipient, kind) decides."""
        return reminder_event_id(self.invoice_id, self.offset_days)


def reminder_event_id(invoice_id: str, offset_days: int) -> str:
    return f"reminder:{invoice_id}:{offset_days}"


def due_phrase(offset_days: int) -> str:
    """How a reminder speaks of the due date: ``is due in 3 days``, ``is due today``, ``was due 1 day ago``."""
    days = abs(offset_days)
    unit = "day" if days == 1 else "days"
    if offset_days < 0:
        return f"is due in {days} {unit}"
    if offset_days == 0:
        return "is due today"
    return f"was due {days} {unit} ago"


@dataclass(frozen=True)
class ReminderSchedule:
    """Offsets in days from the due date (negative: before it), and the zone whose days they count."""

    offsets_days: tuple[int, ...] = (-3,)
    zone: ZoneInfo = ZoneInfo("Asia/Kolkata")

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.zone)

    def plan(self, invoice: InvoiceFacts, now: datetime) -> list[Reminder]:
        """The reminders of a newly issued invoice: none without a due date or with nothing to pay, and none whose
        day is already over (an invoice issued late in its terms skips the early ones)."""
        if invoice.due_date is None or invoice.total_minor <= 0:
            return []
        reminders = []
        for offset in sorted(set(self.offsets_days)):
            day = invoice.due_date + timedelta(days=offset)
            reminder = Reminder(invoice.invoice_id, offset, invoice.organisation_id, self._start_of(day),
                                self._start_of(day + timedelta(days=1)))
            if now < reminder.expires_at:
                reminders.append(reminder)
        return reminders
