"""What payments keeps: the invoices it collects, their orders, payments, refunds and payment links."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
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

    @property
    def due_minor(self) -> int:
        return max(self.total_minor - self.captured_minor, 0)


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
