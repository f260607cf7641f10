"""What a credit note's document says: the invoice's document (``invoice_document``), titled "CREDIT NOTE", with
the credit note's lines, reversed GST and totals, and its details naming the original invoice and its date. Both
renderers (PDF and HTML) lay it out as they lay out an invoice, so the two kinds of document cannot drift apart."""

from __future__ import annotations

from dataclasses import replace

from services.invoicing.adapters.invoice_document import InvoiceView, build_invoice_view, format_date
from services.invoicing.domain.credit_note import CreditNote
from services.invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, LineKind

TITLE = "CREDIT NOTE"


def as_invoice(note: CreditNote, invoice: Invoice) -> Invoice:
    """The credit note in the shape of an invoice (its lines, reversed tax, totals, number and date) over the
    original invoice's period, parties and place of supply, as the invoice renderers take it."""
    originals = {line.number: line for line in invoice.lines}
    lines = []
    for line in note.lines:
        original = originals.get(line.invoice_line_number)
        lines.append(
            InvoiceLine(
                number=line.invoice_line_number,
                kind=original.kind if original else LineKind.USAGE,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount_minor=line.amount_minor,
                period_start=original.period_start if original else None,
                period_end=original.period_end if original else None,
                gst_rate=line.gst_rate,
                sac_code=line.sac_code,
            )
        )
    notes = (f"Credit note against invoice {note.invoice_number} dated {format_date(note.invoice_issue_date)}",
             f"Reason ({note.reason_code.value.replace('_', ' ')}): {note.reason}")
    return replace(
        invoice,
        id=note.id,
        status=InvoiceStatus.ISSUED,
        lines=tuple(lines),
        tax_lines=note.tax_lines,
        subtotal_minor=note.subtotal_minor,
        tax_minor=note.tax_minor,
        total_minor=note.total_minor,
        tax_regime=note.tax_regime,
        place_of_supply=note.place_of_supply,
        supplier=note.supplier,
        customer=note.customer,
        number=note.number,
        issue_date=note.issue_date,
        due_date=None,
        exchange_rate=None,
        notes=(*notes, *note.notes),
    )


def build_credit_note_view(note: CreditNote, invoice: Invoice) -> tuple[Invoice, InvoiceView]:
    """(the credit note as an invoice, its document's text)."""
    shaped = as_invoice(note, invoice)
    view = build_invoice_view(shaped)
    # A line credited by amount has no quantity of its own.
    lines = tuple(
        replace(view_line, quantity="-", unit_price="-") if not line.quantity else view_line
        for view_line, line in zip(view.lines, note.lines, strict=True)
    )
    details = (
        ("Credit note number", view.number),
        ("Issue date", view.issue_date),
        ("Original invoice", note.invoice_number),
        ("Invoice date", format_date(note.invoice_issue_date) or "-"),
        ("Billing period", view.billing_period),
        ("Place of supply", view.place_of_supply),
        ("Currency", view.currency),
    )
    subtitle = view.subtitle
    return shaped, replace(
        view,
        title=TITLE,
        subtitle=subtitle,
        due_date="",
        watermark="",
        status_note="",
        lines=lines,
        details=details,
        details_heading="CREDIT NOTE DETAILS",
        document_name="Credit note",
    )
