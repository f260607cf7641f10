"""A payment's state only moves forward, whatever order the provider's webhooks arrive in.

The provider reports a payment as authorized, captured or failed (Stripe's PaymentIntent statuses are read into
these words by :mod:`.stripe_events`), by webhooks that arrive late, twice and out of
order, and by API fetches. We keep the furthest state any report showed, ranked
created < failed < authorized < captured: a ``failed`` after ``captured`` does not un-pay an invoice, a
``captured`` after ``failed`` pays it (a retried UPI collect can succeed after a first decline), and a
``captured`` before its ``authorized`` is simply the end state arriving first.

A payment is the provider's payment as a whole (for Stripe, the PaymentIntent with all its attempts), so its error
belongs to the failed state: moving on to authorized or captured clears ``failed_at`` and ``error_*``
(:func:`services.payments.service.provider_reports.apply_payment`), and a failure reported after that changes
nothing. The decline itself stays in the webhook log and in the ``payment.failed`` announced when it happened.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class PaymentStatus(enum.StrEnum):
    CREATED = "created"
    FAILED = "failed"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {PaymentStatus.CREATED: 0, PaymentStatus.FAILED: 1, PaymentStatus.AUTHORIZED: 2, PaymentStatus.CAPTURED: 3}


class Provider(enum.StrEnum):
    RAZORPAY = "razorpay"
    STRIPE = "stripe"
    OFFLINE = "offline"
    NONE = "none"

    @property
    def title(self) -> str:
        return self.value.capitalize()

    @property
    def online(self) -> bool:
        """A provider payments makes orders at and hears webhooks from."""
        return self in ONLINE_PROVIDERS


# The providers an organisation can collect through; Razorpay unless it chose otherwise.
ONLINE_PROVIDERS = (Provider.RAZORPAY, Provider.STRIPE)
DEFAULT_PROVIDER = Provider.RAZORPAY


OFFLINE_METHODS = ("bank_transfer", "cheque", "cash")


class Transition(NamedTuple):
    """The outcome of a report: the state to keep, and whether it moved (and so must be announced)."""

    status: PaymentStatus
    moved: bool


def advance(current: PaymentStatus | None, reported: PaymentStatus) -> Transition:
    """The state after a report of ``reported`` on a payment now in ``current`` (None: not known yet)."""
    if current is None:
        return Transition(reported, True)
    if reported.rank > current.rank:
        return Transition(reported, True)
    return Transition(current, False)


def from_provider_status(status: str, captured: bool) -> PaymentStatus | None:
    """Razorpay's payment status as ours. ``refunded`` is a captured payment whose money went back (refunds
    are tracked on their own); a status we do not know yet is None, and the report is kept but not applied."""
    if captured or status in ("captured", "refunded"):
        return PaymentStatus.CAPTURED
    return {"created": PaymentStatus.CREATED, "authorized": PaymentStatus.AUTHORIZED,
            "failed": PaymentStatus.FAILED}.get(status)
