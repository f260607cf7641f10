"""Rendering invoices as PDF and HTML with the operator's branding and template."""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import replace

from services.invoicing.adapters.credit_note_document import build_credit_note_view
from services.invoicing.adapters.invoice_document import Branding, einvoice_view
from services.invoicing.adapters.invoice_html import InvoiceHtmlRenderer
from services.invoicing.adapters.invoice_pdf import render_invoice_pdf, render_view_pdf
from services.invoicing.domain.credit_note import CreditNote
from services.invoicing.domain.einvoice_registration import Registration
from services.invoicing.domain.invoice import Invoice


class InvoiceRendering:
    def __init__(self, branding: Branding, html: InvoiceHtmlRenderer) -> None:
        self._branding = branding
        self._html = html

    async def pdf(self, invoice: Invoice, registration: Registration | None = None) -> bytes:
        """The PDF, rendered in a worker thread: reportlab takes tens of milliseconds a page, which the event
        loop must not wait out. ``registration``: its e-invoice registration, printed on the first page."""
        return await asyncio.to_thread(
            functools.partial(render_invoice_pdf, invoice, self._branding, registration=registration)
        )

    def html(self, invoice: Invoice, registration: Registration | None = None) -> str:
        return self._html.render(invoice, self._branding, registration=registration)

    async def credit_note_pdf(
        self, note: CreditNote, invoice: Invoice, registration: Registration | None = None
    ) -> bytes:
        """A credit note as PDF: its invoice's layout, titled "Credit note" (``adapters/credit_note_document.py``),
        with its e-invoice block when it is e-invoiced (Typ CRN)."""
        _, view = build_credit_note_view(note, invoice)
        view = replace(view, einvoice=einvoice_view(registration))
        return await asyncio.to_thread(render_view_pdf, view, self._branding)

    def credit_note_html(self, note: CreditNote, invoice: Invoice, registration: Registration | None = None) -> str:
        shaped, view = build_credit_note_view(note, invoice)
        return self._html.render_view(shaped, replace(view, einvoice=einvoice_view(registration)), self._branding)

    @staticmethod
    def filename(invoice: Invoice | CreditNote, extension: str) -> str:
        """``INV-2627-00001.pdf`` for an issued invoice (``/`` is not allowed in file names), the id for a draft."""
        stem = re.sub(r"[^A-Za-z0-9-]", "-", invoice.number) if invoice.number else invoice.id
        return f"{stem}.{extension}"
