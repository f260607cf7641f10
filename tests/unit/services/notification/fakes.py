"""In-memory stand-ins for notification's unit of work, mail server and invoicing's documents."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from billing_runtime.errors import Unavailable
from services.notification.adapters.mailer import SendResult
from services.notification.domain.messages import (
    AttemptRecord,
    Message,
    MessageKind,
    MessageState,
    Recipients,
    SendOutcome,
)
from services.notification.domain.notice import InvoiceFacts
from services.notification.domain.reminders import Closure, ClosureReason, Reminder, ReminderState
from services.notification.domain.webhooks import Delivery, DeliveryAttempt, Endpoint
from tests.unit.services.notification.webhook_fakes import Deliveries, Endpoints


@dataclass
class Store:
    invoices: dict[str, InvoiceFacts] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    recipients: dict[str, Recipients] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    delivery_attempts: list[DeliveryAttempt] = field(default_factory=list)
    reminders: dict[tuple[str, int], Reminder] = field(default_factory=dict)
    closures: dict[str, Closure] = field(default_factory=dict)


class Invoices:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, facts: InvoiceFacts) -> None:
        self.s.invoices.setdefault(facts.invoice_id, facts)

    async def get(self, invoice_id: str) -> InvoiceFacts | None:
        return self.s.invoices.get(invoice_id)

    async def latest_of(self, organisation_id: str) -> InvoiceFacts | None:
        return next((f for f in reversed(self.s.invoices.values()) if f.organisation_id == organisation_id), None)


class Messages:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, message: Message) -> bool:
        for other in self.s.messages.values():
            if (other.event_id, other.recipient, other.kind) == (message.event_id, message.recipient, message.kind):
                return False
            if message.idempotency_key and other.idempotency_key == message.idempotency_key:
                return False
        self.s.messages[message.id] = message
        return True

    async def get(self, message_id: str) -> Message | None:
        return self.s.messages.get(message_id)

    async def by_idempotency_key(self, key: str) -> Message | None:
        return next((m for m in self.s.messages.values() if m.idempotency_key == key), None)

    async def give_up_on_lost_sends(self, now: datetime) -> list[str]:
        lost = [m for m in self.s.messages.values() if m.state is MessageState.SENDING and m.lease_until < now]
        for m in lost:
            self.s.messages[m.id] = replace(m, state=MessageState.UNKNOWN, lease_until=None)
        return [m.id for m in lost]

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Message]:
        due = [m for m in self.s.messages.values() if m.state is MessageState.QUEUED and m.next_attempt_at <= now]
        claimed = []
        for m in due[:limit]:
            m = replace(m, state=MessageState.SENDING, attempts=m.attempts + 1, lease_until=now + lease)
            self.s.messages[m.id] = m
            self.s.attempts.append(AttemptRecord(m.id, m.attempts, now))
            claimed.append(m)
        return claimed

    async def finish(self, message: Message, state: MessageState, *, outcome: str, reply: str, now: datetime,
                     next_attempt_at: datetime | None = None, subject: str = "") -> None:
        current = self.s.messages[message.id]
        if current.attempts != message.attempts:
            return
        self.s.messages[message.id] = replace(current, state=state, last_reply=reply, lease_until=None,
                                              next_attempt_at=next_attempt_at, subject=subject or current.subject,
                                              sent_at=now if state is MessageState.SENT else current.sent_at)
        self.s.attempts = [replace(a, ended_at=now, outcome=outcome, reply=reply)
                           if (a.message_id, a.number) == (message.id, message.attempts) else a
                           for a in self.s.attempts]

    async def suppress_queued(self, invoice_id: str, kind: MessageKind, reason: str) -> int:
        queued = [m for m in self.s.messages.values()
                  if (m.invoice_id, m.kind, m.state) == (invoice_id, kind, MessageState.QUEUED)]
        for m in queued:
            self.s.messages[m.id] = replace(m, state=MessageState.SUPPRESSED, last_reply=reason,
                                            next_attempt_at=None)
        return len(queued)

    async def attempts(self, message_id: str) -> list[AttemptRecord]:
        return [a for a in self.s.attempts if a.message_id == message_id]


class Reminders:
    """No locks: a unit test runs one transaction at a time, so claiming is a plain read."""

    def __init__(self, store: Store) -> None:
        self.s = store

    async def schedule(self, reminders: list[Reminder]) -> int:
        new = [r for r in reminders if (r.invoice_id, r.offset_days) not in self.s.reminders]
        for r in new:
            self.s.reminders[(r.invoice_id, r.offset_days)] = r
        return len(new)

    async def of_invoice(self, invoice_id: str) -> list[Reminder]:
        return sorted((r for r in self.s.reminders.values() if r.invoice_id == invoice_id),
                      key=lambda r: r.offset_days)

    async def closure(self, invoice_id: str) -> ClosureReason | None:
        closure = self.s.closures.get(invoice_id)
        return closure.reason if closure else None

    async def close(self, closure: Closure, now: datetime) -> int:
        self.s.closures.setdefault(closure.invoice_id, closure)
        cancelled = 0
        for key, r in list(self.s.reminders.items()):
            if r.invoice_id == closure.invoice_id and r.state is ReminderState.SCHEDULED:
                self.s.reminders[key] = replace(r, state=ReminderState.CANCELLED, reason=closure.reason.value)
                cancelled += 1
        return cancelled

    async def claim_due(self, now: datetime, limit: int) -> list[Reminder]:
        due = sorted((r for r in self.s.reminders.values() if r.state is ReminderState.SCHEDULED and r.due_at <= now),
                     key=lambda r: (r.due_at, r.invoice_id, r.offset_days))
        return due[:limit]

    async def finish(self, reminder: Reminder, state: ReminderState, reason: str, now: datetime) -> None:
        key = (reminder.invoice_id, reminder.offset_days)
        self.s.reminders[key] = replace(self.s.reminders[key], state=state, reason=reason)


class RecipientsRows:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, organisation_id: str) -> Recipients | None:
        return self.s.recipients.get(organisation_id)

    async def set(self, recipients: Recipients) -> None:
        self.s.recipients[recipients.organisation_id] = recipients


class FakeUnit:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def __aenter__(self) -> FakeUnit:
        self._snapshot = copy.deepcopy(self._store.__dict__)
        self.invoices, self.messages = Invoices(self._store), Messages(self._store)
        self.recipients = RecipientsRows(self._store)
        self.endpoints, self.deliveries = Endpoints(self._store), Deliveries(self._store)
        self.reminders = Reminders(self._store)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._store.__dict__.update(self._snapshot)


class FakeMailer:
    """Answers queued results in turn, then 250; keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.answers: list[SendResult] = []

    async def send(self, message: EmailMessage) -> SendResult:
        answer = self.answers.pop(0) if self.answers else SendResult(SendOutcome.SENT, "250 2.0.0 OK queued")
        if answer.outcome is SendOutcome.SENT:
            self.sent.append(message)
        return answer


class FakeDocuments:
    def __init__(self) -> None:
        self.down = False

    async def pdf(self, invoice_id: str) -> tuple[str, bytes]:
        if self.down:
            raise Unavailable("invoicing is not reachable")
        return f"{invoice_id}.pdf", b"%PDF-1.4 fake invoice\n"


def facts(invoice_id: str = "inv_1", email: str = "Billing@Acme.example") -> InvoiceFacts:
    from datetime import date
    return InvoiceFacts(invoice_id, "org_1", "INV/2627/00001", "INR", 117882, email, "Acme Analytics",
                        date(2026, 12, 5), date(2026, 12, 20), "2026-11")


def any_of(values: dict[str, Any]) -> Any:
    return next(iter(values.values()))
