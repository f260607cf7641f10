"""The invoice as a PDF (reportlab platypus): A4, branded header, parties, lines with tier breakdowns, tax lines,
totals, footer and "Page n of m" on every page.

Output is reproducible: the same invoice and branding give the same bytes (reportlab's ``invariant`` mode fixes
the creation date and document id), so a stored PDF can be checked against a re-render.

Fonts are :mod:`invoice_pdf_fonts`'s; amounts carry the currency code ("INR"), never a symbol a font may lack.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.invoicing.adapters.invoice_document import (
    Branding,
    EinvoiceView,
    InvoiceView,
    LineView,
    build_invoice_view,
)
from services.invoicing.adapters.invoice_pdf_fonts import fonts, printable
from services.invoicing.domain.einvoice_registration import Registration
from services.invoicing.domain.invoice import Invoice

__all__ = ["Branding", "render_invoice_pdf"]

_MARGIN = 15 * mm
_WIDTH = A4[0] - 2 * _MARGIN
# Platypus frames pad their content by 6 pt; the page margins give that back so content starts at _MARGIN.
_FRAME_PADDING = 6
_GREY = colors.HexColor("#555555")
_RULE = colors.HexColor("#C8CED6")


@functools.cache
def _logo(path: Path) -> tuple[bytes, int, int]:
    """The logo file's bytes and pixel size; invoice runs render thousands of PDFs with one logo, read it once."""
    data = path.read_bytes()
    width, height = ImageReader(io.BytesIO(data)).getSize()
    return data, width, height


class _Styles:
    def __init__(self, branding: Branding) -> None:
        regular, bold = fonts()
        primary = colors.HexColor(branding.primary_colour)
        self.regular, self.bold, self.primary = regular, bold, primary
        self.accent = colors.HexColor(branding.accent_colour)
        base = ParagraphStyle("base", fontName=regular, fontSize=8.5, leading=11)
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=_GREY)
        self.brand = ParagraphStyle("brand", parent=base, fontName=bold, fontSize=17, leading=21, textColor=primary)
        self.title = ParagraphStyle(
            "title", parent=base, fontName=bold, fontSize=15, leading=19, alignment=TA_RIGHT, textColor=primary
        )
        self.subtitle = ParagraphStyle(
            "subtitle", parent=self.small, fontSize=7, alignment=TA_RIGHT, fontName=bold, textColor=primary
        )
        self.heading = ParagraphStyle(
            "heading", parent=base, fontName=bold, fontSize=7.5, leading=10, textColor=primary, spaceAfter=2
        )
        self.party_name = ParagraphStyle("party_name", parent=base, fontName=bold, fontSize=9.5, leading=12)
        self.cell = base
        self.cell_right = ParagraphStyle("cell_right", parent=base, alignment=TA_RIGHT)
        self.cell_head = ParagraphStyle("cell_head", parent=base, fontName=bold, textColor=colors.white)
        self.cell_head_right = ParagraphStyle("cell_head_right", parent=self.cell_head, alignment=TA_RIGHT)
        self.tier = ParagraphStyle("tier", parent=self.small, leftIndent=8)
        self.tier_right = ParagraphStyle("tier_right", parent=self.small, alignment=TA_RIGHT)
        self.total_label = ParagraphStyle("total_label", parent=base, alignment=TA_RIGHT)
        self.total_strong = ParagraphStyle(
            "total_strong", parent=base, fontName=bold, fontSize=10.5, leading=13, alignment=TA_RIGHT
        )
        self.banner = ParagraphStyle(
            "banner", parent=base, fontName=bold, textColor=colors.HexColor("#8A1C1C"), alignment=TA_CENTER
        )


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text: escaped, because Paragraph reads markup and names may contain ``<`` or ``&``."""
    return Paragraph(escape(printable(text, style.fontName)), style)


def _header(view: InvoiceView, branding: Branding, styles: _Styles) -> Table:
    left: list = []
    if branding.logo_path is not None:
        data, width, height = _logo(branding.logo_path)
        scale = min(40 * mm / width, 16 * mm / height)
        logo = Image(io.BytesIO(data), width=width * scale, height=height * scale, hAlign="LEFT")
        left.extend([logo, Spacer(1, 2 * mm)])
    left.append(_p(branding.name, styles.brand))
    right: list = [_p(view.title, styles.title)]
    if view.subtitle:
        right.append(_p(view.subtitle, styles.subtitle))
    table = Table([[left, right]], colWidths=[_WIDTH * 0.4, _WIDTH * 0.6])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LINEBELOW", (0, 0), (-1, 0), 1.5, styles.primary),
            ]
        )
    )
    return table


def _party_block(heading: str, party, styles: _Styles) -> list:
    flowables = [_p(heading, styles.heading), _p(party.name, styles.party_name)]
    flowables += [_p(line, styles.body) for line in party.address_lines]
    if party.country:
        flowables.append(_p(party.country, styles.body))
    if party.email:
        flowables.append(_p(party.email, styles.body))
    if party.state:
        flowables.append(_p(f"State: {party.state}", styles.body))
    if party.gstin:
        flowables.append(_p(f"GSTIN: {party.gstin}", styles.body))
    return flowables


def _details_block(view: InvoiceView, styles: _Styles) -> Table:
    rows = view.details
    label = ParagraphStyle("detail_label", parent=styles.small)
    value = ParagraphStyle("detail_value", parent=styles.body, fontName=styles.bold)
    table = Table(
        [[_p(view.details_heading, styles.heading), ""]] + [[_p(k, label), _p(v, value)] for k, v in rows],
        colWidths=[23 * mm, _WIDTH * 0.4 - 12 - 23 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("SPAN", (0, 0), (1, 0)),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _parties(view: InvoiceView, styles: _Styles) -> Table:
    table = Table(
        [
            [
                _party_block("FROM", view.supplier, styles),
                _party_block("BILL TO", view.customer, styles),
                _details_block(view, styles),
            ]
        ],
        colWidths=[_WIDTH * 0.3, _WIDTH * 0.3, _WIDTH * 0.4],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, -1), styles.accent),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LINEAFTER", (0, 0), (1, 0), 0.5, colors.white),
            ]
        )
    )
    return table


_FIXED_COLUMNS = [11 * mm, 16 * mm, 22 * mm, 28 * mm, 30 * mm]
_COLUMNS = [_FIXED_COLUMNS[0], _WIDTH - sum(_FIXED_COLUMNS), *_FIXED_COLUMNS[1:]]


def _lines_table(view: InvoiceView, styles: _Styles) -> Table:
    currency = view.currency
    head = [
        _p("#", styles.cell_head),
        _p("Description", styles.cell_head),
        _p("SAC", styles.cell_head),
        _p("Quantity", styles.cell_head_right),
        _p("Unit price", styles.cell_head_right),
        _p(f"Amount ({currency})", styles.cell_head_right),
    ]
    rows: list[list] = [head]
    commands: list[tuple] = [
        ("BACKGROUND", (0, 0), (-1, 0), styles.primary),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    for line in view.lines:
        rows.append(_line_row(line, styles))
        commands.append(("LINEABOVE", (0, len(rows) - 1), (-1, len(rows) - 1), 0.5, _RULE))
        for tier in line.breakdown:
            fee = f" + flat fee {tier.flat_fee}" if tier.flat_fee else ""
            rows.append(
                [
                    "",
                    _p(f"{tier.description}{fee}", styles.tier),
                    "",
                    _p(tier.quantity, styles.tier_right),
                    _p(tier.unit_price, styles.tier_right),
                    _p(tier.amount, styles.tier_right),
                ]
            )
            commands.append(("TOPPADDING", (0, len(rows) - 1), (-1, len(rows) - 1), 0))
    commands.append(("LINEBELOW", (0, -1), (-1, -1), 0.8, styles.primary))
    table = Table(rows, colWidths=_COLUMNS, repeatRows=1)
    table.setStyle(TableStyle(commands))
    return table


def _line_row(line: LineView, styles: _Styles) -> list:
    description = [_p(line.description, styles.cell)]
    if line.period:
        description.append(_p(line.period, styles.small))
    return [
        _p(str(line.number), styles.cell),
        description,
        _p(line.sac_code, styles.cell),
        _p(line.quantity, styles.cell_right),
        _p(line.unit_price, styles.cell_right),
        _p(line.amount, styles.cell_right),
    ]


def _totals(view: InvoiceView, styles: _Styles) -> Table:
    rows = [[_p("Subtotal", styles.total_label), _p(view.subtotal, styles.cell_right)]]
    rows += [[_p(tax.label, styles.total_label), _p(tax.amount, styles.cell_right)] for tax in view.tax_lines]
    rows.append([_p(f"Total ({view.currency})", styles.total_strong), _p(view.total, styles.total_strong)])
    total_row = len(rows) - 1
    # Prepaid credit pays the total (after tax): its lines and what is left to pay follow the total.
    rows += [[_p(label, styles.total_label), _p(amount, styles.cell_right)] for label, amount in view.credit_lines]
    if view.amount_due:
        rows.append([_p(f"Amount due ({view.currency})", styles.total_strong),
                     _p(view.amount_due, styles.total_strong)])
    table = Table(rows, colWidths=[62 * mm, 34 * mm], hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, total_row), (-1, total_row), styles.accent),
                ("LINEABOVE", (0, total_row), (-1, total_row), 1, styles.primary),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, total_row), (-1, total_row), 5),
                ("BOTTOMPADDING", (0, total_row), (-1, total_row), 5),
            ]
        )
    )
    return table


def _closing(view: InvoiceView, styles: _Styles) -> list:
    flowables: list = []
    if view.amount_in_words:
        flowables += [_p("AMOUNT IN WORDS", styles.heading), _p(view.amount_in_words, styles.body), Spacer(1, 3 * mm)]
    if view.exchange_rate_note:
        flowables += [_p(view.exchange_rate_note, styles.small), Spacer(1, 2 * mm)]
    if view.notes:
        flowables.append(_p("NOTES", styles.heading))
        flowables += [_p(note, styles.body) for note in view.notes]
    return flowables


def _watermark(view: InvoiceView, styles: _Styles):
    """Draws the draft/void watermark under each page's content (the footer comes at save, with page numbers)."""

    def on_page(canvas: Canvas, _doc) -> None:
        if view.watermark:
            canvas.saveState()
            canvas.setFont(styles.bold, 110)
            canvas.setFillColor(colors.HexColor("#B22222"), alpha=0.12)
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(40)
            canvas.drawCentredString(0, -40, view.watermark)
            canvas.restoreState()

    return on_page


def _numbered_canvas(view: InvoiceView, branding: Branding, styles: _Styles) -> type[Canvas]:
    """A canvas that holds its pages until the end, so each footer can say "Page n of m"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            count = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(count)
                super().showPage()
            super().save()

        def _footer(self, count: int) -> None:
            self.saveState()
            self.setStrokeColor(_RULE)
            self.setLineWidth(0.5)
            self.line(_MARGIN, 14 * mm, A4[0] - _MARGIN, 14 * mm)
            self.setFont(styles.regular, 7.5)
            self.setFillColor(_GREY)
            reference = view.number if view.status != "draft" else "Draft"
            page = f"{reference}  ·  Page {self._pageNumber} of {count}"
            self.drawRightString(A4[0] - _MARGIN, 10 * mm, page)
            # A long footer wraps (two lines at most) rather than running into the page number.
            room = _WIDTH - self.stringWidth(page, styles.regular, 7.5) - 8 * mm
            footer = simpleSplit(printable(branding.footer, styles.regular), styles.regular, 7.5, room)
            for index, text in enumerate(footer[:2]):
                self.drawString(_MARGIN, 10 * mm - index * 9, text)
            self.restoreState()

    return NumberedCanvas


def render_invoice_pdf(
    invoice: Invoice, branding: Branding, *, time_zone: str = "", registration: Registration | None = None
) -> bytes:
    """The invoice as PDF bytes, identical for identical input. ``time_zone``: the organisation's IANA zone, in
    which the billing period's days are printed (periods are stored in UTC). ``registration``: its e-invoice
    registration, whose IRN, acknowledgement and signed QR code go on the first page."""
    return render_view_pdf(build_invoice_view(invoice, time_zone=time_zone, registration=registration), branding)


QR_SIZE = 42 * mm  # the signed QR code is a JWT of ~1 KB: big enough for a phone or a scanner to read on paper


def _einvoice_block(einvoice: EinvoiceView, styles: _Styles) -> Table:
    """IRN, Ack No, Ack Date and the IRP's signed QR code (CGST Rule 48(4)), under the header of the first page."""
    widget = QrCodeWidget(einvoice.signed_qr_code, barLevel="L")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0])
    drawing.add(widget)
    label = ParagraphStyle("einvoice_label", parent=styles.small)
    rows = [
        [_p("E-INVOICE", styles.heading)],
        [_p(f"IRN: {einvoice.irn}", label)],
        [_p(f"Ack No: {einvoice.ack_no}", styles.body)],
        [_p(f"Ack Date: {einvoice.ack_date}", styles.body)],
    ]
    if einvoice.cancelled:
        rows.append([_p("The IRN of this invoice was cancelled at the IRP.", styles.banner)])
    text = Table(rows, colWidths=[_WIDTH - QR_SIZE - 6 * mm])
    text.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 1),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    table = Table([[text, drawing]], colWidths=[_WIDTH - QR_SIZE, QR_SIZE])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def render_view_pdf(view: InvoiceView, branding: Branding) -> bytes:
    """A document (an invoice's or a credit note's view) as PDF bytes, identical for identical input."""
    styles = _Styles(branding)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN - _FRAME_PADDING,
        rightMargin=_MARGIN - _FRAME_PADDING,
        topMargin=_MARGIN - _FRAME_PADDING,
        bottomMargin=20 * mm,
        title=f"{view.document_name} {view.number}",
        author=branding.name,
        subject=f"{view.title} {view.number} for {view.customer.name}",
        creator=branding.name,
        invariant=1,
    )
    story: list = [_header(view, branding, styles), Spacer(1, 5 * mm)]
    if view.einvoice is not None:
        story += [_einvoice_block(view.einvoice, styles), Spacer(1, 4 * mm)]
    if view.status_note:
        story += [_p(view.status_note, styles.banner), Spacer(1, 3 * mm)]
    story += [_parties(view, styles), Spacer(1, 6 * mm), _lines_table(view, styles), Spacer(1, 4 * mm)]
    story.append(KeepTogether([_totals(view, styles), Spacer(1, 5 * mm), *_closing(view, styles)]))
    on_page = _watermark(view, styles)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page, canvasmaker=_numbered_canvas(view, branding, styles))
    return buffer.getvalue()
