"""Coupons, tax, prepaid credit, payments and credit notes together (hypothesis), in JPY, INR and KWD: however an
invoice is discounted, paid by credit and by payments, and then credited in parts and in whole, every minor unit
is accounted for.

For an invoice of total T, spent credit C, payment P, and credit notes N_i each split into A_i against what was
still due, R_i refunded and K_i left as new credit:
- at every step, C + P + due + sum(A_i) = T (what the invoice asked for is paid, credited against, or still due);
- what the customer is out of pocket, C + P - sum(R_i) - sum(K_i) + due, is the invoice less its credit notes;
- the credit notes never take more than the invoice, and a last credit of everything reverses its subtotal and
  each tax line exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.credit import apply_credits
from services.invoicing.domain.credit_note import (
    CreditNote,
    CreditNoteOutcome,
    CreditNoteReason,
    LineCredit,
    credit_amounts,
    split_outcome,
)
from services.invoicing.domain.invoice import InvoiceStatus, LineKind
from services.invoicing.domain.invoice_builder import build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.settlement import InvoiceTerms, Settlement, SettlementKind, settle
from tests.unit.services.invoicing.domain.test_credit_properties import NOW, grants
from tests.unit.services.invoicing.domain.test_discount_properties import cases

PAID_AT = datetime(2026, 12, 2, tzinfo=UTC)


@st.composite
def requests(draw: st.DrawFn, chargeable: list) -> list[LineCredit]:
    """A partial credit of some lines that charge something, by amount or whole units; may ask for too much."""
    chosen = draw(st.lists(st.sampled_from(chargeable), min_size=1, max_size=len(chargeable),
                           unique_by=lambda line: line.number))
    asked = []
    for line in chosen:
        if line.quantity >= 1 and draw(st.booleans()):
            asked.append(LineCredit(line.number, quantity=Decimal(draw(st.integers(1, int(line.quantity))))))
        else:
            asked.append(LineCredit(line.number, amount_minor=draw(st.integers(1, line.amount_minor))))
    return asked


def due_after(invoice, paid: int, notes: list[CreditNote]) -> int:
    terms = InvoiceTerms(invoice.currency, invoice.payable_minor, credited_minor=sum(n.total_minor for n in notes),
                         credited_against_due_minor=sum(n.applied_to_due_minor for n in notes))
    payments = [Settlement("evt_p", SettlementKind.PAYMENT_CAPTURED, PAID_AT, paid, invoice.currency, "pay_1",
                           provider="razorpay")] if paid else []
    return settle(terms, payments).balance.amount_due_minor


def issue_note(invoice, notes: list[CreditNote], requested, outcome: CreditNoteOutcome, paid: int) -> CreditNote:
    amounts = credit_amounts(invoice, notes, requested)
    refundable = paid - sum(n.refund_minor for n in notes)
    try:
        split = split_outcome(amounts.total_minor, due_after(invoice, paid, notes), refundable, outcome,
                              invoice.currency)
    except FailedPrecondition:  # more to refund than was paid: the operator leaves it as credit instead
        split = split_outcome(amounts.total_minor, due_after(invoice, paid, notes), refundable,
                              CreditNoteOutcome.CREDIT, invoice.currency)
    return CreditNote(
        id=f"cn_{len(notes)}", invoice_id=invoice.id, organisation_id=invoice.organisation_id, number="CN/2627/1",
        currency=invoice.currency, issue_date=date(2026, 12, 3), reason_code=CreditNoteReason.OTHER,
        reason="test", outcome=outcome, lines=amounts.lines, tax_lines=amounts.tax_lines,
        subtotal_minor=amounts.subtotal_minor, tax_minor=amounts.tax_minor, total_minor=amounts.total_minor,
        invoice_number=invoice.number, invoice_issue_date=invoice.issue_date, tax_regime=invoice.tax_regime,
        place_of_supply=invoice.place_of_supply, supplier=invoice.supplier, customer=invoice.customer,
        applied_to_due_minor=split.applied_to_due_minor, refund_minor=split.refund_minor,
        credit_minor=split.credit_minor,
    )


def assert_balanced(invoice, paid: int, notes: list[CreditNote]) -> None:
    due = due_after(invoice, paid, notes)
    credited = sum(n.total_minor for n in notes)
    assert due >= 0 and credited <= invoice.total_minor
    for note in notes:
        assert note.applied_to_due_minor + note.refund_minor + note.credit_minor == note.total_minor
        assert min(note.applied_to_due_minor, note.refund_minor, note.credit_minor) >= 0
    assert invoice.credits_minor + paid + due + sum(n.applied_to_due_minor for n in notes) == invoice.total_minor
    returned = sum(n.refund_minor + n.credit_minor for n in notes)
    assert invoice.credits_minor + paid - returned + due == invoice.total_minor - credited
    assert sum(n.refund_minor for n in notes) <= paid


@settings(max_examples=200, deadline=None)
@given(cases(), st.data())
def test_coupons_tax_credit_payments_and_credit_notes_balance_to_the_minor_unit(billing_input, data) -> None:
    built = build_invoice("inv_1", billing_input)
    if built.total_minor <= 0:
        return  # nothing to pay and nothing to credit
    issued = replace(built, status=InvoiceStatus.ISSUED, number="INV/2627/00001", issue_date=date(2026, 12, 1))
    own = [replace(g, organisation_id=issued.organisation_id) for g in data.draw(grants(issued.currency))]
    invoice = apply_credits(issued, own, NOW)
    validate_invoice(invoice)
    assert invoice.tax_lines == issued.tax_lines  # neither credit nor coupons' order changes the law's tax
    discounts = -sum(line.amount_minor for line in invoice.lines if line.kind is LineKind.DISCOUNT)
    charged = sum(line.amount_minor for line in invoice.lines if line.kind is not LineKind.DISCOUNT)
    assert charged - discounts + invoice.tax_minor == invoice.total_minor

    paid = data.draw(st.integers(0, invoice.payable_minor))
    event(f"{invoice.currency}, credit spent: {invoice.credits_minor > 0}, paid: {paid > 0}")
    notes: list[CreditNote] = []
    assert_balanced(invoice, paid, notes)
    outcomes = st.sampled_from([CreditNoteOutcome.REFUND, CreditNoteOutcome.CREDIT])
    chargeable = [line for line in invoice.lines if line.kind is not LineKind.DISCOUNT and line.amount_minor > 0]
    for _ in range(data.draw(st.integers(0, 3)) if chargeable else 0):
        try:
            notes.append(issue_note(invoice, notes, data.draw(requests(chargeable)), data.draw(outcomes), paid))
        except (InvalidArgument, FailedPrecondition):
            continue  # asked for more than is left: refused, nothing changes
        assert_balanced(invoice, paid, notes)
    try:
        notes.append(issue_note(invoice, notes, None, data.draw(outcomes), paid))
    except (InvalidArgument, FailedPrecondition):
        assert sum(n.total_minor for n in notes) == invoice.total_minor  # nothing was left to credit
    assert_balanced(invoice, paid, notes)
    assert sum(n.subtotal_minor for n in notes) == invoice.subtotal_minor
    for tax_line in invoice.tax_lines:
        assert sum(t.amount_minor for n in notes for t in n.tax_lines
                   if (t.kind, t.rate) == (tax_line.kind, tax_line.rate)) == tax_line.amount_minor
    assert due_after(invoice, paid, notes) == 0
