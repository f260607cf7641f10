"""Settlement: what the payments service's events do to an invoice's amounts and status.

An invoice's settlement state is computed from the whole set of its settlements (the payments events recorded
against it), never by adding each event to the previous state. So the result does not depend on the order in
which JetStream delivers the events, and a settlement counted twice is impossible: the set is keyed by event
id (the same event applied twice is one settlement). The rules:

Amounts (integer minor units of the invoice's currency)
- amount_paid = the sum of the captured payments applied. A payment is applied unless the invoice is void or the
  payment is in another currency. Two captures naming the same payment id count once.
- amount_refunded = the sum of the processed refunds applied (same conditions), except those with a refund
  failure for the same refund id: a refund.failed undoes its refund in the books, whichever arrives first. Two
  processed events naming the same refund id count once.
- amount_due = max(total - amount_credited - amount_paid, 0), where total is what payments settle: the invoice total
  less the prepaid credit spent on it (``Invoice.payable_minor``); a void invoice owes nothing (0). Refunds do not
  make an invoice due again: the money went back because the customer was owed it. amount_credited is the sum of
  the invoice's credit notes (``domain/credit_note.py``): what the invoice no longer asks for.

Status, first rule that holds
1. void stays void: nothing is applied to it.
2. refunded: amount_refunded > 0 and amount_refunded >= amount_paid.
3. partially_refunded: 0 < amount_refunded < amount_paid.
4. paid: at least one payment applied, or a credit note issued, and amount_paid >= total - amount_credited (a
   zero-total invoice is paid by a capture of 0 with provider "none"; without one it stays issued; an unpaid
   invoice credited in full is settled by its credit notes, as Stripe marks it paid).
5. uncollectible: dunning gave up (an invoice.uncollectible event).
6. overdue: an invoice.overdue event.
7. partially_paid: 0 < amount_paid < total - amount_credited.
8. issued.
So overdue and uncollectible change nothing on an invoice already paid, and a payment arriving after either
moves the invoice on.

Review (what a person must look at; each names its event)
- a payment or refund for a void invoice: not applied ("payment for a void invoice").
- a payment or refund in another currency than the invoice: not applied ("currency mismatch: paid USD, invoice
  INR").
- an over-payment (more received than was due, including a second capture of an invoice already paid, or the
  original total paid after a credit note had reduced what was due): applied,
  because the money was received, and reviewed with the excess. Which payment is "the" over-payment is decided
  by capture time (then event id), not by arrival, so the verdict too is independent of delivery order.
- an over-refund (refunds beyond what was paid): applied, because the money left, and reviewed with the excess
  (by refund time, then event id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.invoicing.domain.currencies import is_invoiceable
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.money import format_amount


class SettlementKind(StrEnum):
    PAYMENT_CAPTURED = "payment_captured"
    REFUND_PROCESSED = "refund_processed"
    REFUND_FAILED = "refund_failed"
    OVERDUE = "overdue"
    UNCOLLECTIBLE = "uncollectible"


class ReviewKind(StrEnum):
    UNKNOWN_INVOICE = "unknown_invoice"
    VOID_INVOICE = "void_invoice"
    CURRENCY_MISMATCH = "currency_mismatch"
    OVER_PAYMENT = "over_payment"
    OVER_REFUND = "over_refund"
    UNPROCESSABLE_EVENT = "unprocessable_event"
    # A top-up's payment was refunded after some of the credit it bought was spent: that part could not be taken
    # back (``domain/credit.py`` claw_back); amount is the spent part.
    REFUNDED_CREDIT_SPENT = "refunded_credit_spent"


# The settlements that can change what was refunded.
REFUND_KINDS = frozenset({SettlementKind.REFUND_PROCESSED, SettlementKind.REFUND_FAILED})

# Review kinds a later event can make moot (a missing payment arrives, a refund fails): settlement resolves
# them itself. The others stay until a person resolves them.
RECOMPUTED_REVIEW_KINDS = frozenset({ReviewKind.OVER_PAYMENT, ReviewKind.OVER_REFUND})

# Statuses that settlement decides; draft and void are decided by issuing and voiding.
SETTLED_STATUSES = frozenset(
    {
        InvoiceStatus.ISSUED,
        InvoiceStatus.PARTIALLY_PAID,
        InvoiceStatus.PAID,
        InvoiceStatus.PARTIALLY_REFUNDED,
        InvoiceStatus.REFUNDED,
        InvoiceStatus.OVERDUE,
        InvoiceStatus.UNCOLLECTIBLE,
    }
)


def describe_money(minor: int, currency: str) -> str:
    """"1824.16 INR"; a code that is not a currency (a bad event) is written as it came."""
    if is_invoiceable(currency):
        return f"{format_amount(minor, currency)} {currency}"
    return f"{minor} minor units of {currency or '(no currency)'}"


@dataclass(frozen=True)
class Settlement:
    """One payments event recorded against an invoice."""

    event_id: str
    kind: SettlementKind
    occurred_at: datetime
    amount_minor: int = 0
    currency: str = ""
    payment_id: str = ""
    refund_id: str = ""
    provider: str = ""  # "razorpay", "offline", "none"; "" for overdue and uncollectible

    def __post_init__(self) -> None:
        if not self.event_id:
            raise ValueError("a settlement needs its event id")
        if self.amount_minor < 0:
            raise ValueError(f"amount_minor is {self.amount_minor}; payments and refunds are never negative")

    def describe(self) -> str:
        """Why the invoice changed, in words, for its status history."""
        money = describe_money(self.amount_minor, self.currency)
        match self.kind:
            case SettlementKind.PAYMENT_CAPTURED:
                return f"payment {self.payment_id} captured: {money} ({self.provider or 'unknown provider'})"
            case SettlementKind.REFUND_PROCESSED:
                return f"refund {self.refund_id} of payment {self.payment_id} processed: {money}"
            case SettlementKind.REFUND_FAILED:
                return f"refund {self.refund_id} failed: {money} back in the books"
            case SettlementKind.OVERDUE:
                return "past its due date unpaid"
            case SettlementKind.UNCOLLECTIBLE:
                return "dunning gave up: uncollectible"

    def _canonical(self) -> tuple:
        """A total order on settlements, by when they happened: what "first" means, whatever the arrival order."""
        return (
            self.occurred_at, self.event_id, self.kind.value, self.amount_minor, self.currency, self.payment_id,
            self.refund_id, self.provider,
        )


@dataclass(frozen=True)
class PaymentsEvent:
    """A payments event as settlement needs it: the invoice and organisation it names, and what happened."""

    invoice_id: str
    organisation_id: str
    settlement: Settlement


@dataclass(frozen=True)
class InvoiceTerms:
    """What settlement needs to know of an invoice."""

    currency: str
    # What payments settle: the invoice's total less the prepaid credit spent on it (``Invoice.payable_minor``).
    total_minor: int
    void: bool = False
    # The sum of the invoice's credit notes (never more than its total), and the part of it that reduced what was
    # still due when each was issued (the rest was already paid: refunded or left as credit by the credit note).
    credited_minor: int = 0
    credited_against_due_minor: int = 0

    @property
    def owed_minor(self) -> int:
        return self.total_minor - self.credited_minor


@dataclass(frozen=True)
class Review:
    """Something settlement could not decide alone; unique per (kind, event id)."""

    kind: ReviewKind
    event_id: str
    detail: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class Balance:
    status: InvoiceStatus
    amount_paid_minor: int
    amount_refunded_minor: int
    amount_due_minor: int


@dataclass(frozen=True)
class SettlementResult:
    balance: Balance
    # Event ids of the settlements that counted towards the amounts.
    applied: frozenset[str]
    reviews: tuple[Review, ...]


def unsettled_balance(invoice: InvoiceTerms) -> Balance:
    """An issued invoice before any settlement: everything due (nothing for a void one)."""
    return settle(invoice, ()).balance


def settle(invoice: InvoiceTerms, settlements: Iterable[Settlement]) -> SettlementResult:
    """The invoice's amounts, status and reviews given every settlement recorded against it (see the module
    docstring for the rules). Pure and order-independent: any permutation of ``settlements``, with any
    duplicates of an event id, gives the same result."""
    events = _deduplicated(settlements)
    reviews: list[Review] = []
    payments: list[Settlement] = []
    refunds: list[Settlement] = []
    failed_refunds: set[str] = set()
    overdue = uncollectible = False
    for event in events:
        match event.kind:
            case SettlementKind.PAYMENT_CAPTURED | SettlementKind.REFUND_PROCESSED:
                verb = "paid" if event.kind is SettlementKind.PAYMENT_CAPTURED else "refunded"
                if invoice.void:
                    what = "payment" if event.kind is SettlementKind.PAYMENT_CAPTURED else "refund"
                    reviews.append(_review(ReviewKind.VOID_INVOICE, event, f"{what} for a void invoice"))
                elif event.currency != invoice.currency:
                    detail = f"currency mismatch: {verb} {event.currency}, invoice {invoice.currency}"
                    reviews.append(_review(ReviewKind.CURRENCY_MISMATCH, event, detail))
                elif event.kind is SettlementKind.PAYMENT_CAPTURED:
                    payments.append(event)
                else:
                    refunds.append(event)
            case SettlementKind.REFUND_FAILED:
                failed_refunds.add(event.refund_id or event.event_id)
            case SettlementKind.OVERDUE:
                overdue = True
            case SettlementKind.UNCOLLECTIBLE:
                uncollectible = True

    counted_payments = _first_per(payments, lambda p: p.payment_id or p.event_id)
    counted_refunds = [
        r for r in _first_per(refunds, lambda r: r.refund_id or r.event_id)
        if (r.refund_id or r.event_id) not in failed_refunds
    ]

    paid = 0
    for payment in counted_payments:
        before, paid = paid, paid + payment.amount_minor
        excess = min(payment.amount_minor, paid - max(invoice.total_minor - invoice.credited_against_due_minor, before))
        if excess > 0:
            detail = (
                f"over-payment: {describe_money(payment.amount_minor, payment.currency)} received, "
                f"{describe_money(excess, payment.currency)} more than was due"
            )
            reviews.append(Review(ReviewKind.OVER_PAYMENT, payment.event_id, detail, excess, payment.currency))
    refunded = 0
    for refund in counted_refunds:
        before, refunded = refunded, refunded + refund.amount_minor
        excess = min(refund.amount_minor, refunded - max(paid, before))
        if excess > 0:
            detail = (
                f"over-refund: {describe_money(refund.amount_minor, refund.currency)} refunded, "
                f"{describe_money(excess, refund.currency)} more than was paid"
            )
            reviews.append(Review(ReviewKind.OVER_REFUND, refund.event_id, detail, excess, refund.currency))

    balance = Balance(
        status=_status(invoice, paid, refunded, bool(counted_payments), overdue=overdue, uncollectible=uncollectible),
        amount_paid_minor=paid,
        amount_refunded_minor=refunded,
        amount_due_minor=0 if invoice.void else max(invoice.owed_minor - paid, 0),
    )
    applied = frozenset(s.event_id for s in (*counted_payments, *counted_refunds))
    return SettlementResult(balance, applied, tuple(sorted(reviews, key=lambda r: (r.kind.value, r.event_id))))


def _status(
    invoice: InvoiceTerms, paid: int, refunded: int, any_payment: bool, *, overdue: bool, uncollectible: bool
) -> InvoiceStatus:
    if invoice.void:
        return InvoiceStatus.VOID
    if refunded > 0 and refunded >= paid:
        return InvoiceStatus.REFUNDED
    if 0 < refunded < paid:
        return InvoiceStatus.PARTIALLY_REFUNDED
    if (any_payment or invoice.credited_minor > 0) and paid >= invoice.owed_minor:
        return InvoiceStatus.PAID
    if uncollectible:
        return InvoiceStatus.UNCOLLECTIBLE
    if overdue:
        return InvoiceStatus.OVERDUE
    if 0 < paid < invoice.owed_minor:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.ISSUED


def _deduplicated(settlements: Iterable[Settlement]) -> list[Settlement]:
    """One settlement per event id, in canonical order. Payments never reuse an event id for different
    content, but if one did, the canonical first would win wherever it arrived in the stream."""
    chosen: dict[str, Settlement] = {}
    for settlement in settlements:
        held = chosen.get(settlement.event_id)
        if held is None or settlement._canonical() < held._canonical():
            chosen[settlement.event_id] = settlement
    return sorted(chosen.values(), key=Settlement._canonical)


def _first_per(settlements: list[Settlement], key) -> list[Settlement]:  # noqa: ANN001 - a key function
    """The canonically first settlement per key (payment id, refund id), keeping canonical order."""
    seen: set[str] = set()
    first = []
    for settlement in settlements:
        identity = key(settlement)
        if identity not in seen:
            seen.add(identity)
            first.append(settlement)
    return first


def _review(kind: ReviewKind, event: Settlement, detail: str) -> Review:
    return Review(kind, event.event_id, detail, event.amount_minor, event.currency)


# What is kept of settlement, as read back -------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedSettlement:
    invoice_id: str
    settlement: Settlement
    recorded_at: datetime
    applied: bool


@dataclass(frozen=True)
class StatusChange:
    invoice_id: str
    from_status: InvoiceStatus
    to_status: InvoiceStatus
    changed_at: datetime
    reason: str
    cause: str  # a payments event id, "invoice run <id>", "reissue", or the operator's RPC


@dataclass(frozen=True)
class ReviewItem:
    id: str
    invoice_id: str  # "" when the invoice is unknown
    organisation_id: str
    kind: ReviewKind
    detail: str
    event_id: str
    amount_minor: int
    currency: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolution: str = ""
    resolved_by: str = ""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
