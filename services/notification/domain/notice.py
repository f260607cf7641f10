"""What an event tells people: the facts a message about it needs, whatever service published it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from services.notification.domain.messages import MessageKind


@dataclass(frozen=True)
class InvoiceFacts:
    """What notification keeps of an issued invoice (from invoice.issued), for mail about it later."""

    invoice_id: str
    organisation_id: str
    number: str
    currency: str
    total_minor: int
    billing_email: str
    customer_name: str = ""
    issue_date: date | None = None
    due_date: date | None = None
    period_key: str = ""


@dataclass(frozen=True)
class Contact:
    """An organisation's name, billing email and time zone as invoicing knows them now: where mail about no
    invoice (a fired alert) goes, before the organisation ever had one."""

    organisation_id: str
    name: str
    billing_email: str
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Notice:
    """One event, as far as mail is concerned."""

    event_id: str
    kind: MessageKind
    invoice_id: str
    occurred_at: datetime | None = None
    # The amount the event is about (paid, refunded, due), in minor units of the invoice's currency.
    amount_minor: int | None = None
    payment_link_url: str = ""
    attempt_number: int = 0
    max_attempts: int = 0
    next_attempt_at: datetime | None = None
    reason: str = ""
    # A reminder's offset in days from the due date (negative: before it); None for every other notice.
    reminder_offset_days: int | None = None
    details: dict[str, str] = field(default_factory=dict)


    def record(self) -> dict[str, Any]:
        """The JSON form kept on the message, enough to render it again (preview, resend)."""
        values = asdict(self)
        for name in ("occurred_at", "next_attempt_at"):
            values[name] = values[name].isoformat() if values[name] else None
        values["kind"] = self.kind.value
        return values

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Notice:
        values = dict(record)
        values["kind"] = MessageKind(values["kind"])
        for name in ("occurred_at", "next_attempt_at"):
            values[name] = datetime.fromisoformat(values[name]) if values.get(name) else None
        return cls(**values)
