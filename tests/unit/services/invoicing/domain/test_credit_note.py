"""Credit notes in the domain: what they may take, their reversed GST, numbering, reasons and outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.credit_note import (
    CreditNote,
    CreditNoteOutcome,
    CreditNoteReason,
    LineCredit,
    credit_amounts,
    format_credit_note_number,
    split_outcome,
    validate_outcome,
    validate_reason,
)
from services.invoicing.domain.invoice import Invoice, InvoiceStatus, LineKind, TaxKind, TaxRegime
from services.invoicing.domain.settlement import InvoiceTerms, Settlement, SettlementKind, settle
from tests.unit.services.invoicing.domain.credit_note_fixtures import invoice_of, ten_thousand_rupees


def issued(invoice: Invoice, requested, earlier=()) -> CreditNote:  # noqa: ANN001
    amounts = credit_amounts(invoice, list(earlier), requested)
    return CreditNote(
        id=f"cn_{len(earlier)}", invoice_id=invoice.id, organisation_id=invoice.organisation_id, number="CN/2627/00001",
        currency=invoice.currency, issue_date=date(2026, 11, 20), reason_code=CreditNoteReason.GOODWILL, reason="x",
        outcome=CreditNoteOutcome.CREDIT, lines=amounts.lines, tax_lines=amounts.tax_lines,
        subtotal_minor=amounts.subtotal_minor, tax_minor=amounts.tax_minor, total_minor=amounts.total_minor,
        invoice_number=invoice.number, invoice_issue_date=invoice.issue_date, tax_regime=invoice.tax_regime,
        place_of_supply=invoice.place_of_supply, supplier=invoice.supplier, customer=invoice.customer,
    )


def test_the_docs_example_partial_credit_of_2500_rupees_reverses_450_of_igst():
    invoice = ten_thousand_rupees()
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (1_000_000, 180_000, 1_180_000)
    note = issued(invoice, [LineCredit(1, amount_minor=250_000)])
    assert (note.subtotal_minor, note.tax_minor, note.total_minor) == (250_000, 45_000, 295_000)
    (tax,) = note.tax_lines
    assert (tax.kind, tax.rate, tax.taxable_minor, tax.amount_minor) == (TaxKind.IGST, Decimal(18), 250_000, 45_000)
    rest = issued(invoice, None, [note])
    assert (rest.subtotal_minor, rest.tax_minor, rest.total_minor) == (750_000, 135_000, 885_000)


def test_intra_state_splits_the_reversal_into_cgst_and_sgst_at_the_invoices_rates():
    note = issued(ten_thousand_rupees(TaxRegime.INTRA_STATE), [LineCredit(1, amount_minor=250_000)])
    assert [(t.kind, t.rate, t.amount_minor) for t in note.tax_lines] == [
        (TaxKind.CGST, Decimal(9), 22_500), (TaxKind.SGST, Decimal(9), 22_500)
    ]


def test_a_full_credit_reverses_the_tax_exactly_even_after_awkward_partials():
    invoice = invoice_of([(LineKind.USAGE, "7", "1.43", 1001, "18"), (LineKind.BASE_FEE, "1", "3.33", 333, "5")])
    first = issued(invoice, [LineCredit(1, amount_minor=1)])
    second = issued(invoice, [LineCredit(1, amount_minor=333), LineCredit(2, amount_minor=1)], [first])
    last = issued(invoice, None, [first, second])
    notes = [first, second, last]
    assert sum(n.total_minor for n in notes) == invoice.total_minor
    for tax_line in invoice.tax_lines:
        reversed_total = sum(t.amount_minor for n in notes for t in n.tax_lines
                             if (t.kind, t.rate) == (tax_line.kind, tax_line.rate))
        assert reversed_total == tax_line.amount_minor


def test_credit_by_quantity_prices_at_the_unit_price_and_the_rest_takes_the_rest():
    invoice = invoice_of([(LineKind.USAGE, "3", "3.335", 1001, "18")])
    first = issued(invoice, [LineCredit(1, quantity=Decimal(1))])
    assert first.lines[0].amount_minor == 334  # 3.335 rounded half-up
    rest = issued(invoice, [LineCredit(1, quantity=Decimal(2))], [first])
    assert rest.lines[0].amount_minor == 1001 - 334


@pytest.mark.parametrize(
    ("requested", "field"),
    [
        ([LineCredit(9, amount_minor=1)], "lines[0].line_number"),
        ([LineCredit(1, amount_minor=1), LineCredit(1, amount_minor=1)], "lines[1].line_number"),
        ([LineCredit(1, amount_minor=1_000_001)], "lines[0].amount_minor"),
        ([LineCredit(1, amount_minor=1, quantity=Decimal(1))], "lines[0].amount_minor"),
        ([LineCredit(1)], "lines[0].amount_minor"),
        ([LineCredit(1, quantity=Decimal(2))], "lines[0].quantity"),
        ([LineCredit(1, amount_minor=-5)], "lines[0].amount_minor"),
        ([], "lines"),
    ],
)
def test_bad_requests_name_their_field(requested, field):
    with pytest.raises(InvalidArgument) as caught:
        credit_amounts(ten_thousand_rupees(), [], requested)
    assert caught.value.field == field


def test_over_credit_after_an_earlier_note_is_refused():
    invoice = ten_thousand_rupees()
    first = issued(invoice, [LineCredit(1, amount_minor=900_000)])
    with pytest.raises(InvalidArgument, match="100000 left"):
        credit_amounts(invoice, [first], [LineCredit(1, amount_minor=100_001)])
    everything = issued(invoice, None, [first])
    with pytest.raises(FailedPrecondition, match="nothing is left"):
        credit_amounts(invoice, [first, everything], None)


def test_a_discounted_line_cannot_be_credited_beyond_the_invoices_net_at_its_rate():
    invoice = invoice_of([(LineKind.BASE_FEE, "1", "100", 10_000, "18"), (LineKind.DISCOUNT, "1", "-20", -2_000, "18")])
    with pytest.raises(InvalidArgument, match="8000 is left") as caught:
        credit_amounts(invoice, [], [LineCredit(1, amount_minor=10_000)])
    assert caught.value.field == "lines"
    with pytest.raises(InvalidArgument, match="discount line"):
        credit_amounts(invoice, [], [LineCredit(2, amount_minor=1)])
    whole = issued(invoice, None)
    assert whole.total_minor == invoice.total_minor
    assert [line.amount_minor for line in whole.lines] == [10_000, -2_000]


@pytest.mark.parametrize("status", [InvoiceStatus.DRAFT, InvoiceStatus.VOID])
def test_only_issued_invoices_can_be_credited(status):
    with pytest.raises(FailedPrecondition):
        credit_amounts(replace(ten_thousand_rupees(), status=status), [], None)


def test_numbers_are_the_invoice_shape_in_their_own_series():
    assert format_credit_note_number("CN", "2627", 1) == "CN/2627/00001"
    assert len(format_credit_note_number("CN-KA", "2627", 99_999)) == 16
    with pytest.raises(FailedPrecondition):
        format_credit_note_number("CN-KA", "2627", 100_000)


def test_reasons_are_bounded_and_never_echoed():
    assert validate_reason("billing_error", "  wrong tier  ") == (CreditNoteReason.BILLING_ERROR, "wrong tier")
    for code, text, field in [("nope", "x", "reason_code"), ("goodwill", " ", "reason"),
                              ("goodwill", "y" * 501, "reason"), ("goodwill", "a\x00b", "reason")]:
        with pytest.raises(InvalidArgument) as caught:
            validate_reason(code, text)
        assert caught.value.field == field
        assert "y" * 50 not in str(caught.value)
    with pytest.raises(InvalidArgument) as caught:
        validate_outcome("")
    assert caught.value.field == "outcome"


def test_the_total_first_reduces_what_is_due_and_the_rest_is_refunded_or_credited():
    assert split_outcome(295_000, 1_180_000, 0, CreditNoteOutcome.REFUND, "INR").refund_minor == 0
    paid = split_outcome(295_000, 0, 1_180_000, CreditNoteOutcome.REFUND, "INR")
    assert (paid.applied_to_due_minor, paid.refund_minor, paid.credit_minor) == (0, 295_000, 0)
    partly = split_outcome(800_000, 680_000, 500_000, CreditNoteOutcome.CREDIT, "INR")
    assert (partly.applied_to_due_minor, partly.refund_minor, partly.credit_minor) == (680_000, 0, 120_000)
    with pytest.raises(FailedPrecondition, match="outcome credit"):
        split_outcome(295_000, 0, 100_000, CreditNoteOutcome.REFUND, "INR")


def _captured(amount: int) -> Settlement:
    from datetime import UTC, datetime

    return Settlement("evt_1", SettlementKind.PAYMENT_CAPTURED, datetime(2026, 11, 2, tzinfo=UTC), amount, "INR",
                      payment_id="pay_1", provider="razorpay")


def test_settlement_owes_the_total_less_credit_notes():
    partial = settle(InvoiceTerms("INR", 1_180_000, credited_minor=295_000), []).balance
    assert (partial.status, partial.amount_due_minor) == (InvoiceStatus.ISSUED, 885_000)
    full = settle(InvoiceTerms("INR", 1_180_000, credited_minor=1_180_000), []).balance
    assert (full.status, full.amount_due_minor) == (InvoiceStatus.PAID, 0)  # settled by its credit note
    rest_paid = settle(InvoiceTerms("INR", 1_180_000, credited_minor=295_000), [_captured(885_000)])
    assert (rest_paid.balance.status, rest_paid.balance.amount_due_minor) == (InvoiceStatus.PAID, 0)
    assert rest_paid.reviews == ()
    uncredited = settle(InvoiceTerms("INR", 1_180_000), [_captured(885_000)]).balance
    assert (uncredited.status, uncredited.amount_due_minor) == (InvoiceStatus.PARTIALLY_PAID, 295_000)


def test_paying_the_original_total_after_a_credit_reduced_what_was_due_is_an_over_payment():
    before_paying = InvoiceTerms("INR", 1_180_000, credited_minor=295_000, credited_against_due_minor=295_000)
    result = settle(before_paying, [_captured(1_180_000)])
    assert result.balance.status is InvoiceStatus.PAID
    [review] = result.reviews
    assert (review.kind.value, review.amount_minor) == ("over_payment", 295_000)
    # Credited after it was paid (the credit note refunds or credits it): no over-payment.
    after_paying = InvoiceTerms("INR", 1_180_000, credited_minor=295_000, credited_against_due_minor=0)
    assert settle(after_paying, [_captured(1_180_000)]).reviews == ()
