"""The invoice as HTML, for email and the dashboard, from a Jinja2 template operators can replace.

The template is looked up in the operator's directory (``INVOICING_INVOICE_TEMPLATE_DIR``) first and in the
built-in ``services/invoicing/templates`` second; the built-in one is also reachable as
``builtin/invoice.html.j2``, so an operator's template can extend it and override only some blocks. Its context
is documented in docs/invoices.md ("Templates and branding"). Operator templates are configuration, trusted
like the rest of it (not sandboxed); every value is HTML-escaped (autoescape), so a customer named
``<script>`` prints as text.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined
from reportlab.graphics import renderSVG
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing

from services.invoicing.adapters.invoice_document import Branding, InvoiceView, build_invoice_view
from services.invoicing.domain.einvoice_registration import Registration
from services.invoicing.domain.invoice import Invoice

TEMPLATE_NAME = "invoice.html.j2"
BUILTIN_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


@functools.cache
def qr_data_uri(text: str, size: int = 160) -> str:
    """``text`` as a QR code, an inline SVG image (reportlab draws it; no raster library needed)."""
    widget = QrCodeWidget(text, barLevel="L")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    svg = renderSVG.drawToString(drawing)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def logo_data_uri(path: Path, mime_type: str) -> str:
    """The logo inline as a ``data:`` URI: email clients block remote images, and the HTML must stand alone."""
    return f"data:{mime_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


class InvoiceHtmlRenderer:
    """Renders invoices with ``invoice.html.j2`` from ``template_dir`` if it has one, else the built-in one."""

    def __init__(self, template_dir: Path | None = None) -> None:
        if template_dir is not None and not template_dir.is_dir():
            raise ValueError(f"invoice template directory {str(template_dir)!r} does not exist")
        builtin = FileSystemLoader(str(BUILTIN_TEMPLATE_DIR))
        loaders = [FileSystemLoader(str(template_dir))] if template_dir is not None else []
        loaders += [builtin, PrefixLoader({"builtin": builtin})]
        self._environment = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=True,
            # A misspelt variable in an operator's template fails the render instead of printing nothing.
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(
        self, invoice: Invoice, branding: Branding, *, time_zone: str = "", registration: Registration | None = None
    ) -> str:
        """The invoice as one self-contained HTML document (inline CSS, logo inline). ``time_zone``: the
        organisation's IANA zone, in which the billing period's days are written (periods are stored in UTC).
        ``registration``: its e-invoice registration (IRN, acknowledgement, signed QR code as an inline image)."""
        view = build_invoice_view(invoice, time_zone=time_zone, registration=registration)
        return self.render_view(invoice, view, branding)

    def render_view(self, invoice: Invoice, view: InvoiceView, branding: Branding) -> str:
        """A document already written out (an invoice's view, or a credit note's from ``credit_note_document``)
        with the same template; ``invoice`` is what the template sees as ``invoice``."""
        template = self._environment.get_template(TEMPLATE_NAME)
        logo = logo_data_uri(branding.logo_path, branding.logo_mime_type) if branding.logo_path else ""
        qr = qr_data_uri(view.einvoice.signed_qr_code) if view.einvoice is not None else ""
        return template.render(
            invoice=invoice, view=view, branding=branding, logo_data_uri=logo, einvoice_qr_data_uri=qr
        )
