"""Invariants of credit notes over generated invoices and sequences of credit requests (hypothesis), in JPY (no
minor units), INR (two) and KWD (three), for CGST+SGST, IGST and exports: the credit notes of an invoice never take
more than it has, per line, per GST rate, per tax line and in total; a credit of everything left reverses the tax
exactly; no credit note has negative tax; and the same partial credits in any order reverse the same tax."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.credit_note import (
    CreditNote,
    CreditNoteOutcome,
    CreditNoteReason,
    LineCredit,
    credit_amounts,
)
from services.invoicing.domain.currencies import minor_units
from services.invoicing.domain.invoice import Invoice, LineKind, TaxRegime
from tests.unit.services.invoicing.domain.credit_note_fixtures import invoice_of

CURRENCIES = ("JPY", "INR", "KWD")
GST_RATES = ("0", "5", "12", "18", "28")
REGIMES = (TaxRegime.INTRA_STATE, TaxRegime.INTER_STATE, TaxRegime.EXPORT)


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    currency = draw(st.sampled_from(CURRENCIES))
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        quantity = draw(st.integers(1, 10_000))
        amount = draw(st.integers(1, 10**10))
        unit_price = (Decimal(amount).scaleb(-minor_units(currency)) / quantity).quantize(Decimal("1e-8"))
        kind = draw(st.sampled_from([LineKind.BASE_FEE, LineKind.USAGE, LineKind.MINIMUM_SPEND]))
        lines.append((kind, str(quantity), str(unit_price), amount, draw(st.sampled_from(GST_RATES))))
    # Now and then a discount at one of the lines' rates, never more than that rate's lines.
    if draw(st.booleans()):
        rate = draw(st.sampled_from([line[4] for line in lines]))
        at_rate = sum(line[3] for line in lines if line[4] == rate)
        off = draw(st.integers(1, at_rate))
        lines.append((LineKind.DISCOUNT, "1", str(-Decimal(off).scaleb(-minor_units(currency))), -off, rate))
    return invoice_of(lines, currency=currency, regime=draw(st.sampled_from(REGIMES)))


def _note(invoice: Invoice, earlier: list[CreditNote], requested: list[LineCredit] | None) -> CreditNote:
    amounts = credit_amounts(invoice, earlier, requested)
    return CreditNote(
        id=f"cn_{len(earlier)}", invoice_id=invoice.id, organisation_id="org_1", number="CN/2627/00001",
        currency=invoice.currency, issue_date=date(2026, 11, 20), reason_code=CreditNoteReason.OTHER, reason="test",
        outcome=CreditNoteOutcome.CREDIT, lines=amounts.lines, tax_lines=amounts.tax_lines,
        subtotal_minor=amounts.subtotal_minor, tax_minor=amounts.tax_minor, total_minor=amounts.total_minor,
        invoice_number=invoice.number, invoice_issue_date=invoice.issue_date, tax_regime=invoice.tax_regime,
        place_of_supply=invoice.place_of_supply, supplier=invoice.supplier, customer=invoice.customer,
    )


@st.composite
def requests(draw: st.DrawFn, invoice: Invoice) -> list[LineCredit]:
    """A partial credit of some chargeable lines by amount or quantity; may well ask for too much."""
    chargeable = [line for line in invoice.lines if line.kind is not LineKind.DISCOUNT]
    chosen = draw(
        st.lists(st.sampled_from(chargeable), min_size=1, max_size=len(chargeable), unique_by=lambda x: x.number)
    )
    asked = []
    for line in chosen:
        if draw(st.booleans()):
            asked.append(LineCredit(line.number, amount_minor=draw(st.integers(1, line.amount_minor))))
        else:
            asked.append(LineCredit(line.number, quantity=Decimal(draw(st.integers(1, int(line.quantity))))))
    return asked


def issue_all(invoice: Invoice, asks: list[list[LineCredit]]) -> list[CreditNote]:
    """Issue each request in turn; those that ask too much are refused (and change nothing)."""
    notes: list[CreditNote] = []
    for requested in asks:
        try:
            notes.append(_note(invoice, notes, requested))
        except (InvalidArgument, FailedPrecondition):
            continue
    return notes


def assert_within(invoice: Invoice, notes: list[CreditNote]) -> None:
    assert sum(n.total_minor for n in notes) <= invoice.total_minor
    assert sum(n.subtotal_minor for n in notes) <= invoice.subtotal_minor
    for line in invoice.lines:
        taken = sum(cl.amount_minor for n in notes for cl in n.lines if cl.invoice_line_number == line.number)
        assert abs(taken) <= abs(line.amount_minor)
    for tax_line in invoice.tax_lines:
        reversed_total = sum(t.amount_minor for n in notes for t in n.tax_lines
                             if (t.kind, t.rate) == (tax_line.kind, tax_line.rate))
        assert 0 <= reversed_total <= tax_line.amount_minor
    for note in notes:
        assert note.total_minor > 0
        assert note.tax_minor >= 0 and all(t.amount_minor >= 0 for t in note.tax_lines)
        assert note.total_minor == note.subtotal_minor + note.tax_minor
        assert note.subtotal_minor == sum(cl.amount_minor for cl in note.lines)


@settings(max_examples=300)
@given(st.data())
def test_credit_notes_never_take_more_than_the_invoice_and_a_full_credit_reverses_exactly(data):
    invoice = data.draw(invoices())
    asks = [data.draw(requests(invoice)) for _ in range(data.draw(st.integers(0, 4)))]
    notes = issue_all(invoice, asks)
    assert_within(invoice, notes)
    if sum(n.total_minor for n in notes) < invoice.total_minor:
        notes.append(_note(invoice, notes, None))
    assert_within(invoice, notes)
    assert sum(n.total_minor for n in notes) == invoice.total_minor
    assert sum(n.tax_minor for n in notes) == invoice.tax_minor
    for tax_line in invoice.tax_lines:
        assert sum(t.amount_minor for n in notes for t in n.tax_lines
                   if (t.kind, t.rate) == (tax_line.kind, tax_line.rate)) == tax_line.amount_minor


@settings(max_examples=200)
@given(st.data())
def test_partial_credits_in_any_order_reverse_the_same_tax_in_total(data):
    invoice = data.draw(invoices())
    asks = [data.draw(requests(invoice)) for _ in range(data.draw(st.integers(1, 4)))]
    notes = issue_all(invoice, asks)
    accepted = [[LineCredit(cl.invoice_line_number, amount_minor=cl.amount_minor) for cl in n.lines] for n in notes]
    shuffled = data.draw(st.permutations(accepted))
    again = issue_all(invoice, list(shuffled))
    assert len(again) == len(notes)  # what fitted in one order fits in any: the limits are on sums
    assert_within(invoice, again)
    assert sum(n.total_minor for n in again) == sum(n.total_minor for n in notes)
    assert sum(n.tax_minor for n in again) == sum(n.tax_minor for n in notes)
