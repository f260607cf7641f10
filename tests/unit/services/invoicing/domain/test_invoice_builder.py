"""Invoices built from segments and usage: proration, lines, GST, currencies, rounding once per line."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.charges import ChargeModel
from services.invoicing.domain.invoice import (
    ExchangeRate,
    InvoiceStatus,
    LineKind,
    TaxKind,
    TaxLine,
    TaxRegime,
)
from services.invoicing.domain.invoice_builder import MetricUsage, SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.subscription import Segment
from tests.unit.services.invoicing.domain.invoice_fixtures import (
    NOV,
    D,
    billing,
    flat,
    graduated,
    per_unit,
    plan_version,
    usage,
    whole,
)

FREE = plan_version(
    "pv_free", "Free", "INR", "0", (per_unit("api_calls", "0.01", free_units=D(1000), display_name="API calls"),)
)
STANDARD = plan_version(
    "pv_std",
    "Standard",
    "INR",
    "999.00",
    (
        graduated("api_calls", ("10000", "0.005"), (None, "0.002")),
        per_unit("llm_tokens", "0.00002", minimum_amount=D(100), display_name="LLM tokens", sac_code="998315"),
    ),
)


def test_plan_change_mid_period_prorates_base_fee_and_splits_usage() -> None:
    change = datetime(2026, 11, 18, 18, 30, tzinfo=UTC)  # 19 November 00:00 in Kolkata
    parts = (
        SegmentUsage(Segment("pv_free", NOV.start, change, 18), FREE, usage(api_calls="1500")),
        SegmentUsage(Segment("pv_std", change, NOV.end, 12), STANDARD, usage(api_calls="25000", llm_tokens="1234567")),
    )
    invoice = build_invoice("inv_1", billing(parts))
    rows = [(line.number, line.kind, line.description, line.amount_minor) for line in invoice.lines]
    assert rows == [
        # Free: 1500 calls, 1000 free, 500 x 0.01 = 5.00 (no base fee line: the plan has none)
        (1, LineKind.USAGE, "API calls (Free plan, 18 of 30 days)", 500),
        # 999.00 x 12 / 30 = 399.60
        (2, LineKind.BASE_FEE, "Standard plan base fee (12 of 30 days)", 39960),
        # tiers restart in the segment: 10000 x 0.005 + 15000 x 0.002 = 50 + 30 = 80.00
        (3, LineKind.USAGE, "api_calls (Standard plan, 12 of 30 days)", 8000),
        # 1234567 x 0.00002 = 24.69134 -> 24.69; the minimum of 100.00 adds 75.31
        (4, LineKind.USAGE, "LLM tokens (Standard plan, 12 of 30 days)", 2469),
        (5, LineKind.MINIMUM_SPEND, "LLM tokens (Standard plan, 12 of 30 days): minimum spend", 7531),
    ]
    base = invoice.lines[1]
    assert (base.quantity, base.unit_price) == (D(12), D("33.3"))  # 12 days at 999.00 / 30 a day
    assert (base.period_start, base.period_end) == (change, NOV.end)
    assert invoice.lines[0].period_end == change and invoice.lines[0].plan_version_id == "pv_free"
    assert invoice.lines[3].sac_code == "998315" and invoice.lines[2].sac_code == "998314"
    assert invoice.lines[2].unit_price == D("0.0032")  # 80 / 25000
    # Intra-state (29/29): 58460 x 9 % = 5261.4 -> 5261 each.
    assert invoice.subtotal_minor == 58460
    assert invoice.tax_lines == (TaxLine(TaxKind.CGST, D(9), 58460, 5261), TaxLine(TaxKind.SGST, D(9), 58460, 5261))
    assert (invoice.tax_minor, invoice.total_minor) == (10522, 68982)
    assert invoice.status is InvoiceStatus.DRAFT and invoice.number == "" and invoice.exchange_rate is None
    assert (invoice.period_key, invoice.place_of_supply, invoice.tax_regime) == ("2026-11", "29", TaxRegime.INTRA_STATE)
    validate_invoice(invoice)


def test_whole_period_base_fee_is_not_prorated_and_missing_usage_is_zero() -> None:
    invoice = build_invoice("inv_1", billing((SegmentUsage(whole(version="pv_std"), STANDARD, {}),), state="27"))
    assert [(line.kind, line.description, line.quantity, line.amount_minor) for line in invoice.lines] == [
        (LineKind.BASE_FEE, "Standard plan base fee", D(1), 99900),
        (LineKind.USAGE, "api_calls", D(0), 0),  # kept, so the customer sees no usage
        (LineKind.USAGE, "LLM tokens", D(0), 0),
        (LineKind.MINIMUM_SPEND, "LLM tokens: minimum spend", D(1), 10000),
    ]
    assert invoice.lines[2].unit_price == D("0.00002")  # the charge's own unit price when nothing was used
    # Inter-state (27, Maharashtra): IGST 18 % of 1099.00 = 197.82
    assert invoice.tax_lines == (TaxLine(TaxKind.IGST, D(18), 109900, 19782),)
    assert invoice.total_minor == 129682
    validate_invoice(invoice)


def test_maximum_cap_is_a_discount_line_and_zero_adjustments_are_dropped() -> None:
    capped = plan_version(
        "pv_ent",
        "Enterprise",
        "INR",
        "0",
        (per_unit("api_calls", "0.01", maximum_amount=D(300), minimum_amount=D(10)),),
    )
    invoice = build_invoice("inv_1", billing((SegmentUsage(whole(), capped, usage(api_calls="50000")),)))
    # 50000 x 0.01 = 500.00, capped at 300.00: a -200.00 line; the minimum (10.00) is met, so no line for it.
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [
        (LineKind.USAGE, 50000),
        (LineKind.MAXIMUM_CAP, -20000),
    ]
    assert invoice.lines[1].unit_price == D("-200.00")
    assert invoice.subtotal_minor == 30000
    validate_invoice(invoice)


def test_cgst_at_a_half_paisa_rounds_up_each_component() -> None:
    # 1234.50 at 9 % is 111.105: CGST 111.11 and SGST 111.11, not 222.21 (18 % rounded once) split in two.
    plan = plan_version("pv", "Flat", "INR", "0", (flat("seats", "1234.50"),))
    invoice = build_invoice("inv_1", billing((SegmentUsage(whole(), plan, {}),)))
    assert [t.amount_minor for t in invoice.tax_lines] == [11111, 11111]
    assert invoice.total_minor == 123450 + 22222
    validate_invoice(invoice)


def test_per_charge_gst_rate_makes_its_own_tax_group() -> None:
    plan = plan_version("pv", "Mixed", "INR", "100", (per_unit("storage_gb", "2", gst_rate=D(12)),))
    invoice = build_invoice("inv_1", billing((SegmentUsage(whole(), plan, usage(storage_gb="10.5")),), state="07"))
    # base 100.00 at 18 %, storage 21.00 at 12 %.
    assert invoice.tax_lines == (TaxLine(TaxKind.IGST, D(12), 2100, 252), TaxLine(TaxKind.IGST, D(18), 10000, 1800))
    validate_invoice(invoice)


USD_PLAN = plan_version(
    "pv_usd", "Global", "USD", "10.00", (per_unit("api_calls", "0.0015", display_name="API calls"),)
)


def usd_to(quote: str, value: str) -> ExchangeRate:
    return ExchangeRate("USD", quote, D(value), "test", datetime(2026, 10, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("currency", "country", "rate", "lines", "tax", "total"),
    [
        # JPY (0 digits), Japan: 10.00 x 150.5 = 1505; 12345 x 0.0015 = 18.5175 USD x 150.5 = 2786.88375 -> 2787.
        ("JPY", "JP", "150.5", [1505, 2787], 0, 4292),
        # INR (2 digits), Karnataka: 832.50 and 1541.581875 -> 1541.58; 2374.08 x 9 % = 213.6672 -> 213.67 twice.
        ("INR", "IN", "83.25", [83250, 154158], 42734, 280142),
        # KWD (3 digits), Kuwait: 3.070 and 5.6848725 -> 5.685.
        ("KWD", "KW", "0.307", [3070, 5685], 0, 8755),
    ],
)
def test_currency_exponents_with_exchange_rate(
    currency: str, country: str, rate: str, lines: list[int], tax: int, total: int
) -> None:
    exchange = usd_to(currency, rate)
    state = "29" if country == "IN" else ""
    invoice = build_invoice(
        "inv_1",
        billing(
            (SegmentUsage(whole(), USD_PLAN, usage(api_calls="12345")),),
            currency=currency,
            country=country,
            state=state,
            rate=exchange,
        ),
    )
    assert [line.amount_minor for line in invoice.lines] == lines
    assert (invoice.tax_minor, invoice.total_minor, invoice.currency) == (tax, total, currency)
    assert invoice.exchange_rate == exchange
    usage_line = invoice.lines[1]
    # The unit price and breakdown are in the invoice currency at full precision.
    assert usage_line.unit_price == D("0.0015") * D(rate)
    assert usage_line.breakdown[0].amount == D("18.5175") * D(rate)
    if country != "IN":
        assert invoice.tax_regime is TaxRegime.EXPORT and invoice.tax_lines == ()
        assert invoice.place_of_supply == "96"
        assert invoice.notes == ("Supply meant for export under LUT without payment of IGST",)
    validate_invoice(invoice)


def test_missing_or_wrong_rate_names_the_pair() -> None:
    parts = (SegmentUsage(whole(), USD_PLAN, {}),)
    with pytest.raises(FailedPrecondition, match="no exchange rate from USD to INR for the invoice of period 2026-11"):
        build_invoice("inv_1", billing(parts))
    with pytest.raises(FailedPrecondition, match="the rate given is USD to JPY"):
        build_invoice("inv_1", billing(parts, rate=usd_to("JPY", "150")))


def test_each_line_is_rounded_once() -> None:
    # Three charges of 0.005 INR each round to 0.01 on their own lines: 3 paise, where the exact sum 0.015 would
    # round to 2. The invoice adds rounded lines; it never rounds a total.
    plan = plan_version("pv", "Tiny", "INR", "0", tuple(flat(m, "0.005") for m in ("a", "b", "c")))
    invoice = build_invoice("inv_1", billing((SegmentUsage(whole(), plan, {}),), country="US", state=""))
    assert [line.amount_minor for line in invoice.lines] == [1, 1, 1]
    assert invoice.subtotal_minor == 3


def test_percentage_charge_gets_event_amounts() -> None:
    plan = plan_version(
        "pv",
        "Payments",
        "INR",
        "0",
        (
            replace(
                per_unit("payments", "0"),
                charge=replace(per_unit("payments", "0").charge, model=ChargeModel.PERCENTAGE, rate=D("2.5")),
            ),
        ),
    )
    amounts = (D("100.00"), D("250.50"))
    invoice = build_invoice(
        "inv_1", billing((SegmentUsage(whole(), plan, {"payments": MetricUsage(D("350.50"), amounts)}),))
    )
    # 2.5 % of 350.50 = 8.7625 -> 8.76
    assert invoice.lines[0].amount_minor == 876
    validate_invoice(invoice)


def test_no_segment_gives_an_empty_invoice() -> None:
    invoice = build_invoice("inv_1", billing(()))
    assert (invoice.lines, invoice.tax_lines, invoice.total_minor) == ((), (), 0)
    validate_invoice(invoice)


def test_flat_charge_is_one_of_it() -> None:
    plan = plan_version("pv", "Seats", "INR", "0", (flat("seats", "49.99"),))
    line = build_invoice("inv_1", billing((SegmentUsage(whole(), plan, usage(seats="7")),))).lines[0]
    assert (line.quantity, line.unit_price, line.amount_minor) == (D(1), D("49.99"), 4999)


def test_segment_outside_the_period_is_refused() -> None:
    outside = Segment("pv_std", NOV.start, NOV.end + (NOV.end - NOV.start), 60)
    with pytest.raises(InvalidArgument, match="is not a part of period 2026-11") as error:
        build_invoice("inv_1", billing((SegmentUsage(whole(), STANDARD, {}), SegmentUsage(outside, STANDARD, {}))))
    assert error.value.field == "segments[1]"
