"""Coupons on invoices, worked by hand: how much each takes off, how it is allocated over the lines, the discount
lines the invoice shows and the GST on what is left."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.invoicing.domain.billing_period import days, period_for_key
from services.invoicing.domain.coupon import Coupon, CouponRedemption, validate_coupon, validate_discount
from services.invoicing.domain.discounts import allocate, discount_minor
from services.invoicing.domain.invoice import Invoice, LineKind, TaxKind, TaxLine, TaxRegime
from services.invoicing.domain.invoice_builder import SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.subscription import Segment
from tests.unit.services.invoicing.domain.invoice_fixtures import (
    NOV,
    D,
    billing,
    flat,
    per_unit,
    plan_version,
    usage,
    whole,
)

APPLIED = datetime(2026, 10, 1, tzinfo=UTC)
STANDARD = plan_version("pv_std", "Standard", "INR", "999",
                        (per_unit("api_calls", "0.05", display_name="API calls"),))


def redemption(redemption_id: str = "cpr_1", *, start: str = "2026-11", used: tuple[str, ...] = (),
               applied: datetime = APPLIED, **terms: object) -> CouponRedemption:
    raw: dict = {"code": "LAUNCH20", "name": "Launch offer", "percent_off": "20", "duration": "repeating",
                 "duration_periods": 3} | terms
    coupon = Coupon(f"cpn_{redemption_id}", validate_coupon(**raw), created_at=APPLIED)
    return CouponRedemption(redemption_id, coupon, "org_1", start, applied, None, frozenset(used))


def invoice_with(*coupons: CouponRedemption, segments: tuple[SegmentUsage, ...] | None = None,
                 state: str = "29", period=NOV, currency: str = "INR") -> Invoice:
    parts = segments or (SegmentUsage(whole(period, "pv_std"), STANDARD, usage(api_calls="12345")),)
    invoice = build_invoice("inv_1", replace(billing(parts, state=state, period=period, currency=currency),
                                             coupons=coupons))
    validate_invoice(invoice)
    return invoice


def rows(invoice: Invoice) -> list[tuple[LineKind, str, int]]:
    return [(line.kind, line.description, line.amount_minor) for line in invoice.lines]


def test_largest_remainder_allocation() -> None:
    # 5 over three equal items: 5/3 each, whole shares 1, 1, 1 and two units left for the first two (a tie).
    assert allocate(5, [3, 3, 3]) == (2, 2, 1)
    assert allocate(2, [1, 1, 1]) == (1, 1, 0)
    # 307.18 over 999.00, 496.91 and 40.01: exact shares 199.7974, 99.3807, 8.0019 -> 199.79, 99.38, 8.00 and the
    # one paisa left goes to the largest remainder (0.74 of a paisa), the first item.
    assert allocate(30718, [99900, 49691, 4001]) == (19980, 9938, 800)
    assert allocate(0, [5, 0]) == (0, 0)
    assert allocate(7, [3, 0, 4]) == (3, 0, 4)  # all of it: each item exactly
    for total, weights in ((4, [1, 2]), (-1, [3]), (1, [-1, 5])):
        with pytest.raises(ValueError, match="cannot allocate"):
            allocate(total, weights)


def test_what_a_discount_takes_off() -> None:
    twenty = validate_discount("20", None, None)
    assert discount_minor(twenty, 153592, "INR") == 30718  # 30718.4 -> 30718
    assert discount_minor(twenty, 153593, "INR") == 30719  # 30718.6 -> 30719
    assert discount_minor(validate_discount("12.5", None, None), 4, "JPY") == 1  # 0.5 yen rounds half-up
    assert discount_minor(validate_discount("100", None, None), 123, "KWD") == 123
    assert discount_minor(twenty, 0, "INR") == 0
    # A fixed amount, capped at what it applies to.
    assert discount_minor(validate_discount(None, "1.250", "KWD"), 5000, "KWD") == 1250
    assert discount_minor(validate_discount(None, "500", "INR"), 30000, "INR") == 30000


def test_worked_example_twenty_percent_for_three_months_on_an_inr_plan_intra_state() -> None:
    """Standard (INR 999 a month, API calls at 0.05) with 12,345 calls a month, a customer in Karnataka billed by
    a supplier in Karnataka (CGST 9% + SGST 9%), and LAUNCH20: 20% off for three periods from November."""
    launch = redemption(start="2026-11")
    invoices = []
    for key in ("2026-10", "2026-11", "2026-12", "2027-01", "2027-02"):
        period = period_for_key(key, "Asia/Kolkata")
        invoice = invoice_with(launch, period=period,
                               segments=month_of_calls(key))
        invoices.append(invoice)
        if launch.id in invoice.coupon_redemption_ids:  # what storing the invoice records
            launch = replace(launch, used_periods=launch.used_periods | {key})
    october, november, december, january, february = invoices
    assert rows(october) == [(LineKind.BASE_FEE, "Standard plan base fee", 99900),
                             (LineKind.USAGE, "API calls", 61725)]  # before the coupon's start period
    for discounted in (november, december, january):
        # 999.00 + 617.25 = 1616.25; 20% = 323.25, allocated 199.80 to the base fee and 123.45 to the calls.
        assert rows(discounted)[2] == (LineKind.DISCOUNT, "Launch offer (LAUNCH20): 20% off", -32325)
        line = discounted.lines[2]
        assert (line.coupon_code, line.coupon_redemption_id, line.gst_rate, line.unit_price) == (
            "LAUNCH20", "cpr_1", D(18), D("-323.25"))
        # GST on the discounted 1293.00: 9% = 116.37 each.
        assert discounted.subtotal_minor == 129300
        assert discounted.tax_lines == (TaxLine(TaxKind.CGST, D(9), 129300, 11637),
                                        TaxLine(TaxKind.SGST, D(9), 129300, 11637))
        assert (discounted.tax_minor, discounted.total_minor) == (23274, 152574)
    assert launch.used_periods == {"2026-11", "2026-12", "2027-01"}
    assert LineKind.DISCOUNT not in {line.kind for line in february.lines}  # used up after three
    assert february.total_minor == 161625 + 2 * 14546  # 1616.25 + 9% (145.4625 -> 145.46) twice
    # Re-pricing a period it was used for (a re-run, or a reissue) still discounts it.
    assert invoice_with(launch, period=period_for_key("2026-12", "Asia/Kolkata"),
                        segments=month_of_calls("2026-12")).total_minor == 152574


def month_of_calls(key: str) -> tuple[SegmentUsage, ...]:
    """A whole month on Standard with 12,345 API calls."""
    period = period_for_key(key, "Asia/Kolkata")
    return (SegmentUsage(Segment("pv_std", period.start, period.end, days(period)), STANDARD,
                         usage(api_calls="12345")),)


def test_inter_state_igst_on_the_discounted_amount_with_a_rounded_allocation() -> None:
    # 999.00 + 496.95 (9,939 calls) = 1495.95; 15% = 224.3925 -> 224.39.
    invoice = invoice_with(redemption(percent_off="15"),
                           segments=(SegmentUsage(whole(), STANDARD, usage(api_calls="9939")),), state="27")
    assert rows(invoice)[2] == (LineKind.DISCOUNT, "Launch offer (LAUNCH20): 15% off", -22439)
    # IGST 18% of 1271.56 = 228.8808 -> 228.88.
    assert invoice.tax_lines == (TaxLine(TaxKind.IGST, D(18), 127156, 22888),)
    assert invoice.total_minor == 127156 + 22888


def test_a_fixed_amount_is_capped_at_the_subtotal_and_never_leaves_it_negative() -> None:
    invoice = invoice_with(redemption(percent_off=None, amount_off="5000", currency="INR", duration="once",
                                      duration_periods=None))
    assert rows(invoice)[2] == (LineKind.DISCOUNT, "Launch offer (LAUNCH20): INR 5000.00 off", -161625)
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (0, 0, 0)


def test_a_fixed_amount_in_another_currency_does_not_apply() -> None:
    dollars = redemption(percent_off=None, amount_off="10", currency="USD", duration="forever", duration_periods=None)
    invoice = invoice_with(dollars)
    assert LineKind.DISCOUNT not in {line.kind for line in invoice.lines}
    assert invoice.coupon_redemption_ids == frozenset()  # and it uses up no period


def test_each_gst_rate_gets_its_own_discount_line() -> None:
    plan = plan_version("pv_std", "Mixed", "INR", "100", (flat("support", "50"), flat("storage", "30")))
    plan = replace(plan, terms=replace(plan.terms, charges=(
        plan.terms.charges[0], replace(plan.terms.charges[1], gst_rate=D(12)))))
    invoice = invoice_with(redemption(percent_off="10"), segments=(SegmentUsage(whole(), plan, {}),), state="07")
    # 10% of 180.00 = 18.00: 15.00 from the 150.00 at 18%, 3.00 from the 30.00 at 12%.
    assert rows(invoice)[3:] == [
        (LineKind.DISCOUNT, "Launch offer (LAUNCH20): 10% off, on the lines at GST 18%", -1500),
        (LineKind.DISCOUNT, "Launch offer (LAUNCH20): 10% off, on the lines at GST 12%", -300),
    ]
    assert invoice.tax_lines == (TaxLine(TaxKind.IGST, D(12), 2700, 324), TaxLine(TaxKind.IGST, D(18), 13500, 2430))


def test_a_plan_restricted_coupon_discounts_only_that_plan_across_a_plan_change() -> None:
    change = datetime(2026, 11, 18, 18, 30, tzinfo=UTC)  # 19 November in Kolkata
    starter = plan_version("pv_start", "Starter", "INR", "300", ())
    parts = (SegmentUsage(Segment("pv_start", NOV.start, change, 18), starter, {}),
             SegmentUsage(Segment("pv_std", change, NOV.end, 12), STANDARD, usage(api_calls="100")))
    invoice = invoice_with(redemption(percent_off="50", plan_codes=["standard"]), segments=parts)
    # Starter 300 x 18/30 = 180.00 untouched; Standard 999 x 12/30 = 399.60 and 5.00 of calls: half is 202.30.
    assert [line.amount_minor for line in invoice.lines] == [18000, 39960, 500, -20230]
    assert invoice.subtotal_minor == 18000 + 20230


def test_a_maximum_cap_is_folded_into_its_charge_before_allocating() -> None:
    capped = plan_version("pv_std", "Capped", "INR", "0",
                          (per_unit("api_calls", "0.01", maximum_amount=D(300)),))
    invoice = invoice_with(redemption(percent_off="100"),
                           segments=(SegmentUsage(whole(), capped, usage(api_calls="50000")),))
    # 500.00 capped at 300.00: the charge is worth 300.00 and a 100% coupon takes exactly that.
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [
        (LineKind.USAGE, 50000), (LineKind.MAXIMUM_CAP, -20000), (LineKind.DISCOUNT, -30000)]
    assert invoice.total_minor == 0


def test_stacked_coupons_percent_first_then_fixed_each_on_what_is_left() -> None:
    fixed = redemption("cpr_a", code="SORRY", name="Goodwill", percent_off=None, amount_off="100", currency="INR",
                       duration="once", duration_periods=None, applied=APPLIED - timedelta(days=1))
    percent = redemption("cpr_b", percent_off="10")
    invoice = invoice_with(fixed, percent)
    # 1616.25 - 10% (161.63, from 161.625 half-up) = 1454.62; then 100.00 off: 1354.62.
    assert rows(invoice)[2:] == [
        (LineKind.DISCOUNT, "Launch offer (LAUNCH20): 10% off", -16163),
        (LineKind.DISCOUNT, "Goodwill (SORRY): INR 100.00 off", -10000),
    ]
    assert invoice.subtotal_minor == 135462
    assert invoice.coupon_redemption_ids == {"cpr_a", "cpr_b"}


def test_jpy_and_kwd_round_to_their_own_minor_units() -> None:
    for currency, base, calls, expected in (("JPY", "1000", "3", -100), ("KWD", "3.500", "7", -350)):
        plan = plan_version("pv_std", "Local", currency, base, (per_unit("api_calls", "0.001"),))
        invoice = invoice_with(redemption(percent_off="10"), currency=currency, state="29",
                               segments=(SegmentUsage(whole(), plan, usage(api_calls=calls)),))
        # JPY: 1000 + 0.003 -> 0 yen of calls; 10% of 1000 = 100. KWD: 3.500 + 0.007; 10% of 3.507 = 0.3507 -> 0.351
        # of which 0.350 on the base fee and 0.001 on the calls, one line at 18%.
        discount = [line.amount_minor for line in invoice.lines if line.kind is LineKind.DISCOUNT]
        assert discount == ([expected] if currency == "JPY" else [-351])
        assert invoice.tax_regime is TaxRegime.INTRA_STATE
