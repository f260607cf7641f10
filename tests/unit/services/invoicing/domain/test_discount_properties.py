"""Invariants of coupons on invoices over generated plans, usage, coupons and customers (hypothesis), in JPY (no
minor units), INR (two) and KWD (three): the lines less the discounts plus the tax are the total to the minor unit,
a discount never exceeds what it applies to, each allocation sums exactly to its discount, and GST is the law's on
the discounted amounts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain import gst
from services.invoicing.domain.coupon import Coupon, CouponRedemption, DiscountKind, validate_coupon
from services.invoicing.domain.currencies import minor_units
from services.invoicing.domain.discounts import allocate, apply_coupons
from services.invoicing.domain.invoice import ExchangeRate, LineKind, TaxRegime
from services.invoicing.domain.invoice_builder import SegmentUsage, build_invoice, discount_bases
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.subscription import Segment
from tests.unit.services.invoicing.domain.invoice_fixtures import NOV, D, billing, flat, per_unit, plan_version, usage

CURRENCIES = ("JPY", "INR", "KWD")
GST_RATES = ("0", "5", "12", "18", "28")
APPLIED = datetime(2026, 10, 1, tzinfo=UTC)


def half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=8), st.data())
def test_largest_remainder_sums_exactly_within_a_unit_of_each_share(weights: list[int], data: st.DataObject) -> None:
    total = data.draw(st.integers(0, sum(weights)))
    shares = allocate(total, weights)
    assert sum(shares) == total
    whole = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        if whole:
            assert abs(Fraction(share) - Fraction(total * weight, whole)) < 1


def money(currency: str, max_value: int = 100_000) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=max_value, places=minor_units(currency) + 2, allow_nan=False,
                       allow_infinity=False)


@st.composite
def plan_versions(draw: st.DrawFn, currency: str, name: str) -> object:
    charges = [
        replace(flat(f"flat_{index}", str(draw(money(currency)))), gst_rate=D(draw(st.sampled_from(GST_RATES))),
                sac_code=draw(st.sampled_from(["", "998315"])))
        for index in range(draw(st.integers(0, 3)))
    ]
    cap = draw(st.sampled_from([None, "50", "5000"]))
    charges.append(per_unit("api_calls", "0.0137", maximum_amount=None if cap is None else D(cap)))
    return plan_version(f"pv_{name}", name.title(), currency, str(draw(money(currency))), tuple(charges),
                        gst_rate=draw(st.sampled_from(GST_RATES)))


@st.composite
def redemptions(draw: st.DrawFn, currency: str, index: int) -> CouponRedemption:
    if draw(st.booleans()):
        discount = {"percent_off": str(draw(st.decimals(min_value=Decimal("0.01"), max_value=100, places=2)))}
    else:
        other = draw(st.sampled_from([currency, currency, "USD"]))  # now and then one that does not apply
        places = minor_units(other)
        amount = draw(st.decimals(min_value=Decimal(1).scaleb(-places), max_value=50_000, places=places))
        discount = {"amount_off": str(amount), "currency": other}
    terms = validate_coupon(code=f"C{index}", name=f"Coupon {index}", duration="forever",
                            plan_codes=draw(st.sampled_from([[], ["basic"], ["premium"]])), **discount)
    applied = APPLIED + timedelta(minutes=draw(st.integers(0, 100)))
    return CouponRedemption(f"cpr_{index}", Coupon(f"cpn_{index}", terms, APPLIED), "org_1", "2026-11", applied)


@st.composite
def cases(draw: st.DrawFn):
    currency = draw(st.sampled_from(CURRENCIES))
    # Now and then plan prices in INR converted to the invoice currency: coupons apply to the converted lines.
    plan_currency = draw(st.sampled_from(["INR", currency]))
    rate = None
    if plan_currency != currency:
        rate = ExchangeRate("INR", currency, draw(st.decimals(min_value=D("0.001"), max_value=10, places=6)),
                            "test", NOV.start)
    basic = draw(plan_versions(plan_currency, "basic"))
    calls = usage(api_calls=str(draw(st.integers(0, 10**6))))
    if draw(st.booleans()):
        parts = (SegmentUsage(Segment("pv_basic", NOV.start, NOV.end, 30), basic, calls),)
    else:  # a plan change on day k: each plan's lines on its own segment
        premium = draw(plan_versions(plan_currency, "premium"))
        k = draw(st.integers(1, 29))
        change = NOV.start + timedelta(days=k)
        parts = (SegmentUsage(Segment("pv_basic", NOV.start, change, k), basic, calls),
                 SegmentUsage(Segment("pv_premium", change, NOV.end, 30 - k), premium, calls))
    coupons = tuple(draw(redemptions(currency, index)) for index in range(draw(st.integers(0, 3))))
    country, state = draw(st.sampled_from([("IN", "29"), ("IN", "27"), ("US", "")]))
    return replace(billing(parts, currency=currency, country=country, state=state, rate=rate), coupons=coupons)


@given(cases())
def test_discounts_and_tax_balance_to_the_minor_unit(billing_input) -> None:
    invoice = build_invoice("inv_1", billing_input)
    validate_invoice(invoice)  # lines sum to the subtotal, tax lines are the law's, subtotal + tax = total
    charged = sum(line.amount_minor for line in invoice.lines if line.kind is not LineKind.DISCOUNT)
    discount = -sum(line.amount_minor for line in invoice.lines if line.kind is LineKind.DISCOUNT)
    assert charged - discount + invoice.tax_minor == invoice.total_minor
    assert 0 <= discount <= charged
    assert invoice.subtotal_minor == charged - discount >= 0

    # Recompute the allocation the builder used, and check it against the rules on its own terms.
    charge_lines = tuple(line for line in invoice.lines if line.kind is not LineKind.DISCOUNT)
    codes = {part.plan_version.id: part.plan_version.plan_code for part in billing_input.segments}
    bases = discount_bases(charge_lines, codes)
    applied = apply_coupons(bases, billing_input.coupons, billing_input.period.key, invoice.currency)
    remaining = [base.amount_minor for base in bases]
    for found in applied:
        terms = found.redemption.coupon.terms
        eligible = [i for i, base in enumerate(bases) if not terms.plan_codes or base.plan_code in terms.plan_codes]
        base_minor = sum(remaining[i] for i in eligible)
        if terms.discount.kind is DiscountKind.PERCENT:
            expected = half_up(Fraction(base_minor) * Fraction(terms.discount.percent_off) / 100)
        else:
            assert terms.discount.currency == invoice.currency
            expected = round(terms.discount.amount_off.scaleb(minor_units(invoice.currency)))
        assert found.amount_minor == min(expected, base_minor) > 0
        assert sum(found.allocations) == found.amount_minor  # the allocation sums exactly
        assert all(found.allocations[i] == 0 for i in range(len(bases)) if i not in eligible)
        for i in eligible:
            exact = Fraction(found.amount_minor * remaining[i], base_minor)
            assert abs(found.allocations[i] - exact) < 1 and found.allocations[i] <= remaining[i]
        remaining = [left - taken for left, taken in zip(remaining, found.allocations, strict=True)]
        lines = [line for line in invoice.lines if line.coupon_redemption_id == found.redemption.id]
        assert -sum(line.amount_minor for line in lines) == found.amount_minor
    assert {found.redemption.id for found in applied} == invoice.coupon_redemption_ids
    assert all(left >= 0 for left in remaining)

    # GST per rate is on the discounted items: what is left of each after every coupon.
    if invoice.tax_regime is TaxRegime.EXPORT:
        assert invoice.tax_minor == 0
        return
    taxable: dict[Decimal, int] = {}
    for base, left in zip(bases, remaining, strict=True):
        taxable[base.gst_rate] = taxable.get(base.gst_rate, 0) + left
    for tax in invoice.tax_lines:
        full_rate = tax.rate * (2 if tax.kind.value in ("CGST", "SGST") else 1)
        assert tax.taxable_minor == taxable[full_rate]
        assert tax.amount_minor == gst.tax_amount_minor(taxable[full_rate], tax.rate)
