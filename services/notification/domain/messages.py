"""Messages: which kinds exist, who gets them, their states, and what an SMTP reply means for a send.

A message is one email of one kind to one recipient for one event, and exists at most once per
(event id, recipient, kind): that key is what makes a redelivered event, a second replica or a retry harmless.
Its ``Message-ID`` header is derived from the same key, so even a receiver sees one message.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.errors import InvalidArgument


class MessageKind(enum.StrEnum):
    INVOICE_ISSUED = "invoice_issued"
    PAYMENT_RECEIPT = "payment_receipt"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_RETRY = "payment_retry"
    INVOICE_OVERDUE = "invoice_overdue"
    REFUND_PROCESSED = "refund_processed"
    # Before or after the due date, on notification's own schedule (payments' dunning mails the overdue ones).
    INVOICE_REMINDER = "invoice_reminder"
    # A webhook endpoint of the organisation was disabled (it kept failing or answered 410).
    ENDPOINT_DISABLED = "endpoint_disabled"
    # A usage or cost alert rule of the organisation fired (metering's alert.triggered).
    ALERT_TRIGGERED = "alert_triggered"
    # An invoice of an organisation with a mandate that could not be debited on it: a payment link instead
    # (payments' autodebit.link_sent).
    AUTODEBIT_LINK = "autodebit_link"

    @property
    def transactional(self) -> bool:
        """Mail a customer cannot opt out of (and that carries no List-Unsubscribe): documents and receipts, and
        the word that their integration stopped receiving webhooks (no one else would tell them)."""
        return self in (MessageKind.INVOICE_ISSUED, MessageKind.PAYMENT_RECEIPT, MessageKind.REFUND_PROCESSED,
                        MessageKind.ENDPOINT_DISABLED)

    @property
    def about_an_invoice(self) -> bool:
        """Rendered with the facts of an invoice: its own, or (a disabled endpoint) the organisation's latest one
        for the customer's name. An alert carries what it needs."""
        return self is not MessageKind.ALERT_TRIGGERED


class MessageState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SUPPRESSED = "suppressed"


_ADDRESS = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_CC = 10


def check_address(address: str, field: str) -> str:
    address = address.strip()
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise InvalidArgument("is not an email address", field=field)
    return address.lower()


@dataclass(frozen=True)
class Recipients:
    organisation_id: str
    cc: tuple[str, ...] = ()
    opted_out: frozenset[MessageKind] = frozenset()

    def __post_init__(self) -> None:
        if len(self.cc) > MAX_CC:
            raise InvalidArgument(f"at most {MAX_CC} addresses", field="cc")
        for n, address in enumerate(self.cc):
            check_address(address, f"cc[{n}]")
        for kind in self.opted_out:
            if kind.transactional:
                raise InvalidArgument(f"{kind} cannot be opted out of: it is a document or a receipt",
                                      field="opted_out")


def message_id_header(event_id: str, recipient: str, kind: MessageKind, domain: str) -> str:
    digest = hashlib.sha256(f"{event_id}|{recipient}|{kind}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class SendOutcome(enum.StrEnum):
    SENT = "sent"
    # 4xx, a refused connection, a timeout before the message was handed over: try again later.
    TRANSIENT = "transient"
    # 5xx: the server will never take it; recorded with its reply.
    PERMANENT = "permanent"
    # The connection broke after the message was handed over: it may have been delivered. An operator decides.
    UNKNOWN = "unknown"


def outcome_of_reply(code: int) -> SendOutcome:
    if 200 <= code < 300:
        return SendOutcome.SENT
    if 400 <= code < 500:
        return SendOutcome.TRANSIENT
    return SendOutcome.PERMANENT


@dataclass(frozen=True)
class RetrySchedule:
    """After a transient failure: base * factor**(attempt-1), capped, up to max_attempts, then failed."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        seconds = min(self.base.total_seconds() * self.factor ** max(attempts - 1, 0), self.cap.total_seconds())
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Message:
    """One email of one kind to one recipient for one event, as recorded."""

    id: str
    event_id: str
    recipient: str
    kind: MessageKind
    organisation_id: str
    invoice_id: str
    notice: dict[str, object]
    message_id_header: str
    state: MessageState
    cc: tuple[str, ...] = ()
    subject: str = ""
    attempts: int = 0
    last_reply: str = ""
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    idempotency_key: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class AttemptRecord:
    message_id: str
    number: int
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = ""
    reply: str = ""
