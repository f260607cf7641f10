"""Recurring auto-debit: an organisation's mandate (a Razorpay token on a card, UPI AutoPay or an eNACH bank
mandate) and the debit of each issued invoice on it, under the RBI e-mandate rules.

- A mandate is ``created`` (the authorisation order exists, for Checkout to open), then ``confirmed`` or
  ``rejected`` by the bank; a confirmed one may be ``paused`` and either may be ``cancelled``. Token webhooks
  arrive late, twice and out of order: a state only moves forward (:func:`advance`), so a ``token.confirmed``
  after a ``token.cancelled`` changes nothing.
- The customer's bank sends a pre-debit notice at least 24 hours before a debit; Razorpay debits a set time after
  the notice (UPI 25 hours, cards 36 hours; eNACH is presented to the bank and settles the next day). So a debit
  is started :data:`LEAD` before the invoice's due moment, or at once when the invoice was issued later than that.
- Cards and UPI debits above ₹15,000 need the customer's extra authentication (an AFA), which a debit in the
  background cannot have: those invoices get a payment link and an email instead. eNACH has no such ceiling
  (up to the mandate's maximum). UPI allows one debit per cycle (NPCI): a second invoice due in the same
  calendar month also gets a link. Recurring debits are in INR only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from services.payments.domain.dunning import due_moment


class MandateMethod(enum.StrEnum):
    CARD = "card"
    UPI = "upi"
    EMANDATE = "emandate"  # eNACH: a mandate on a bank account, authorised by netbanking or debit card


class MandateState(enum.StrEnum):
    CREATED = "created"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    PAUSED = "paused"
    CANCELLED = "cancelled"

    @property
    def live(self) -> bool:
        """Not finished: an organisation has at most one live mandate."""
        return self in (MandateState.CREATED, MandateState.CONFIRMED, MandateState.PAUSED)


# Where each state may go. Forward only: nothing returns to created or confirmed.
MOVES: dict[MandateState, tuple[MandateState, ...]] = {
    MandateState.CREATED: (MandateState.CONFIRMED, MandateState.REJECTED, MandateState.PAUSED,
                           MandateState.CANCELLED),
    MandateState.CONFIRMED: (MandateState.PAUSED, MandateState.CANCELLED),
    MandateState.PAUSED: (MandateState.CANCELLED,),
    MandateState.REJECTED: (),
    MandateState.CANCELLED: (),
}


class Transition(NamedTuple):
    state: MandateState
    moved: bool


def advance(current: MandateState, reported: MandateState) -> Transition:
    """The state after a report of ``reported`` on a mandate in ``current``."""
    if reported in MOVES[current]:
        return Transition(reported, True)
    return Transition(current, False)


# How long before the due moment a debit is started, by method: Razorpay debits 25 hours (UPI) or 36 hours
# (cards) after the pre-debit notice it sends when the debit is asked for; an eNACH debit is presented to the
# bank and answered within a working day, so 30 hours leaves the notice its 24 and the bank a margin.
LEAD = {
    MandateMethod.UPI: timedelta(hours=25),
    MandateMethod.CARD: timedelta(hours=36),
    MandateMethod.EMANDATE: timedelta(hours=30),
}
MIN_NOTICE = timedelta(hours=24)
# Above this (₹15,000, in paise), card and UPI debits need the customer's extra authentication.
EXTRA_AUTHENTICATION_ABOVE_MINOR = 1_500_000
# The most a mandate may be set up for, by method (paise): what Razorpay accepts as the token's max_amount.
MAX_AMOUNT_MINOR = {MandateMethod.CARD: 100_000_000, MandateMethod.UPI: 10_000_000,
                    MandateMethod.EMANDATE: 1_000_000_000}
CURRENCY = "INR"


def debit_at(due_date: date, method: MandateMethod, now: datetime, zone: str = "Asia/Kolkata") -> datetime:
    """When the debit of an invoice due on ``due_date`` is started: the method's lead before the due moment (the
    end of the due day in the supplier's zone, as dunning counts it), or ``now`` if that has passed."""
    return max(due_moment(due_date, zone) - LEAD[method], now)


def cycle(due_date: date) -> str:
    """The debit cycle an invoice belongs to (a calendar month of due dates): UPI allows one debit in each."""
    return f"{due_date.year:04d}-{due_date.month:02d}"


class Route(enum.StrEnum):
    DEBIT = "debit"
    LINK = "link"  # a payment link and an email instead


@dataclass(frozen=True)
class Routing:
    route: Route
    reason: str = ""


def route(method: MandateMethod, max_amount_minor: int, amount_minor: int, currency: str,
          debits_in_cycle: int) -> Routing:
    """Whether an invoice of ``amount_minor`` ``currency`` is debited on the mandate or sent a payment link.
    ``debits_in_cycle``: the mandate's other debits (not failed) in the invoice's cycle."""
    if currency != CURRENCY:
        return Routing(Route.LINK, f"recurring debits are in {CURRENCY} only (the invoice is in {currency})")
    if method in (MandateMethod.CARD, MandateMethod.UPI) and amount_minor > EXTRA_AUTHENTICATION_ABOVE_MINOR:
        return Routing(Route.LINK, f"{method} debits above INR 15,000.00 need the customer's authentication")
    if amount_minor > max_amount_minor:
        return Routing(Route.LINK, "the amount is above the mandate's maximum")
    if method is MandateMethod.UPI and debits_in_cycle > 0:
        return Routing(Route.LINK, "UPI allows one debit per cycle, and this cycle's was made")
    return Routing(Route.DEBIT)


class DebitState(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for its start (debit_at)
    ORDERED = "ordered"  # the fresh order exists at Razorpay
    REQUESTED = "requested"  # create/recurring was sent (maybe answered): never sent again, only looked up
    CAPTURED = "captured"
    FAILED = "failed"  # dunning goes on with the invoice
    LINKED = "linked"  # not debited: a payment link was sent instead
    SKIPPED = "skipped"  # paid, voided, or the mandate was no longer confirmed when its time came

    @property
    def finished(self) -> bool:
        return self in (DebitState.CAPTURED, DebitState.FAILED, DebitState.LINKED, DebitState.SKIPPED)


def debit_moves(current: DebitState, reported: DebitState) -> bool:
    """Whether a provider's report (captured or failed) moves a debit: only one not finished, and a capture
    overrides nothing but an unfinished state (a debit reported failed stays failed: dunning has it)."""
    return not current.finished and reported in (DebitState.CAPTURED, DebitState.FAILED)


@dataclass(frozen=True)
class Mandate:
    id: str
    organisation_id: str
    method: MandateMethod
    state: MandateState
    max_amount_minor: int
    expire_at: datetime
    customer_id: str = ""
    auth_order_id: str = ""
    token_id: str = ""
    checkout_url: str = ""
    reason: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # What the authorisation order takes, as the provider made it (Checkout shows it while the customer
    # authorises): 0 for eNACH, INR 1.00 for cards and UPI. Known once the order exists.
    auth_amount_minor: int = 0
    auth_currency: str = ""


@dataclass(frozen=True)
class Debit:
    """The one debit of one invoice on a mandate (its natural key: the invoice)."""

    invoice_id: str
    organisation_id: str
    mandate_id: str
    method: MandateMethod
    state: DebitState
    amount_minor: int
    currency: str
    cycle: str
    due_at: datetime
    debit_at: datetime
    receipt: str
    provider_order_id: str = ""
    provider_payment_id: str = ""
    attempts: int = 0
    next_at: datetime | None = None
    notified_at: datetime | None = None
    reason: str = ""
    link_url: str = ""
