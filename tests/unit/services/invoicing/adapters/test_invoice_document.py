"""What the invoice documents say: titles, periods, places of supply, the rate note, and branding's checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.adapters.invoice_document import (
    Branding,
    build_invoice_view,
    format_date,
    format_period,
    state_label,
    tier_description,
)
from services.invoicing.adapters.invoice_json import round_trip, to_document
from services.invoicing.config import InvoicingSettings
from services.invoicing.domain.charges import TierAmount
from services.invoicing.domain.invoice_checks import validate_invoice
from tests.unit.services.invoicing.adapters import invoice_samples as samples

ZONE = samples.ZONE


def test_view_of_an_intra_state_invoice() -> None:
    view = build_invoice_view(samples.inr_intra_state(), time_zone=ZONE)
    assert (view.title, view.subtitle, view.watermark, view.status_note) == ("TAX INVOICE", "", "", "")
    assert view.number == "INV/2627/00001"
    assert (view.issue_date, view.due_date) == ("1 Nov 2026", "16 Nov 2026")
    # [30 Sep 18:30 UTC, 31 Oct 18:30 UTC) is [1 Oct 00:00, 1 Nov 00:00) in Kolkata: it ends on 31 Oct.
    assert view.billing_period == "1 Oct 2026 - 31 Oct 2026"
    assert view.place_of_supply == "Karnataka (29)"
    assert view.customer.state == "Karnataka (29)" and view.customer.country == "India"
    assert view.customer.address_lines == ("42 Residency Road", "Bengaluru 560025")
    assert [tax.label for tax in view.tax_lines] == ["CGST 9% on INR 5,543.14", "SGST 9% on INR 5,543.14"]
    assert (view.subtotal, view.tax_total, view.total) == ("5,543.14", "997.76", "6,540.90")
    assert view.total_with_currency == "INR 6,540.90"
    assert view.amount_in_words == "Rupees Six Thousand Five Hundred and Forty and Ninety Paise Only"
    api_calls = view.lines[1]
    assert [(row.description, row.quantity, row.unit_price, row.amount) for row in api_calls.breakdown] == [
        ("Tier 1 (first 10,00,000)", "10,00,000", "0.0004", "400.00"),
        ("Tier 2 (over 10,00,000)", "2,50,000", "0.0003", "75.00"),
    ]
    assert view.lines[0].breakdown == ()  # one-row prices print no breakdown
    assert all(line.period == "" for line in view.lines)  # every line covers the whole period


def test_without_the_organisations_zone_the_stored_utc_days_are_printed() -> None:
    assert build_invoice_view(samples.inr_intra_state()).billing_period == "30 Sep 2026 - 31 Oct 2026"


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="not an IANA time zone"):
        build_invoice_view(samples.inr_intra_state(), time_zone="India/Bengaluru")


def test_single_tier_breakdown_is_not_repeated() -> None:
    invoice = samples.inr_intra_state()
    api_calls = invoice.lines[1]
    one_tier = replace(api_calls, breakdown=api_calls.breakdown[:1])
    view = build_invoice_view(replace(invoice, lines=(invoice.lines[0], one_tier, invoice.lines[2])), time_zone=ZONE)
    assert view.lines[1].breakdown == ()


def test_line_of_part_of_the_period_says_which_part() -> None:
    invoice = samples.inr_intra_state()
    first = invoice.lines[0]
    # The plan changed at the start of 15 Oct in Kolkata: 14 Oct 18:30 UTC.
    segment = replace(first, period_end=datetime(2026, 10, 14, 18, 30, tzinfo=UTC))
    view = build_invoice_view(replace(invoice, lines=(segment, *invoice.lines[1:])), time_zone=ZONE)
    assert view.lines[0].period == "1 Oct 2026 - 14 Oct 2026"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (TierAmount("tier 2", Decimal(5), Decimal(1), Decimal(0), Decimal(5), Decimal(100), Decimal(500)),
         "Tier 2 (over 100 up to 500)"),
        (TierAmount("tier 1", Decimal(5), Decimal(1), Decimal(0), Decimal(5), Decimal(0), None), "Tier 1 (over 0)"),
        (TierAmount("free units", Decimal(5), Decimal(0), Decimal(0), Decimal(0)), "Free units"),
        (TierAmount("3 packages of 100 units", Decimal(300), Decimal(1), Decimal(0), Decimal(3)),
         "3 packages of 100 units"),
    ],
)  # fmt: skip
def test_tier_descriptions_carry_their_bounds(row: TierAmount, expected: str) -> None:
    assert tier_description(row, "INR") == expected


def test_flat_fee_of_a_tier_is_shown() -> None:
    invoice = samples.inr_intra_state()
    api_calls = invoice.lines[1]
    tiers = (replace(api_calls.breakdown[0], flat_fee=Decimal("99.5")), api_calls.breakdown[1])
    view = build_invoice_view(replace(invoice, lines=(replace(api_calls, breakdown=tiers),)), time_zone=ZONE)
    assert view.lines[0].breakdown[0].flat_fee == "99.50"
    assert view.lines[0].breakdown[1].flat_fee == ""


def test_view_of_an_export() -> None:
    view = build_invoice_view(samples.usd_export(), time_zone=ZONE)
    assert view.title == "EXPORT INVOICE"
    assert view.subtitle == "SUPPLY MEANT FOR EXPORT UNDER LUT WITHOUT PAYMENT OF IGST"
    assert view.place_of_supply == "Other Country (96)"
    assert view.customer.state == "" and view.customer.country == "United States"
    assert view.notes == ()  # the declaration is the subtitle, not repeated as a note
    assert view.exchange_rate_note == (
        "Prices converted from INR at 1 INR = 0.012031 USD (RBI reference rate, effective 2026-10-31 00:00 UTC)"
    )


def test_rate_effective_time_is_written_in_utc() -> None:
    invoice = samples.inr_inter_state()
    rate = replace(invoice.exchange_rate, effective_at=datetime(2026, 10, 31, 5, 30, tzinfo=samples.IST))
    note = build_invoice_view(replace(invoice, exchange_rate=rate), time_zone=ZONE).exchange_rate_note
    assert note.endswith("(RBI reference rate, effective 2026-10-31 00:00 UTC)")


def test_other_notes_are_kept() -> None:
    invoice = replace(samples.usd_export(), notes=(samples.EXPORT_NOTE, "PO 4711"))
    assert build_invoice_view(invoice, time_zone=ZONE).notes == ("PO 4711",)


def test_draft_and_void() -> None:
    draft = build_invoice_view(samples.draft(samples.usd_export()), time_zone=ZONE)
    assert (draft.title, draft.subtitle, draft.watermark) == (
        "DRAFT INVOICE",
        "SUPPLY MEANT FOR EXPORT UNDER LUT WITHOUT PAYMENT OF IGST",
        "DRAFT",
    )
    assert (draft.number, draft.issue_date, draft.due_date) == ("(assigned at issue)", "", "")
    void = build_invoice_view(samples.voided(samples.inr_intra_state(), reason=""), time_zone=ZONE)
    assert (void.title, void.watermark) == ("TAX INVOICE", "VOID")
    assert void.status_note == "Void on 3 Nov 2026. This invoice is cancelled and must not be paid."


def test_dates_and_states() -> None:
    assert format_date(date(2027, 3, 9)) == "9 Mar 2027"
    assert format_date(None) == ""
    # A UTC-midnight period written in UTC.
    assert (
        format_period(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)) == "1 Feb 2026 - 28 Feb 2026"
    )
    assert state_label("07") == "Delhi (07)"
    assert state_label("96") == "Other Country (96)"


def test_branding_from_settings(tmp_path: Path) -> None:
    logo = tmp_path / "logo.jpg"
    logo.write_bytes(b"\xff\xd8\xff")
    settings = InvoicingSettings(
        database_url="postgresql://localhost/x",
        nats_url="nats://localhost:4222",
        brand_name="Acme Billing",
        brand_logo_path=logo,
        brand_primary_colour="#112233",
        brand_accent_colour="#445566",
        brand_footer="Registered office: Pune",
    )
    branding = Branding.from_settings(settings)
    assert branding == Branding("Acme Billing", logo, "#112233", "#445566", "Registered office: Pune")
    assert branding.logo_mime_type == "image/jpeg"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"primary_colour": "red"}, "primary_colour must be a colour written #RRGGBB"),
        ({"accent_colour": "#12345"}, "accent_colour must be a colour written #RRGGBB"),
        ({"accent_colour": "#123456;background:url(x)"}, "accent_colour"),
        ({"logo_path": Path("logo.gif")}, "must be a .png, .jpg or .jpeg"),
        ({"logo_path": Path("/nonexistent/logo.png")}, "is not a readable file"),
    ],
)
def test_branding_refuses_what_would_break_a_document(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        Branding(name="X", **changes)


def test_a_discount_line_keeps_its_coupon_through_the_stored_document() -> None:
    invoice = samples.inr_with_coupon()
    assert round_trip(invoice) == invoice
    assert invoice.coupon_redemption_ids == {"cpr_0001"}
    validate_invoice(invoice)
    # A document stored before coupons existed reads with no coupon on its lines.
    document = to_document(samples.inr_intra_state())
    for line in document["lines"]:
        del line["coupon_code"], line["coupon_redemption_id"]
    assert round_trip(samples.inr_intra_state(), document) == samples.inr_intra_state()
    view = build_invoice_view(invoice, time_zone=samples.ZONE)
    assert [(line.kind, line.amount) for line in view.lines][-1] == ("discount", "-1,108.63")
