"""The e-invoice block on the PDF and HTML: IRN, Ack No and Ack Date, and the signed QR code on the first page,
readable back from the rendered page."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, date, datetime

import jwt
import pypdfium2
import zxingcpp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.invoicing.adapters.invoice_document import Branding
from services.invoicing.adapters.invoice_html import InvoiceHtmlRenderer
from services.invoicing.adapters.invoice_pdf import render_invoice_pdf
from services.invoicing.domain.einvoice_registration import Registration, RegistrationStatus
from tests.unit.services.invoicing.adapters import invoice_samples as samples

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
IRN = "8d5b0f4e2a7d4c1b9e3f6a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e"
CLAIMS = {
    "SellerGstin": samples.SUPPLIER_GSTIN,
    "BuyerGstin": samples.INTRA_GSTIN,
    "DocNo": "INV/2627/00001",
    "DocTyp": "INV",
    "DocDt": "01/11/2026",
    "TotInvVal": 6540.9,
    "ItemCnt": 3,
    "MainHsnCode": "998315",
    "Irn": IRN,
    "IrnDt": "2026-11-01 10:15:00",
}
SIGNED_QR = jwt.encode({"data": json.dumps(CLAIMS), "iss": "NIC Sandbox"}, KEY, algorithm="RS256")
REGISTRATION = Registration(
    document_id="inv_0001",
    invoice_id="inv_0001",
    document_type="INV",
    document_number="INV/2627/00001",
    document_date=date(2026, 11, 1),
    irn=IRN,
    status=RegistrationStatus.REGISTERED,
    ack_no="112610000000001",
    ack_at=datetime(2026, 11, 1, 4, 45, tzinfo=UTC),
    signed_invoice="x",
    signed_qr_code=SIGNED_QR,
)
BRANDING = Branding(name="Billing Platform")


def first_page_text_and_qr(pdf: bytes) -> tuple[str, list[str]]:
    document = pypdfium2.PdfDocument(pdf)
    page = document[0]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=3).to_pil()
    return text, [result.text for result in zxingcpp.read_barcodes(image)]


def test_pdf_prints_irn_ack_and_a_qr_that_decodes_to_the_signed_jwt():
    pdf = render_invoice_pdf(samples.inr_intra_state(), BRANDING, registration=REGISTRATION)
    text, codes = first_page_text_and_qr(pdf)
    assert IRN in text.replace("\r", "").replace("\n", "")
    assert "Ack No: 112610000000001" in text and "Ack Date: 01 Nov 2026 10:15 IST" in text
    assert codes == [SIGNED_QR]
    claims = json.loads(jwt.decode(codes[0], PUBLIC, algorithms=["RS256"])["data"])
    assert claims["DocNo"] == "INV/2627/00001" and claims["TotInvVal"] == 6540.9


def test_pdf_without_registration_has_no_einvoice_block():
    text, codes = first_page_text_and_qr(render_invoice_pdf(samples.inr_intra_state(), BRANDING))
    assert "IRN" not in text and codes == []


def test_many_lines_keep_the_qr_on_the_first_page():
    invoice = replace(samples.many_lines(120), id="inv_0001")
    _, codes = first_page_text_and_qr(render_invoice_pdf(invoice, BRANDING, registration=REGISTRATION))
    assert codes == [SIGNED_QR]


def test_cancelled_irn_is_said_so():
    cancelled = replace(REGISTRATION, status=RegistrationStatus.CANCELLED)
    text, _ = first_page_text_and_qr(render_invoice_pdf(samples.inr_intra_state(), BRANDING, registration=cancelled))
    assert "cancelled at the IRP" in text


def test_html_prints_irn_ack_and_an_inline_qr_image():
    html = InvoiceHtmlRenderer().render(samples.inr_intra_state(), BRANDING, registration=REGISTRATION)
    assert f"IRN: {IRN}" in html and "Ack No: 112610000000001" in html
    start = html.index("data:image/svg+xml;base64,") + len("data:image/svg+xml;base64,")
    svg = base64.b64decode(html[start : html.index('"', start)])
    assert svg.startswith(b"<?xml") and b"<svg" in svg
    assert "E-INVOICE" not in InvoiceHtmlRenderer().render(samples.inr_intra_state(), BRANDING)
