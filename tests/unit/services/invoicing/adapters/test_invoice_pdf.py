"""The invoice PDF: its text (read back with pdfium), a rendered page, reproducible bytes and page breaks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image, ImageDraw

from services.invoicing.adapters import invoice_pdf_fonts
from services.invoicing.adapters.invoice_pdf import Branding, render_invoice_pdf
from tests.unit.services.invoicing.adapters import invoice_samples as samples

BRANDING = Branding(
    name="Billing Platform",
    primary_colour="#1F4E79",
    accent_colour="#EAF1F8",
    footer="Thank you for your business. This is a computer-generated invoice.",
)


def render(invoice, branding: Branding = BRANDING) -> bytes:
    return render_invoice_pdf(invoice, branding, time_zone=samples.ZONE)


def pages_text(pdf: bytes) -> list[str]:
    """Each page's text with every run of whitespace made one space (where pdfium breaks lines is not the point)."""
    document = pdfium.PdfDocument(pdf)
    return [" ".join(page.get_textpage().get_text_range().split()) for page in document]


def text_of(pdf: bytes) -> str:
    return "\n".join(pages_text(pdf))


def test_intra_state_invoice_prints_parties_cgst_sgst_totals_and_words() -> None:
    text = text_of(render(samples.inr_intra_state(), BRANDING))
    for expected in [
        "Billing Platform",
        "TAX INVOICE",
        "Invoice number INV/2627/00001",
        "Issue date 1 Nov 2026",
        "Due date 16 Nov 2026",
        "Billing period 1 Oct 2026 - 31 Oct 2026",
        "Place of supply Karnataka (29)",
        "GSTIN: 29AABCB1234C1ZA",  # supplier
        "GSTIN: 29AAACR5055K1Z3",  # customer
        "Rangoli Retail Pvt Ltd",
        "1 Standard plan - base fee 998315 1 4,999.00 4,999.00",
        "2 API calls 998315 12,50,000 0.00038 475.00",
        # The graduated line's two tiers, under it: 10,00,000 x 0.0004 = 400 and 2,50,000 x 0.0003 = 75.
        "Tier 1 (first 10,00,000) 10,00,000 0.0004 400.00",
        "Tier 2 (over 10,00,000) 2,50,000 0.0003 75.00",
        "3 LLM tokens 998315 34,56,789 0.00002 69.14",
        "Subtotal 5,543.14",
        "CGST 9% on INR 5,543.14 498.88",
        "SGST 9% on INR 5,543.14 498.88",
        "Total (INR) 6,540.90",
        "Rupees Six Thousand Five Hundred and Forty and Ninety Paise Only",
        "Thank you for your business. This is a computer-generated invoice.",
        "INV/2627/00001 · Page 1 of 1",
    ]:
        assert expected in text, expected
    assert "IGST" not in text
    assert "Prices converted" not in text


def test_a_coupon_prints_as_a_discount_line_and_gst_is_on_the_discounted_amount() -> None:
    text = text_of(render(samples.inr_with_coupon()))
    for expected in ["Launch offer (LAUNCH20): 20% off", "-1,108.63", "Subtotal 4,434.51",
                     "CGST 9% on INR 4,434.51 399.11", "SGST 9% on INR 4,434.51 399.11", "5,232.73",
                     "Rupees Five Thousand Two Hundred and Thirty-Two and Seventy-Three Paise Only"]:
        assert expected in text, expected


def test_prepaid_credit_prints_after_the_total_with_the_amount_due() -> None:
    text = text_of(render(samples.inr_with_credit()))
    for expected in ["Total (INR) 5,232.73", "Prepaid credit: welcome credit (crg_1) -2,000.00",
                     "Prepaid credit: top-up (crg_2) -500.00", "Amount due (INR) 2,732.73",
                     "CGST 9% on INR 4,434.51 399.11"]:
        assert expected in text, expected
    assert text.index("Total (INR) 5,232.73") < text.index("Amount due (INR) 2,732.73")


def test_inter_state_invoice_prints_igst_and_the_exchange_rate() -> None:
    text = text_of(render(samples.inr_inter_state(), BRANDING))
    assert "Place of supply Maharashtra (27)" in text
    assert "GSTIN: 27AAPFU0939F1ZV" in text
    assert "IGST 18% on INR 5,543.14 997.77" in text
    assert "Total (INR) 6,540.91" in text
    assert "Rupees Six Thousand Five Hundred and Forty and Ninety-One Paise Only" in text
    assert "Prices converted from USD at 1 USD = 83.12 INR (RBI reference rate, effective 2026-10-31 00:00 UTC)" in text
    assert "CGST" not in text and "SGST" not in text


def test_export_invoice_is_titled_as_an_export_without_tax() -> None:
    text = text_of(render(samples.usd_export(), BRANDING))
    assert "EXPORT INVOICE SUPPLY MEANT FOR EXPORT UNDER LUT WITHOUT PAYMENT OF IGST" in text
    assert "TAX INVOICE" not in text
    assert "Place of supply Other Country (96)" in text
    assert "Acme Analytics, Inc." in text and "United States" in text
    # Unit prices keep their precision (4,999 x 0.012031 = 60.142969); the line is rounded once.
    assert "1 Standard plan - base fee 998315 1 60.142969 60.14" in text
    assert "Tier 1 (first 1,000,000) 1,000,000 0.0000048124 4.8124" not in text  # at most 8 decimals
    assert "Tier 1 (first 1,000,000) 1,000,000 0.00000481 4.8124" in text
    assert "Subtotal 65.85 Total (USD) 65.85" in text
    assert "Sixty-Five US Dollars and Eighty-Five Cents Only" in text
    assert "Prices converted from INR at 1 INR = 0.012031 USD" in text
    assert "% on" not in text  # no tax line
    assert "GSTIN: 29AABCB1234C1ZA" in text  # the supplier's, on every invoice
    # The export declaration is the subtitle; the same note is not printed twice.
    assert "NOTES" not in text


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        (
            samples.jpy_export(),
            [
                "1 Standard plan - base fee 998315 1 7,500 7,500",
                "2 API calls 998315 12,345 0.06 741",
                "Total (JPY) 8,241",
                "Eight Thousand Two Hundred and Forty-One Japanese Yen Only",
            ],
        ),
        (
            samples.kwd_export(),
            [
                "Łódź Gulf Trading W.L.L.",  # beyond Latin-1: the embedded font has the glyphs
                "1 Standard plan - base fee 998315 1 15.250 15.250",
                "2 LLM tokens 998315 1,234,567 0.001 1,234.567",
                "Total (KWD) 1,249.817",
                "One Thousand Two Hundred and Forty-Nine Kuwaiti Dinars and Eight Hundred and Seventeen Fils Only",
            ],
        ),
    ],
    ids=["JPY", "KWD"],
)
def test_currencies_print_their_own_minor_digits(invoice, expected: list[str]) -> None:
    text = text_of(render(invoice, BRANDING))
    for line in expected:
        assert line in text, line


def test_draft_says_it_is_not_a_tax_invoice_yet() -> None:
    text = text_of(render(samples.draft(samples.inr_intra_state()), BRANDING))
    assert "DRAFT INVOICE" in text and "TAX INVOICE" not in text
    assert "Invoice number (assigned at issue)" in text
    assert "Issue date - Due date -" in text
    assert "Draft: not a tax invoice. The number and dates are assigned when it is issued." in text
    assert "Draft · Page 1 of 1" in text
    assert text.startswith("DRAFT ")  # the watermark, drawn first under the content


def test_void_invoice_says_when_and_why() -> None:
    text = text_of(render(samples.voided(samples.inr_intra_state()), BRANDING))
    assert "TAX INVOICE" in text
    assert "Void on 3 Nov 2026: Wrong billing address. This invoice is cancelled and must not be paid." in text
    assert "VOID" in text


def test_markup_in_names_prints_as_text() -> None:
    invoice = samples.inr_intra_state()
    invoice = replace(invoice, customer=replace(invoice.customer, name="<b>AT&T</b> & Sons <script>"))
    text = text_of(render(invoice, BRANDING))
    assert "<b>AT&T</b> & Sons <script>" in text


def test_names_in_scripts_no_font_has_still_render() -> None:
    invoice = samples.jpy_export()
    invoice = replace(invoice, customer=replace(invoice.customer, name="株式会社 Sakura Data"))
    text = text_of(render(invoice))
    assert "Sakura Data" in text
    assert "Total (JPY) 8,241" in text


def test_long_footer_wraps_beside_the_page_number() -> None:
    footer = "Registered office: 1 MG Road, Bengaluru. CIN U72900KA2020PTC000000. " * 3
    text = text_of(render(samples.inr_intra_state(), replace(BRANDING, footer=footer)))
    assert "INV/2627/00001 · Page 1 of 1" in text
    assert "Registered office: 1 MG Road, Bengaluru. CIN U72900KA2020PTC000000." in text


def test_same_invoice_renders_to_the_same_bytes() -> None:
    first = render(samples.inr_intra_state(), BRANDING)
    assert render(samples.inr_intra_state(), BRANDING) == first
    assert render(samples.inr_inter_state(), BRANDING) != first


def test_many_lines_break_across_pages_with_the_header_repeated() -> None:
    pages = pages_text(render(samples.many_lines(120), BRANDING))
    count = len(pages)
    assert count >= 3
    for number, page in enumerate(pages, start=1):
        assert f"INV/2627/00006 · Page {number} of {count}" in page
        assert "# Description SAC Quantity Unit price Amount (INR)" in page
    everything = "\n".join(pages)
    for i in range(1, 121):
        # Line i: 10 i units at 0.10 = i rupees; printed once, on whichever page.
        assert everything.count(f" {i} Metric {i:03d} usage 998315 {i * 10:,} 0.10 {i}.00 ") == 1, i
    assert "Metric 120 usage" in pages[-1]
    # 1 + ... + 120 = 7,260 rupees; IGST 18% = 1,306.80; total 8,566.80, on the last page.
    assert "IGST 18% on INR 7,260.00 1,306.80 Total (INR) 8,566.80" in pages[-1]
    assert "Total (INR)" not in pages[0]


def _pixels(pdf: bytes, page: int = 0) -> Image.Image:
    return pdfium.PdfDocument(pdf)[page].render(scale=1).to_pil().convert("RGB")


def test_page_renders_with_ink_and_the_brand_colour() -> None:
    image = _pixels(render(samples.inr_intra_state(), BRANDING))
    width, height = image.size
    assert abs(width - 595) <= 1 and abs(height - 842) <= 1  # A4 at 72 dpi: 595.3 x 841.9 points
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    dark = sum(count for count, (r, g, b) in colours if r + g + b < 300)
    assert dark > 0.01 * width * height, dark  # text and rules, not a blank page
    # The lines table's header row is filled with the primary colour #1F4E79 = (31, 78, 121).
    brand = sum(
        count for count, rgb in colours if all(abs(a - b) <= 3 for a, b in zip(rgb, (31, 78, 121), strict=True))
    )
    assert brand > 5_000, brand


def test_primary_colour_comes_from_branding() -> None:
    image = _pixels(render(samples.inr_intra_state(), replace(BRANDING, primary_colour="#B00020")))
    colours = image.getcolors(maxcolors=1 << 20)
    assert sum(count for count, rgb in colours if rgb == (0xB0, 0x00, 0x20)) > 5_000


def _image_objects(pdf: bytes) -> int:
    page = pdfium.PdfDocument(pdf)[0]
    return len(list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])))


def test_logo_is_drawn_when_configured(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    image = Image.new("RGB", (300, 100), "#FFFFFF")
    ImageDraw.Draw(image).ellipse((10, 10, 90, 90), fill="#F2A900")
    image.save(logo)
    with_logo = render(samples.inr_intra_state(), replace(BRANDING, logo_path=logo))
    assert _image_objects(with_logo) == 1
    assert _image_objects(render(samples.inr_intra_state(), BRANDING)) == 0
    # The logo is orange; the header above the title shows it.
    colours = _pixels(with_logo).getcolors(maxcolors=1 << 20)
    assert sum(count for count, (r, g, b) in colours if r > 200 and 140 < g < 200 and b < 60) > 500


def test_without_dejavu_the_font_shipped_with_reportlab_prints_the_names(monkeypatch, tmp_path: Path) -> None:
    """CI machines may lack fonts-dejavu-core; reportlab's own Vera still has the Latin Extended glyphs."""
    monkeypatch.setattr(invoice_pdf_fonts, "_DEJAVU", tmp_path / "no-fonts-here")
    invoice_pdf_fonts.fonts.cache_clear()
    try:
        assert invoice_pdf_fonts.fonts() == ("InvoiceVera", "InvoiceVera-Bold")
        text = text_of(render(samples.kwd_export()))
    finally:
        invoice_pdf_fonts.fonts.cache_clear()
    # Vera has Ł and ó but not ź: its base letter prints rather than a box.
    assert "Łódz Gulf Trading W.L.L." in text
    assert "Total (KWD) 1,249.817" in text
