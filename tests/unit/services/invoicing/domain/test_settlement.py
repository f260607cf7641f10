"""Settlement rules, example by example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.settlement import (
    InvoiceTerms,
    ReviewKind,
    Settlement,
    SettlementKind,
    settle,
    unsettled_balance,
)

T0 = datetime(2026, 11, 5, 10, tzinfo=UTC)
INVOICE = InvoiceTerms(currency="INR", total_minor=100_000)


def payment(event_id: str, amount: int, *, minutes: int = 0, currency: str = "INR", payment_id: str = "",
            provider: str = "razorpay") -> Settlement:
    return Settlement(
        event_id, SettlementKind.PAYMENT_CAPTURED, T0 + timedelta(minutes=minutes), amount, currency,
        payment_id=payment_id or f"pmt_{event_id}", provider=provider,
    )


def refund(event_id: str, amount: int, refund_id: str, *, minutes: int = 0, currency: str = "INR") -> Settlement:
    return Settlement(
        event_id, SettlementKind.REFUND_PROCESSED, T0 + timedelta(minutes=minutes), amount, currency,
        payment_id="pmt_a", refund_id=refund_id,
    )


def refund_failed(event_id: str, amount: int, refund_id: str, *, minutes: int = 0) -> Settlement:
    return Settlement(
        event_id, SettlementKind.REFUND_FAILED, T0 + timedelta(minutes=minutes), amount, "INR", refund_id=refund_id
    )


def notice(event_id: str, kind: SettlementKind, *, minutes: int = 0) -> Settlement:
    return Settlement(event_id, kind, T0 + timedelta(minutes=minutes))


def amounts(result) -> tuple[InvoiceStatus, int, int, int]:
    b = result.balance
    return b.status, b.amount_paid_minor, b.amount_refunded_minor, b.amount_due_minor


def test_an_issued_invoice_owes_its_total_and_a_void_one_nothing():
    assert unsettled_balance(INVOICE).amount_due_minor == 100_000
    assert unsettled_balance(INVOICE).status is InvoiceStatus.ISSUED
    assert unsettled_balance(InvoiceTerms("INR", 100_000, void=True)).amount_due_minor == 0


def test_a_full_payment_pays_and_a_partial_one_partially_pays():
    assert amounts(settle(INVOICE, [payment("a", 100_000)])) == (InvoiceStatus.PAID, 100_000, 0, 0)
    partial = settle(INVOICE, [payment("a", 40_000, provider="offline")])
    assert amounts(partial) == (InvoiceStatus.PARTIALLY_PAID, 40_000, 0, 60_000)
    assert partial.reviews == ()
    both = settle(INVOICE, [payment("a", 40_000), payment("b", 60_000, minutes=1)])
    assert amounts(both) == (InvoiceStatus.PAID, 100_000, 0, 0) and both.reviews == ()


def test_a_zero_total_invoice_is_paid_by_a_zero_capture_and_not_before():
    free = InvoiceTerms("INR", 0)
    assert settle(free, []).balance.status is InvoiceStatus.ISSUED
    settled = settle(free, [payment("z", 0, provider="none")])
    assert amounts(settled) == (InvoiceStatus.PAID, 0, 0, 0) and settled.reviews == ()


def test_refunds_partial_full_and_undone_by_a_failure():
    paid = payment("a", 100_000, payment_id="pmt_a")
    partial = settle(INVOICE, [paid, refund("r1", 30_000, "rfd_1", minutes=5)])
    assert amounts(partial) == (InvoiceStatus.PARTIALLY_REFUNDED, 100_000, 30_000, 0)
    full = settle(INVOICE, [paid, refund("r1", 30_000, "rfd_1", minutes=5), refund("r2", 70_000, "rfd_2", minutes=6)])
    assert amounts(full) == (InvoiceStatus.REFUNDED, 100_000, 100_000, 0) and full.reviews == ()
    undone = settle(INVOICE, [paid, refund("r1", 30_000, "rfd_1", minutes=5), refund_failed("f1", 30_000, "rfd_1")])
    assert amounts(undone) == (InvoiceStatus.PAID, 100_000, 0, 0)
    assert undone.applied == {"a"}


def test_a_refund_failure_arriving_before_its_refund_still_undoes_it():
    events = [payment("a", 100_000), refund_failed("f1", 30_000, "rfd_1", minutes=9), refund("r1", 30_000, "rfd_1")]
    assert amounts(settle(INVOICE, events)) == (InvoiceStatus.PAID, 100_000, 0, 0)


def test_a_void_invoice_takes_no_money_and_every_payment_or_refund_is_reviewed():
    void = InvoiceTerms("INR", 100_000, void=True)
    result = settle(void, [payment("a", 100_000), refund("r", 5, "rfd_1"), notice("o", SettlementKind.OVERDUE)])
    assert amounts(result) == (InvoiceStatus.VOID, 0, 0, 0)
    assert [(r.kind, r.event_id, r.detail) for r in result.reviews] == [
        (ReviewKind.VOID_INVOICE, "a", "payment for a void invoice"),
        (ReviewKind.VOID_INVOICE, "r", "refund for a void invoice"),
    ]


def test_a_payment_in_another_currency_is_not_applied_but_reviewed():
    result = settle(INVOICE, [payment("a", 1_200, currency="USD")])
    assert amounts(result) == (InvoiceStatus.ISSUED, 0, 0, 100_000)
    (review,) = result.reviews
    assert (review.kind, review.detail, review.amount_minor, review.currency) == (
        ReviewKind.CURRENCY_MISMATCH, "currency mismatch: paid USD, invoice INR", 1_200, "USD")


def test_an_over_payment_is_applied_and_reviewed_with_the_excess():
    result = settle(INVOICE, [payment("a", 80_000), payment("b", 50_000, minutes=1)])
    assert amounts(result) == (InvoiceStatus.PAID, 130_000, 0, 0)
    (review,) = result.reviews
    assert (review.kind, review.event_id, review.amount_minor) == (ReviewKind.OVER_PAYMENT, "b", 30_000)
    assert review.detail == "over-payment: 500.00 INR received, 300.00 INR more than was due"


def test_a_second_capture_of_a_paid_invoice_is_an_over_payment_of_all_of_it():
    result = settle(INVOICE, [payment("b", 100_000, minutes=3), payment("a", 100_000)])
    (review,) = result.reviews
    assert (review.event_id, review.amount_minor) == ("b", 100_000)  # the later capture, whatever arrived first


def test_the_same_payment_under_two_event_ids_counts_once():
    result = settle(INVOICE, [payment("a", 100_000, payment_id="pmt_1"), payment("b", 100_000, payment_id="pmt_1")])
    assert amounts(result) == (InvoiceStatus.PAID, 100_000, 0, 0) and result.reviews == ()


def test_a_refund_beyond_what_was_paid_is_applied_and_reviewed():
    result = settle(INVOICE, [payment("a", 40_000), refund("r1", 50_000, "rfd_1", minutes=1)])
    assert amounts(result) == (InvoiceStatus.REFUNDED, 40_000, 50_000, 60_000)
    (review,) = result.reviews
    assert (review.kind, review.event_id, review.amount_minor) == (ReviewKind.OVER_REFUND, "r1", 10_000)


def test_overdue_and_uncollectible_rank_below_payment():
    overdue = notice("o", SettlementKind.OVERDUE)
    gave_up = notice("u", SettlementKind.UNCOLLECTIBLE, minutes=1)
    assert settle(INVOICE, [overdue]).balance.status is InvoiceStatus.OVERDUE
    assert settle(INVOICE, [overdue, payment("a", 10)]).balance.status is InvoiceStatus.OVERDUE
    assert settle(INVOICE, [overdue, gave_up]).balance.status is InvoiceStatus.UNCOLLECTIBLE
    assert settle(INVOICE, [overdue, gave_up, payment("a", 100_000)]).balance.status is InvoiceStatus.PAID
    assert amounts(settle(INVOICE, [payment("a", 100_000), overdue])) == (InvoiceStatus.PAID, 100_000, 0, 0)


def test_a_negative_amount_is_not_a_settlement():
    with pytest.raises(ValueError, match="never negative"):
        payment("a", -1)


def test_descriptions_say_what_happened():
    assert payment("a", 182_416).describe() == "payment pmt_a captured: 1824.16 INR (razorpay)"
    assert refund_failed("f", 500, "rfd_1").describe() == "refund rfd_1 failed: 5.00 INR back in the books"
