"""What a provider reports, in the provider's words but one shape for every provider: payments, refunds, orders,
payment links, and what one webhook says. Razorpay's bodies are read into these by
:mod:`services.payments.domain.razorpay_events`, Stripe's by :mod:`services.payments.domain.stripe_events`.

Statuses keep one vocabulary, Razorpay's, which the state machines (:mod:`.payment`, :mod:`.refund`) read:
payments ``created`` / ``authorized`` / ``captured`` / ``failed`` / ``refunded``, refunds ``pending`` /
``processed`` / ``failed``. Each reader translates its provider's statuses into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class MalformedWebhook(ValueError):
    """A body we cannot act on; the message says what is missing, never echoing the body."""


class ReportTooEarly(Exception):
    """A report that names something of ours another report has not brought yet (a Stripe refund of one of our
    PaymentIntents before its payment_intent.succeeded): nothing is applied, and the delivery is retried later."""


@dataclass(frozen=True)
class ProviderPayment:
    id: str
    order_id: str
    amount_minor: int
    # None where the provider sent an empty string: the order's currency applies.
    currency: str | None
    status: str
    captured: bool
    method: str = ""
    email: str = ""
    contact: str = ""
    amount_refunded_minor: int = 0
    error_code: str = ""
    error_description: str = ""
    error_reason: str = ""
    created_at: datetime | None = None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    payment_id: str
    amount_minor: int
    currency: str | None
    status: str
    created_at: datetime | None = None
    notes: dict[str, str] = field(default_factory=dict)
    receipt: str = ""


@dataclass(frozen=True)
class ProviderOrder:
    id: str
    amount_minor: int
    amount_paid_minor: int
    currency: str | None
    receipt: str
    status: str
    notes: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    # Stripe: the PaymentIntent's client secret, which Stripe.js confirms it with (handed to the payer only).
    client_secret: str = ""
    # Cancelled at the provider: it can no longer be paid.
    cancelled: bool = False


@dataclass(frozen=True)
class ProviderLink:
    id: str
    short_url: str
    status: str
    reference_id: str = ""


@dataclass(frozen=True)
class LinkRequest:
    """A payment link to make: for ``amount_minor`` of an invoice, unique by ``reference_id``."""

    amount_minor: int
    currency: str
    reference_id: str
    description: str
    customer_name: str
    customer_email: str
    expire_by: datetime
    notes: dict[str, str]
    callback_url: str = ""


@dataclass(frozen=True)
class WebhookNotice:
    """What one webhook says: its event name and the entities it carries."""

    event: str
    payment: ProviderPayment | None = None
    refund: ProviderRefund | None = None
    order: ProviderOrder | None = None
    link: ProviderLink | None = None
    created_at: datetime | None = None
    # Refunds beyond ``refund`` (Stripe's charge.refunded carries every refund of the charge).
    more_refunds: tuple[ProviderRefund, ...] = ()

    @property
    def refunds(self) -> tuple[ProviderRefund, ...]:
        return ((self.refund,) if self.refund is not None else ()) + self.more_refunds


# Readers shared by the providers' parsers: tolerant of nulls and strings where numbers belong, strict on
# what would move money.


def read_text(value: Any, limit: int = 255) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()[:limit]


def read_amount(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise MalformedWebhook(f"the {what} is not a whole number of minor units")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str) and value.strip().isdigit():
        amount = int(value.strip())
    else:
        raise MalformedWebhook(f"the {what} is not a whole number of minor units")
    if amount < 0 or amount > 10**15:
        raise MalformedWebhook(f"the {what} is out of range")
    return amount


def read_flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def read_time(value: Any) -> datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    if seconds <= 0 or seconds > 32503680000:  # before 1970 or after 3000: not a time a provider sends
        return None
    return datetime.fromtimestamp(seconds, UTC)


def read_notes(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}  # Razorpay sends [] for "no notes"
    return {str(k)[:64]: read_text(v) for k, v in list(value.items())[:15]}
