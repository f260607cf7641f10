"""Invoice validation catches tampered amounts; recomputation catches a consistent forgery; and for random plans
and usage the built invoice always adds up."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel, PackageRounding, Tier
from services.invoicing.domain.invoice import ExchangeRate, Invoice, LineKind, TaxKind, TaxLine, TaxRegime
from services.invoicing.domain.invoice_builder import MetricUsage, SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import check_recomputation, validate_invoice
from services.invoicing.domain.money import round_minor
from services.invoicing.domain.plan import PlanCharge
from services.invoicing.domain.pricing import price_charge
from services.invoicing.domain.subscription import Segment
from tests.unit.services.invoicing.domain.invoice_fixtures import NOV, D, billing, per_unit, plan_version, usage, whole

PLAN = plan_version("pv", "Standard", "INR", "999.00", (per_unit("api_calls", "0.01"),))


def good_invoice(state: str = "29") -> Invoice:
    # 999.00 + 1234 x 0.01 = 1011.34; 9 % = 91.0206 -> 91.02 twice.
    return build_invoice("inv_1", billing((SegmentUsage(whole(), PLAN, usage(api_calls="1234")),), state=state))


def test_good_invoice_passes() -> None:
    invoice = good_invoice()
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (101134, 18204, 119338)
    validate_invoice(invoice)
    check_recomputation(invoice, good_invoice())


def _problem(invoice: Invoice) -> str:
    with pytest.raises(FailedPrecondition) as error:
        validate_invoice(invoice)
    return str(error.value)


def test_tampered_line_amount() -> None:
    invoice = good_invoice()
    tampered = replace(invoice, lines=(invoice.lines[0], replace(invoice.lines[1], amount_minor=1235)))
    assert _problem(tampered) == (
        "invoice inv_1 (2026-11) is inconsistent: lines sum to 101135 minor units but the subtotal is 101134 "
        "(off by -1)")


def test_tampered_totals_and_tax() -> None:
    invoice = good_invoice()
    assert "tax lines sum to 18204 minor units but the tax is 18205" in _problem(replace(invoice, tax_minor=18205))
    assert "subtotal 101134 + tax 18204 = 119338, but the total is 119339" in _problem(
        replace(invoice, total_minor=119339))
    wrong_cgst = (replace(invoice.tax_lines[0], amount_minor=9103), invoice.tax_lines[1])
    assert "tax_lines[0] CGST at 9% of 101134 is 9103, expected 9102" in _problem(
        replace(invoice, tax_lines=wrong_cgst, tax_minor=18205, total_minor=119339))


def test_wrong_regime_or_taxable() -> None:
    invoice = good_invoice()
    igst = (TaxLine(TaxKind.IGST, D(18), 101134, 18204),)
    assert "tax_lines[0] is IGST, which a intra_state invoice does not charge" in _problem(
        replace(invoice, tax_lines=igst))
    assert "tax_lines[0] is CGST, which a export invoice does not charge" in _problem(
        replace(invoice, tax_regime=TaxRegime.EXPORT))
    short = tuple(replace(t, taxable_minor=100000, amount_minor=9000) for t in invoice.tax_lines)
    assert "CGST taxable amounts sum to 100000 but the subtotal is 101134" in _problem(
        replace(invoice, tax_lines=short, tax_minor=18000, total_minor=119134))


def test_misnumbered_lines_and_bad_currency() -> None:
    invoice = good_invoice()
    assert "lines are numbered [2, 1]" in _problem(replace(invoice, lines=invoice.lines[::-1]))
    assert "currency 'XAU'" in _problem(replace(invoice, currency="XAU"))


def test_a_discount_takes_off_names_its_redemption_and_never_takes_more_than_its_lines() -> None:
    invoice = good_invoice()
    discount = replace(invoice.lines[1], number=3, kind=LineKind.DISCOUNT, amount_minor=-1134, metric_code="",
                       coupon_code="X", coupon_redemption_id="cpr_1")
    # 1000.00 left; 9 % = 90.00 twice.
    taxes = (TaxLine(TaxKind.CGST, D(9), 100000, 9000), TaxLine(TaxKind.SGST, D(9), 100000, 9000))
    discounted = replace(invoice, lines=(*invoice.lines, discount), subtotal_minor=100000, tax_lines=taxes,
                         tax_minor=18000, total_minor=118000)
    validate_invoice(discounted)
    positive = replace(discount, amount_minor=1134)
    assert "discount line 3 is 1134 minor units for redemption 'cpr_1'" in _problem(
        replace(discounted, lines=(*invoice.lines, positive)))
    too_much = replace(discount, amount_minor=-101135)
    assert "the lines at GST 18% sum to -1 minor units" in _problem(
        replace(invoice, lines=(*invoice.lines, too_much), subtotal_minor=-1, tax_lines=(), tax_minor=0,
                total_minor=-1, tax_regime=TaxRegime.EXPORT))
    with pytest.raises(FailedPrecondition, match="recomputation differs at line 3 coupon_redemption_id"):
        check_recomputation(discounted, replace(discounted, lines=(
            *invoice.lines, replace(discount, coupon_redemption_id="cpr_2"))))


def test_recomputation_catches_a_consistent_forgery() -> None:
    # Usage line raised by 1.00, subtotal, tax lines and total adjusted to match: internally consistent, so
    # validate_invoice passes, but recomputing from the same input gives the real figure.
    invoice = good_invoice()
    line = replace(invoice.lines[1], amount_minor=1334)
    forged_lines = (invoice.lines[0], line)
    # 101234 x 9 % = 9111.06 -> 9111 twice
    taxes = (TaxLine(TaxKind.CGST, D(9), 101234, 9111), TaxLine(TaxKind.SGST, D(9), 101234, 9111))
    forged = replace(invoice, lines=forged_lines, subtotal_minor=101234, tax_lines=taxes, tax_minor=18222,
                     total_minor=119456)
    validate_invoice(forged)
    with pytest.raises(FailedPrecondition, match="recomputation differs at line 2 amount_minor: stored 1334, "
                                                 "recomputed 1234"):
        check_recomputation(forged, good_invoice())
    with pytest.raises(FailedPrecondition, match="recomputation differs at tax_regime"):
        check_recomputation(invoice, good_invoice(state="27"))


# --- invariants over random plans and usage --------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def charges(draw: st.DrawFn) -> ChargeDefinition:
    model = draw(st.sampled_from([ChargeModel.PER_UNIT, ChargeModel.GRADUATED, ChargeModel.VOLUME,
                                  ChargeModel.PACKAGE, ChargeModel.FLAT]))
    minimum = draw(st.none() | prices)
    maximum = draw(st.none() | prices.map(lambda p: p + (minimum or 0)))
    common = {"minimum_amount": minimum, "maximum_amount": maximum,
              "free_units": draw(st.sampled_from([D(0), D(100)]))}
    if model is ChargeModel.PER_UNIT:
        return ChargeDefinition(model=model, unit_price=draw(prices), **common)
    if model in (ChargeModel.GRADUATED, ChargeModel.VOLUME):
        bounds = sorted(draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=3, unique=True)))
        tiers = [Tier(up_to=D(b), unit_price=draw(prices), flat_fee=draw(prices)) for b in bounds]
        tiers.append(Tier(up_to=None, unit_price=draw(prices), flat_fee=draw(prices)))
        return ChargeDefinition(model=model, tiers=tuple(tiers), **common)
    if model is ChargeModel.PACKAGE:
        return ChargeDefinition(model=model, package_size=D(draw(st.integers(1, 1000))), package_price=draw(prices),
                                package_rounding=draw(st.sampled_from(list(PackageRounding))), **common)
    return ChargeDefinition(model=model, flat_amount=draw(prices), **common)


@st.composite
def billing_inputs(draw: st.DrawFn):
    currency = draw(st.sampled_from(["INR", "USD", "JPY", "KWD"]))
    plan_currency = draw(st.sampled_from(["INR", currency]))
    metrics = draw(st.lists(st.sampled_from(["api_calls", "llm_tokens", "storage_gb", "seats", "events"]),
                            min_size=0, max_size=5, unique=True))
    plan_charges = tuple(
        PlanCharge(m, draw(charges()), gst_rate=draw(st.none() | st.sampled_from([D(0), D(5), D(12), D(28)])))
        for m in metrics)
    plan = plan_version("pv", "Random", plan_currency, str(draw(prices)), plan_charges,
                        gst_rate=draw(st.sampled_from(["18", "5"])))
    split = draw(st.integers(0, 29))  # 0: the whole period, else a plan change after that many days
    metered = {m: MetricUsage(draw(quantities)) for m in metrics if draw(st.booleans())}
    if split:
        middle = NOV.start + (NOV.end - NOV.start) * split / 30
        parts = (SegmentUsage(Segment("pv", NOV.start, middle, split), plan, metered),
                 SegmentUsage(Segment("pv", middle, NOV.end, 30 - split), plan, metered))
    else:
        parts = (SegmentUsage(whole(), plan, metered),)
    rate = None
    if plan_currency != currency:
        rate = ExchangeRate(plan_currency, currency, draw(st.decimals(min_value=D("0.0001"), max_value=1000,
                                                                      places=6)), "test", NOV.start)
    country, state = draw(st.sampled_from([("IN", "29"), ("IN", "27"), ("US", "")]))
    return billing(parts, currency=currency, country=country, state=state, rate=rate)


@settings(max_examples=300, deadline=None)
@given(billing_inputs())
def test_built_invoices_add_up_and_validate(billing_input) -> None:
    invoice = build_invoice("inv_x", billing_input)
    validate_invoice(invoice)
    check_recomputation(invoice, build_invoice("inv_x", billing_input))
    assert invoice.total_minor == invoice.subtotal_minor + invoice.tax_minor
    assert invoice.subtotal_minor == sum(line.amount_minor for line in invoice.lines)
    rate = billing_input.exchange_rate.rate if billing_input.exchange_rate else Decimal(1)
    for part in billing_input.segments:
        for plan_charge in part.plan_version.terms.charges:
            lines = [line for line in invoice.lines if line.metric_code == plan_charge.metric_code
                     and line.period_start == part.segment.start]
            usage_line = next(line for line in lines if line.kind is LineKind.USAGE)
            quantity = part.usage.get(plan_charge.metric_code, MetricUsage(D(0))).quantity
            # The usage line is the exact price, converted, rounded once.
            exact = price_charge(plan_charge.charge, quantity).amount * rate
            assert usage_line.amount_minor == round_minor(exact, billing_input.currency)
            # With its adjustment, the charge lands within [minimum, maximum] exactly (in rounded units).
            charged = sum(line.amount_minor for line in lines)
            if plan_charge.charge.minimum_amount is not None:
                assert charged >= round_minor(plan_charge.charge.minimum_amount * rate, billing_input.currency)
            if plan_charge.charge.maximum_amount is not None:
                assert charged <= round_minor(plan_charge.charge.maximum_amount * rate, billing_input.currency)
            assert all(line.amount_minor != 0 for line in lines if line.kind is not LineKind.USAGE)


def test_usage_pricing_past_the_amount_bound_is_refused_not_truncated() -> None:
    # An event value just under 10^30 is accepted by ingest; at 0.01 INR a unit it prices to ~10^30 paise.
    huge = build_invoice("inv_1", billing((SegmentUsage(whole(), PLAN, usage(api_calls="9" * 29)),)))
    problem = _problem(huge)
    assert "past the largest amount an invoice can carry (999999999999999999)" in problem
    assert "lines[2]" in problem
    # At the bound itself: fine.
    edge = replace(good_invoice(), subtotal_minor=10**18 - 1)
    assert "largest amount" not in _problem(edge)  # inconsistent, but not past the bound
