"""A credit note's document: the invoice's layout titled CREDIT NOTE, naming the original invoice and its date,
with the credited lines and the reversed GST, in the PDF and the HTML alike."""

from __future__ import annotations

from datetime import date

from services.invoicing.adapters.credit_note_document import build_credit_note_view
from services.invoicing.adapters.invoice_html import InvoiceHtmlRenderer
from services.invoicing.adapters.invoice_pdf import render_view_pdf
from services.invoicing.domain.credit_note import (
    CreditNote,
    CreditNoteOutcome,
    CreditNoteReason,
    LineCredit,
    credit_amounts,
)
from services.invoicing.domain.invoice import Invoice, TaxRegime
from tests.unit.services.invoicing.adapters.test_invoice_pdf import BRANDING, text_of
from tests.unit.services.invoicing.domain.credit_note_fixtures import ten_thousand_rupees


def note_of(invoice: Invoice) -> CreditNote:
    amounts = credit_amounts(invoice, [], [LineCredit(1, amount_minor=250_000)])
    return CreditNote(
        id="cn_1", invoice_id=invoice.id, organisation_id=invoice.organisation_id, number="CN/2627/00001",
        currency="INR", issue_date=date(2026, 11, 20), reason_code=CreditNoteReason.SERVICE_ISSUE,
        reason="Outage on 12 Oct", outcome=CreditNoteOutcome.CREDIT, lines=amounts.lines,
        tax_lines=amounts.tax_lines, subtotal_minor=amounts.subtotal_minor, tax_minor=amounts.tax_minor,
        total_minor=amounts.total_minor, invoice_number=invoice.number, invoice_issue_date=invoice.issue_date,
        tax_regime=invoice.tax_regime, place_of_supply=invoice.place_of_supply, supplier=invoice.supplier,
        customer=invoice.customer,
    )


def test_the_view_is_titled_credit_note_and_names_the_invoice():
    invoice = ten_thousand_rupees(TaxRegime.INTRA_STATE)
    _, view = build_credit_note_view(note_of(invoice), invoice)
    assert (view.title, view.number, view.document_name, view.due_date) == (
        "CREDIT NOTE", "CN/2627/00001", "Credit note", "")
    details = dict(view.details)
    assert (details["Original invoice"], details["Invoice date"], details["Issue date"]) == (
        "INV/2627/00001", "1 Nov 2026", "20 Nov 2026")
    assert [(t.kind, t.rate, t.amount) for t in view.tax_lines] == [("CGST", "9", "225.00"), ("SGST", "9", "225.00")]
    assert (view.subtotal, view.tax_total, view.total) == ("2,500.00", "450.00", "2,950.00")
    assert view.lines[0].quantity == "-"  # credited by amount
    assert any("INV/2627/00001" in note for note in view.notes) and any("Outage" in note for note in view.notes)


def test_the_pdf_and_html_print_it():
    invoice = ten_thousand_rupees(TaxRegime.INTER_STATE)
    note = note_of(invoice)
    shaped, view = build_credit_note_view(note, invoice)
    text = text_of(render_view_pdf(view, BRANDING))
    for expected in ("CREDIT NOTE", "CN/2627/00001", "Original invoice", "INV/2627/00001", "IGST", "450.00",
                     "2,950.00", "Outage on 12 Oct"):
        assert expected in text, expected
    html = InvoiceHtmlRenderer().render_view(shaped, view, BRANDING)
    assert "CREDIT NOTE" in html and "CREDIT NOTE DETAILS" in html and "INV/2627/00001" in html
