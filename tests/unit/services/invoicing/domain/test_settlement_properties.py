"""Invariants of settlement over generated event sets (hypothesis): order and duplicates never matter, amounts
are never negative, and paid and due always add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.settlement import InvoiceTerms, Settlement, SettlementKind, settle

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def settlement_sets(draw: st.DrawFn) -> list[Settlement]:
    """Distinct events of every kind (a few refunds failing), with small ids so payments and refunds collide."""
    count = draw(st.integers(min_value=0, max_value=12))
    events = []
    for index in range(count):
        kind = draw(st.sampled_from(list(SettlementKind)))
        events.append(
            Settlement(
                event_id=f"evt_{index}",
                kind=kind,
                occurred_at=T0 + timedelta(minutes=draw(st.integers(0, 20))),
                amount_minor=draw(st.integers(0, 150_000)),
                currency=draw(st.sampled_from(["INR", "INR", "INR", "USD"])),
                payment_id=f"pmt_{draw(st.integers(0, 4))}",
                refund_id=f"rfd_{draw(st.integers(0, 3))}",
                provider=draw(st.sampled_from(["razorpay", "offline", "none"])),
            )
        )
    return events


invoices = st.builds(
    InvoiceTerms,
    currency=st.just("INR"),
    total_minor=st.integers(0, 200_000),
    void=st.booleans(),
)


@given(invoices, settlement_sets(), st.randoms(use_true_random=False), st.data())
def test_any_order_with_any_duplicates_gives_the_same_result(invoice, events, random, data):
    expected = settle(invoice, events)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    shuffled = events + duplicates
    random.shuffle(shuffled)
    assert settle(invoice, shuffled) == expected


@given(invoices, settlement_sets())
def test_amounts_are_never_negative_and_paid_plus_due_covers_the_total(invoice, events):
    balance = settle(invoice, events).balance
    assert balance.amount_paid_minor >= 0 and balance.amount_refunded_minor >= 0 and balance.amount_due_minor >= 0
    if invoice.void:
        assert (balance.status, balance.amount_paid_minor, balance.amount_due_minor) == (InvoiceStatus.VOID, 0, 0)
    else:
        assert balance.amount_due_minor == max(invoice.total_minor - balance.amount_paid_minor, 0)
        assert balance.amount_paid_minor + balance.amount_due_minor >= invoice.total_minor
    if balance.status is InvoiceStatus.PAID:
        assert balance.amount_due_minor == 0 and balance.amount_refunded_minor == 0


@given(invoices, settlement_sets())
def test_applying_an_event_again_changes_nothing(invoice, events):
    once = settle(invoice, events)
    for event in events:
        assert settle(invoice, [*events, event]) == once


@given(invoices, settlement_sets())
def test_only_events_in_the_invoice_currency_count_and_the_amounts_are_their_sums(invoice, events):
    result = settle(invoice, events)
    counted = [e for e in events if e.event_id in result.applied]
    assert all(e.currency == invoice.currency and not invoice.void for e in counted)
    paid = sum(e.amount_minor for e in counted if e.kind is SettlementKind.PAYMENT_CAPTURED)
    refunded = sum(e.amount_minor for e in counted if e.kind is SettlementKind.REFUND_PROCESSED)
    assert (result.balance.amount_paid_minor, result.balance.amount_refunded_minor) == (paid, refunded)
    failed = {e.refund_id for e in events if e.kind is SettlementKind.REFUND_FAILED}
    assert not any(e.refund_id in failed for e in counted if e.kind is SettlementKind.REFUND_PROCESSED)


@given(invoices, settlement_sets())
def test_over_payment_reviews_add_up_to_what_was_paid_beyond_the_total(invoice, events):
    result = settle(invoice, events)
    excess = sum(r.amount_minor for r in result.reviews if r.kind == "over_payment")
    assert excess == max(result.balance.amount_paid_minor - invoice.total_minor, 0)
