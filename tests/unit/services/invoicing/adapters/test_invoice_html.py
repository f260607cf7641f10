"""The HTML invoice: same content as the PDF, escaping, self-contained, and operators' templates first."""

from __future__ import annotations

import base64
import html
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from PIL import Image

from services.invoicing.adapters.invoice_document import build_invoice_view
from services.invoicing.adapters.invoice_html import InvoiceHtmlRenderer
from services.invoicing.adapters.invoice_pdf import Branding
from tests.unit.services.invoicing.adapters import invoice_samples as samples

BRANDING = Branding(name="Billing Platform", primary_colour="#1F4E79", accent_colour="#EAF1F8", footer="Thanks!")
ZONE = samples.ZONE
ALL_SAMPLES = {
    "inr_intra_state": samples.inr_intra_state,
    "inr_inter_state": samples.inr_inter_state,
    "inr_with_coupon": samples.inr_with_coupon,
    "inr_with_credit": samples.inr_with_credit,
    "usd_export": samples.usd_export,
    "jpy_export": samples.jpy_export,
    "kwd_export": samples.kwd_export,
    "many_lines": samples.many_lines,
}


def test_intra_state_invoice_shows_parties_lines_taxes_and_totals() -> None:
    page = InvoiceHtmlRenderer().render(samples.inr_intra_state(), BRANDING, time_zone=ZONE)
    assert page.startswith("<!DOCTYPE html>")
    for expected in [
        "<title>Tax Invoice INV/2627/00001 - Billing Platform</title>",
        ">TAX INVOICE</div>",
        ">INV/2627/00001</td>",
        "GSTIN: <strong>29AABCB1234C1ZA</strong>",
        "GSTIN: <strong>29AAACR5055K1Z3</strong>",
        ">Karnataka (29)</td>",
        ">12,50,000</td>",
        ">Tier 1 (first 10,00,000)</td>",
        ">CGST 9% on INR 5,543.14</td>",
        ">SGST 9% on INR 5,543.14</td>",
        ">498.88</td>",
        ">5,543.14</td>",
        ">Total (INR)</td>",
        ">6,540.90</td>",
        ">Rupees Six Thousand Five Hundred and Forty and Ninety Paise Only</div>",
        ">Thanks!</div>",
    ]:
        assert expected in page, expected
    assert "background:#1F4E79" in page


def test_a_coupon_is_a_line_before_the_subtotal_and_the_tax_is_on_what_is_left() -> None:
    page = InvoiceHtmlRenderer().render(samples.inr_with_coupon(), BRANDING, time_zone=ZONE)
    for expected in [">Launch offer (LAUNCH20): 20% off</td>", ">-1,108.63</td>", ">4,434.51</td>",
                     ">CGST 9% on INR 4,434.51</td>", ">399.11</td>", ">5,232.73</td>"]:
        assert expected in page, expected
    assert page.index("LAUNCH20") < page.index(">Subtotal<") < page.index(">CGST 9% on INR 4,434.51<")


def test_prepaid_credit_follows_the_total_with_the_amount_due() -> None:
    page = InvoiceHtmlRenderer().render(samples.inr_with_credit(), BRANDING, time_zone=ZONE)
    for expected in [">Prepaid credit: welcome credit (crg_1)</td>", ">-2,000.00</td>", ">-500.00</td>",
                     ">Amount due (INR)</td>", ">2,732.73</td>"]:
        assert expected in page, expected
    assert page.index(">5,232.73<") < page.index(">-2,000.00<") < page.index(">2,732.73<")


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_html_says_what_the_pdf_says(name: str) -> None:
    """Both renderers print one InvoiceView; every figure of it appears in the HTML."""
    invoice = ALL_SAMPLES[name]()
    page = InvoiceHtmlRenderer().render(invoice, BRANDING, time_zone=ZONE)
    view = build_invoice_view(invoice, time_zone=ZONE)
    texts = [view.title, view.number, view.billing_period, view.place_of_supply, view.subtotal, view.total]
    texts += [view.amount_in_words, view.exchange_rate_note, view.customer.name, *view.notes]
    texts += [tax.label for tax in view.tax_lines] + [tax.amount for tax in view.tax_lines]
    texts += [text for credit in view.credit_lines for text in credit] + ([view.amount_due] if view.amount_due else [])
    for line in view.lines:
        texts += [line.description, line.quantity, line.unit_price, line.amount]
        texts += [row.amount for row in line.breakdown]
    for text in texts:
        assert html.escape(text) in page, text


def test_export_shows_the_declaration_and_the_rate() -> None:
    page = InvoiceHtmlRenderer().render(samples.usd_export(), BRANDING, time_zone=ZONE)
    assert ">EXPORT INVOICE</div>" in page
    assert ">SUPPLY MEANT FOR EXPORT UNDER LUT WITHOUT PAYMENT OF IGST</div>" in page
    assert (
        "Prices converted from INR at 1 INR = 0.012031 USD (RBI reference rate, effective 2026-10-31 00:00 UTC)" in page
    )
    assert "% on" not in page


def test_names_are_escaped() -> None:
    invoice = samples.inr_intra_state()
    invoice = replace(invoice, customer=replace(invoice.customer, name="<script>alert('x')</script> & Co"))
    page = InvoiceHtmlRenderer().render(invoice, BRANDING, time_zone=ZONE)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in page


def test_draft_and_void_say_so() -> None:
    renderer = InvoiceHtmlRenderer()
    draft = renderer.render(samples.draft(samples.inr_intra_state()), BRANDING, time_zone=ZONE)
    assert ">DRAFT INVOICE</div>" in draft and "(assigned at issue)" in draft
    assert "Draft: not a tax invoice." in draft
    void = renderer.render(samples.voided(samples.inr_intra_state()), BRANDING, time_zone=ZONE)
    assert "Void on 3 Nov 2026: Wrong billing address. This invoice is cancelled and must not be paid." in void


def test_page_is_self_contained_with_the_logo_inline(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (4, 2), "#F2A900").save(logo)
    page = InvoiceHtmlRenderer().render(samples.inr_intra_state(), replace(BRANDING, logo_path=logo), time_zone=ZONE)
    encoded = base64.b64encode(logo.read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{encoded}"' in page
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    assert "<img" not in InvoiceHtmlRenderer().render(samples.inr_intra_state(), BRANDING, time_zone=ZONE)


def test_operator_template_takes_precedence(tmp_path: Path) -> None:
    (tmp_path / "invoice.html.j2").write_text(
        "<p>{{ branding.name }} invoice {{ view.number }} for {{ view.customer.name }}: "
        "{{ view.total_with_currency }} ({{ invoice.total_minor }} minor units)</p>\n"
    )
    invoice = samples.inr_intra_state()
    invoice = replace(invoice, customer=replace(invoice.customer, name="A & B"))
    page = InvoiceHtmlRenderer(tmp_path).render(invoice, BRANDING, time_zone=ZONE)
    assert page == "<p>Billing Platform invoice INV/2627/00001 for A &amp; B: INR 6,540.90 (654090 minor units)</p>\n"


def test_operator_template_can_extend_the_built_in_one(tmp_path: Path) -> None:
    (tmp_path / "invoice.html.j2").write_text(
        '{% extends "builtin/invoice.html.j2" %}{% block footer %}<tr><td>Pay by UPI: acme@bank</td></tr>{% endblock %}'
    )
    page = InvoiceHtmlRenderer(tmp_path).render(samples.inr_intra_state(), BRANDING, time_zone=ZONE)
    assert "<tr><td>Pay by UPI: acme@bank</td></tr>" in page
    assert ">Thanks!</div>" not in page  # the replaced block
    assert ">6,540.90</td>" in page  # the rest is the built-in template


def test_directory_without_the_template_falls_back_to_the_built_in_one(tmp_path: Path) -> None:
    page = InvoiceHtmlRenderer(tmp_path).render(samples.inr_intra_state(), BRANDING, time_zone=ZONE)
    assert page == InvoiceHtmlRenderer().render(samples.inr_intra_state(), BRANDING, time_zone=ZONE)


def test_missing_template_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        InvoiceHtmlRenderer(tmp_path / "nowhere")


def test_misspelt_variable_in_an_operator_template_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "invoice.html.j2").write_text("{{ view.totl }}")
    with pytest.raises(jinja2.UndefinedError):
        InvoiceHtmlRenderer(tmp_path).render(samples.inr_intra_state(), BRANDING, time_zone=ZONE)


class _TagBalance(HTMLParser):
    """Records closing tags that do not close the innermost open element."""

    VOID = {"br", "img", "meta", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.mismatched: list[tuple[str, tuple[int, int]]] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append((tag, self.getpos()))


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_built_in_template_closes_every_element(name: str) -> None:
    # Email clients repair broken markup each in their own way; the built-in page must not need repair.
    parser = _TagBalance()
    parser.feed(InvoiceHtmlRenderer().render(samples.voided(ALL_SAMPLES[name]()), BRANDING, time_zone=ZONE))
    assert (parser.mismatched, parser.open) == ([], [])
