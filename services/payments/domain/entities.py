"""What payments keeps: the invoices it collects, their orders, payments, refunds and payment links."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import ProviderFailure
from services.payments.domain.refund import RefundStatus


class InvoiceState(enum.StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    VOID = "void"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    CREATED = "created"
    PAID = "paid"
    FAILED = "failed"
    NOT_NEEDED = "not_needed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    organisation_id: str
    number: str
    currency: str
    total_minor: int
    state: InvoiceState
    captured_minor: int = 0
    issue_date: date | None = None
    due_date: date | None = None
    customer_name: str = ""
    customer_email: str = ""
    # What credit notes took off what the invoice owes: the sum of their ``applied_to_due`` (each counted once).
    credited_minor: int = 0
    # The lowest amount due invoicing reported with a credit note (None before any).
    reported_due_minor: int | None = None

    @property
    def due_minor(self) -> int:
        """What payments collects: the total less credit notes and captures, and never more than invoicing last
        said is due.

        Both bounds are never below what is truly owed, and each is exact when the other lags: the first counts
        every capture payments has made (invoicing may not have heard of the latest yet) but only the credit notes
        delivered so far; the second counts every credit note invoicing had issued (one delivered out of order
        included) but only the payments invoicing knew of then. Neither can go up: credit notes and captures only
        add, and a lower report is kept."""
        due = self.total_minor - self.credited_minor - self.captured_minor
        if self.reported_due_minor is not None:
            due = min(due, self.reported_due_minor)
        return max(due, 0)

    @property
    def collecting_minor(self) -> int:
        """What payments is collecting now: :attr:`due_minor` while the invoice is open, nothing once it is settled
        or void (a void invoice may still show a positive ``due_minor``: nobody is asked for it)."""
        return self.due_minor if self.state is InvoiceState.OPEN else 0

    def with_credit(self, note: CreditNote) -> Invoice:
        """The invoice with ``note`` counted (once: the caller makes sure of that)."""
        reported = note.invoice_amount_due_minor if self.reported_due_minor is None else min(
            self.reported_due_minor, note.invoice_amount_due_minor)
        return replace(self, credited_minor=self.credited_minor + note.applied_to_due_minor,
                       reported_due_minor=max(reported, 0))


@dataclass(frozen=True)
class CreditNote:
    """An invoicing credit note as payments applies it (from ``credit_note.issued``): what it took off what the
    invoice owed, and the invoice's amount due once it was issued."""

    credit_note_id: str
    invoice_id: str
    number: str
    applied_to_due_minor: int
    invoice_amount_due_minor: int


@dataclass(frozen=True)
class Order:
    invoice_id: str
    status: OrderStatus
    amount_minor: int
    currency: str
    receipt: str
    provider_order_id: str = ""
    status_reason: str = ""
    error: ProviderFailure | None = None
    create_attempts: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime | None = None
    # Where the order is made: the organisation's provider when the invoice was issued.
    provider: Provider = Provider.RAZORPAY
    # 1 for the order made at issue; each remaking for a lower amount (a credit note) adds one.
    revision: int = 1


class Cancellation(enum.StrEnum):
    """Where the cancelling of a superseded order at its provider stands."""

    PENDING = "pending"
    CANCELLED = "cancelled"
    # Left at the provider: it cannot be cancelled there (Razorpay's orders), or it was paid (or was being paid)
    # before it could be. A payment on it is still its invoice's.
    KEPT = "kept"


@dataclass(frozen=True)
class SupersededOrder:
    """A provider order its invoice no longer offers: replaced when a credit note lowered what the invoice owes,
    or withdrawn when it was voided or credited in full. A payment still made on it is the invoice's."""

    provider_order_id: str
    invoice_id: str
    provider: Provider
    amount_minor: int
    currency: str
    receipt: str
    revision: int
    reason: str = ""
    cancel_state: Cancellation = Cancellation.PENDING
    cancel_reason: str = ""
    cancel_attempts: int = 0
    next_attempt_at: datetime | None = None
    error: ProviderFailure | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Payment:
    id: str
    invoice_id: str | None
    organisation_id: str
    provider: Provider
    status: PaymentStatus
    currency: str
    amount_minor: int
    provider_payment_id: str | None = None
    provider_order_id: str = ""
    method: str = ""
    email: str = ""
    contact: str = ""
    error_code: str = ""
    error_description: str = ""
    error_reason: str = ""
    reference: str = ""
    note: str = ""
    authorized_at: datetime | None = None
    captured_at: datetime | None = None
    failed_at: datetime | None = None
    check_due_at: datetime | None = None
    check_attempts: int = 0
    created_at: datetime | None = None
    refunded_minor: int = 0  # refunds not refused by the provider; filled by reads that need it


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    invoice_id: str
    organisation_id: str
    status: RefundStatus
    currency: str
    amount_minor: int
    reason: str
    idempotency_key: str | None = None
    provider_refund_id: str | None = None
    error: ProviderFailure | None = None
    send_attempts: int = 0
    next_attempt_at: datetime | None = None
    processed_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class PaymentLink:
    id: str
    invoice_id: str
    reference_id: str
    status: str
    amount_minor: int
    currency: str
    short_url: str = ""
    provider_link_id: str | None = None
    expire_at: datetime | None = None
    created_at: datetime | None = None
    # Set while the worker has it to cancel or make at the provider (after a credit note outdated it).
    next_attempt_at: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True)
class WebhookEvent:
    provider: str
    event_id: str
    event_type: str
    received_at: datetime
    processed_at: datetime | None
    outcome: str
    seq: int = 0
    extra: dict[str, str] = field(default_factory=dict)
