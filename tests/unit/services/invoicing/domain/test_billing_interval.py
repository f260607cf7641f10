"""Quarterly and yearly base fees on monthly invoices: where each fee lands, prorations on plan changes and
cancellations, and the worked example of docs/pricing.md (an annual plan upgraded mid-year)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.invoicing.domain import subscription as subscription_rules
from services.invoicing.domain.billing_interval import interval_fees
from services.invoicing.domain.billing_period import days_between, period_for_key, start_of_day
from services.invoicing.domain.invoice import ExchangeRate, Invoice, LineKind, Party
from services.invoicing.domain.invoice_builder import BillingInput, SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.money import round_minor
from services.invoicing.domain.plan import BaseFeeTiming, BillingInterval, PlanVersion, PlanVersionTerms
from services.invoicing.domain.subscription import Subscription, segments
from tests.unit.services.invoicing.domain.invoice_fixtures import CREATED, SUPPLIER, per_unit, usage

D = Decimal
KOLKATA = "Asia/Kolkata"


def annual(
    version_id: str, name: str, base_fee: str, *, discount: str = "0", currency: str = "INR",
    interval: BillingInterval = BillingInterval.YEAR, timing: BaseFeeTiming = BaseFeeTiming.IN_ADVANCE,
) -> PlanVersion:
    terms = PlanVersionTerms(
        currency=currency, base_fee=D(base_fee), charges=(per_unit("api_calls", "0.10"),),
        billing_interval=interval, base_fee_timing=timing, annual_discount_percent=D(discount),
    )
    return PlanVersion(id=version_id, plan_id=f"plan_{name.lower()}", plan_code=name.lower(), plan_name=name,
                       version=1, terms=terms, created_at=CREATED)


def subscribe(version: PlanVersion, day: date, time_zone: str = KOLKATA, anchor_day: int = 1) -> Subscription:
    return subscription_rules.start(
        subscription_id="sub_1", organisation_id="org_1", plan_version_id=version.id,
        starts_at=start_of_day(day, time_zone), created_at=CREATED, billing_anchor_day=anchor_day,
    )


def invoice(
    key: str, subscription: Subscription, versions: Mapping[str, PlanVersion], *, currency: str = "INR",
    time_zone: str = KOLKATA, calls: str = "0",
) -> Invoice | None:
    """The month's invoice as the period close builds it; None where the subscription has nothing to bill."""
    period = period_for_key(key, time_zone, subscription.billing_anchor_day)
    parts = segments(subscription, period)
    if not parts:
        return None
    built = build_invoice(f"inv_{key}", BillingInput(
        organisation_id="org_1", customer=Party(name="Acme", country="IN", state_code="29"), currency=currency,
        customer_country="IN", customer_state_code="29", supplier=SUPPLIER, supplier_state_code="29",
        period=period,
        segments=tuple(SegmentUsage(p, versions[p.plan_version_id], usage(api_calls=calls)) for p in parts),
        interval_fees=interval_fees([subscription], period, versions),
    ))
    validate_invoice(built)
    return built


def month_keys(first: str, count: int) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    keys = []
    for _ in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def base_fee_lines(invoice: Invoice | None) -> list[tuple[str, int]]:
    if invoice is None:
        return []
    return [(line.description, line.amount_minor) for line in invoice.lines if line.kind is LineKind.BASE_FEE]


def base_fees_over(keys: Sequence[str], subscription: Subscription, versions: Mapping[str, PlanVersion],
                   **options: str) -> int:
    return sum(amount for key in keys for _, amount in base_fee_lines(invoice(key, subscription, versions, **options)))


# --- The worked example of docs/pricing.md -------------------------------------------------------------------

GROWTH = annual("pv_growth", "Growth", "10000", discount="10")  # 12 x 10,000 less 10 %: 1,08,000 a year
SCALE = annual("pv_scale", "Scale", "20000", discount="10")  # 12 x 20,000 less 10 %: 2,16,000 a year
VERSIONS = {v.id: v for v in (GROWTH, SCALE)}


def upgraded() -> Subscription:
    subscription = subscribe(GROWTH, date(2026, 4, 1))
    return subscription_rules.change_plan(subscription, SCALE.id, start_of_day(date(2026, 10, 1), KOLKATA), KOLKATA)


def test_worked_example_annual_plan_upgraded_mid_year_line_by_line() -> None:
    subscription = upgraded()
    year = month_keys("2026-04", 12)
    invoices = {key: invoice(key, subscription, VERSIONS, calls="1000") for key in year}

    april = invoices["2026-04"]
    assert april is not None
    assert [(line.kind, line.description, line.quantity, line.amount_minor) for line in april.lines] == [
        (LineKind.BASE_FEE, "Growth plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount", D(1),
         108_000_00),
        (LineKind.USAGE, "api_calls", D(1000), 100_00),  # usage stays monthly, in arrears
    ]
    base = april.lines[0]
    assert (base.period_start, base.period_end) == (start_of_day(date(2026, 4, 1), KOLKATA),
                                                   start_of_day(date(2027, 4, 1), KOLKATA))
    # 18 % GST within the state: CGST 9 % + SGST 9 % of 1,08,100.00.
    assert april.subtotal_minor == 108_100_00 and april.tax_minor == 19_458_00
    assert april.total_minor == 127_558_00

    for key in ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09"):
        assert base_fee_lines(invoices[key]) == [], key

    october = invoices["2026-10"]
    assert october is not None
    assert [(line.description, line.quantity, line.unit_price, line.amount_minor) for line in october.lines] == [
        # 182 of the year's 365 days (1 October to 31 March) are given back at 1,08,000 / 365 a day ...
        ("Growth plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (182 of 365 days unused, "
         "credited)", D(182), D("-295.8904109589"), -53_852_05),
        # ... and charged at 2,16,000 / 365 a day: 1,07,704.109... The year's running total rounds once: it is
        # 1,61,852.054... -> 1,61,852.05 after this line and 54,147.95 before it, so the line is 1,07,704.10.
        ("Scale plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (182 of 365 days charged)",
         D(182), D("591.7808219178"), 107_704_10),
        ("api_calls", D(1000), D("0.1"), 100_00),
    ]
    assert october.lines[1].period_start == start_of_day(date(2026, 10, 1), KOLKATA)
    assert october.subtotal_minor == 53_952_05
    assert [t.amount_minor for t in october.tax_lines] == [4_855_68, 4_855_68]  # 9 % of 53,952.05 = 4,855.6845
    assert october.total_minor == 63_663_41

    for key in ("2026-11", "2026-12", "2027-01", "2027-02", "2027-03"):
        assert base_fee_lines(invoices[key]) == [], key
    # The year's base fees: 1,08,000.00 - 53,852.05 + 1,07,704.10 = 1,61,852.05, the exact 1,08,000 x 183 / 365
    # + 2,16,000 x 182 / 365 = 1,61,852.0547... rounded once.
    assert sum(amount for key in year for _, amount in base_fee_lines(invoices[key])) == 161_852_05
    # The next year renews on Scale, in full, on April's invoice.
    assert base_fee_lines(invoice("2027-04", subscription, VERSIONS)) == [
        ("Scale plan base fee, year 2027-04-01 to 2028-03-31, 10% annual discount", 216_000_00)
    ]


def test_the_same_upgrade_in_arrears_charges_each_plan_its_part_on_march() -> None:
    growth = annual("pv_g", "Growth", "10000", discount="10", timing=BaseFeeTiming.IN_ARREARS)
    scale = annual("pv_s", "Scale", "20000", discount="10", timing=BaseFeeTiming.IN_ARREARS)
    versions = {growth.id: growth, scale.id: scale}
    subscription = subscription_rules.change_plan(
        subscribe(growth, date(2026, 4, 1)), scale.id, start_of_day(date(2026, 10, 1), KOLKATA), KOLKATA
    )
    for key in month_keys("2026-04", 11):
        assert base_fee_lines(invoice(key, subscription, versions)) == [], key
    assert base_fee_lines(invoice("2027-03", subscription, versions)) == [
        # 183 days of 1,08,000 / 365 = 54,147.945... ; with 182 days of 2,16,000 / 365 the year is 1,61,852.054...,
        # rounded once to 1,61,852.05: the second line is the difference, 1,07,704.10.
        ("Growth plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (183 of 365 days charged)",
         54_147_95),
        ("Scale plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (182 of 365 days charged)",
         107_704_10),
    ]


def test_a_quarterly_plan_is_invoiced_once_a_quarter_with_usage_every_month() -> None:
    quarterly = annual("pv_q", "Team", "999.99", interval=BillingInterval.QUARTER, timing=BaseFeeTiming.IN_ARREARS)
    subscription = subscribe(quarterly, date(2026, 1, 1))
    fees = {key: base_fee_lines(invoice(key, subscription, {quarterly.id: quarterly})) for key in
            month_keys("2026-01", 6)}
    assert fees == {
        "2026-01": [], "2026-02": [],
        "2026-03": [("Team plan base fee, quarter 2026-01-01 to 2026-03-31", 2_999_97)],
        "2026-04": [], "2026-05": [],
        "2026-06": [("Team plan base fee, quarter 2026-04-01 to 2026-06-30", 2_999_97)],
    }


def test_a_subscription_starting_mid_month_pays_the_rest_of_its_first_interval() -> None:
    subscription = subscribe(GROWTH, date(2026, 4, 15))
    assert base_fee_lines(invoice("2026-04", subscription, VERSIONS)) == [
        # 351 of 365 days of 1,08,000: 1,03,857.534... -> 1,03,857.53
        ("Growth plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (351 of 365 days charged)",
         103_857_53),
    ]


def test_cancelling_an_in_advance_plan_credits_the_rest_on_the_last_invoice() -> None:
    subscription = subscription_rules.cancel(subscribe(GROWTH, date(2026, 4, 1)), True,
                                             start_of_day(date(2026, 6, 10), KOLKATA), KOLKATA)
    assert invoice("2026-07", subscription, VERSIONS) is None
    assert base_fee_lines(invoice("2026-06", subscription, VERSIONS)) == [
        # 1 July to 31 March: 274 days of 365 given back.
        ("Growth plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (274 of 365 days unused, "
         "credited)", -81_073_97),
    ]


def test_moving_from_a_monthly_plan_to_an_annual_one_starts_the_year_at_the_change() -> None:
    monthly = annual("pv_m", "Starter", "5000", interval=BillingInterval.MONTH)
    versions = {**VERSIONS, monthly.id: monthly}
    subscription = subscription_rules.change_plan(
        subscribe(monthly, date(2026, 1, 1)), GROWTH.id, start_of_day(date(2026, 7, 1), KOLKATA), KOLKATA
    )
    june = invoice("2026-06", subscription, versions)
    assert base_fee_lines(june) == [("Starter plan base fee", 5_000_00)]
    assert base_fee_lines(invoice("2026-07", subscription, versions)) == [
        ("Growth plan base fee, year 2026-07-01 to 2027-06-30, 10% annual discount", 108_000_00)
    ]


def test_an_annual_plan_in_another_currency_is_converted_before_rounding() -> None:
    usd = annual("pv_usd", "Global", "100", discount="12.5", currency="USD")
    subscription = subscribe(usd, date(2026, 4, 1))
    period = period_for_key("2026-04", KOLKATA)
    built = build_invoice("inv", BillingInput(
        organisation_id="org_1", customer=Party(name="Acme", country="IN", state_code="29"), currency="INR",
        customer_country="IN", customer_state_code="29", supplier=SUPPLIER, supplier_state_code="29",
        period=period, segments=tuple(SegmentUsage(p, usd) for p in segments(subscription, period)),
        interval_fees=interval_fees([subscription], period, {usd.id: usd}),
        exchange_rate=ExchangeRate(base_currency="USD", quote_currency="INR", rate=D("83.4567"),
                                   effective_at=datetime(2026, 1, 1, tzinfo=UTC), source="manual"),
    ))
    # 12 x 100 x 0.875 = 1,050 USD x 83.4567 = 87,629.535 INR -> 87,629.54
    assert base_fee_lines(built) == [("Global plan base fee, year 2026-04-01 to 2027-03-31, 12.5% annual discount",
                                      87_629_54)]


# --- Properties ------------------------------------------------------------------------------------------------

CURRENCIES = st.sampled_from(["JPY", "INR", "KWD"])
FEES = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False)
DISCOUNTS = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
ZONES = st.sampled_from([KOLKATA, "America/New_York", "Europe/London", "Pacific/Auckland"])


@settings(max_examples=60, deadline=None)
@given(currency=CURRENCIES, fee=FEES, discount=DISCOUNTS, time_zone=ZONES, anchor_day=st.integers(1, 28),
       timing=st.sampled_from(BaseFeeTiming))
def test_a_year_of_invoices_of_an_unchanged_annual_plan_sums_to_the_annual_fee(
    currency: str, fee: Decimal, discount: Decimal, time_zone: str, anchor_day: int, timing: BaseFeeTiming
) -> None:
    plan = annual("pv_a", "Annual", str(fee), discount=str(discount), currency=currency, timing=timing)
    subscription = subscribe(plan, date(2026, 4, anchor_day), time_zone, anchor_day)
    total = base_fees_over(month_keys("2026-04", 12), subscription, {plan.id: plan}, currency=currency,
                           time_zone=time_zone)
    assert total == round_minor(fee * 12 * (100 - discount) / 100, currency)


@settings(max_examples=80, deadline=None)
@given(currency=CURRENCIES, old_fee=FEES, new_fee=FEES, discount=DISCOUNTS, change_day=st.integers(1, 364),
       timing=st.sampled_from(BaseFeeTiming), interval=st.sampled_from([BillingInterval.QUARTER,
                                                                        BillingInterval.YEAR]))
def test_a_change_at_any_day_never_charges_more_than_one_full_interval_fee(
    currency: str, old_fee: Decimal, new_fee: Decimal, discount: Decimal, change_day: int, timing: BaseFeeTiming,
    interval: BillingInterval,
) -> None:
    discount = discount if interval is BillingInterval.YEAR else D(0)
    old = annual("pv_old", "Old", str(old_fee), discount=str(discount), currency=currency, timing=timing,
                 interval=interval)
    new = annual("pv_new", "New", str(new_fee), discount=str(discount), currency=currency, timing=timing,
                 interval=interval)
    versions = {old.id: old, new.id: new}
    first = start_of_day(date(2026, 4, 1), KOLKATA)
    months = interval.months
    end = period_for_key(month_keys("2026-04", months + 1)[-1], KOLKATA).start
    interval_days = days_between(first, end, KOLKATA)
    change_day = 1 + change_day % (interval_days - 1)  # within the interval, after its first day
    change_at = start_of_day(date.fromordinal(date(2026, 4, 1).toordinal() + change_day), KOLKATA)
    subscription = subscription_rules.change_plan(subscribe(old, date(2026, 4, 1)), new.id, change_at, KOLKATA)

    lines = [line for key in month_keys("2026-04", months)
             for line in (invoice(key, subscription, versions, currency=currency) or _no_invoice()).lines
             if line.kind is LineKind.BASE_FEE]
    old_full, new_full = (round_minor(v.terms.interval_fee(), currency) for v in (old, new))
    credits = -sum(line.amount_minor for line in lines if line.amount_minor < 0)
    total = sum(line.amount_minor for line in lines)
    assert 0 <= credits <= old_full
    assert min(old_full, new_full) <= total <= max(old_full, new_full)
    # The interval's lines add up to its exact total rounded once, however the change split it.
    unused = days_between(change_at, end, KOLKATA)
    with localcontext(Context(prec=60)):
        exact = old.terms.interval_fee() * (interval_days - unused) + new.terms.interval_fee() * unused
        exact /= interval_days
    assert total == round_minor(exact, currency)
    if old_fee == new_fee:
        assert total == old_full  # the same price either side of the change: exactly one interval's fee


@settings(max_examples=60, deadline=None)
@given(currency=CURRENCIES, fee=FEES, cancel_day=st.integers(0, 400), timing=st.sampled_from(BaseFeeTiming))
def test_a_cancellation_at_any_day_charges_between_nothing_and_one_interval_fee(
    currency: str, fee: Decimal, cancel_day: int, timing: BaseFeeTiming
) -> None:
    plan = annual("pv_a", "Annual", str(fee), currency=currency, timing=timing)
    now = start_of_day(date.fromordinal(date(2026, 4, 1).toordinal() + cancel_day), KOLKATA)
    subscription = subscription_rules.cancel(subscribe(plan, date(2026, 4, 1)), False, now, KOLKATA)
    total = base_fees_over(month_keys("2026-04", 15), subscription, {plan.id: plan}, currency=currency)
    full = round_minor(plan.terms.interval_fee(), currency)
    assert 0 <= total <= full + round_minor(plan.terms.interval_fee(), currency) * (cancel_day >= 365)


def _no_invoice() -> Invoice:
    class Empty:
        lines: tuple = ()

    return Empty()  # type: ignore[return-value]


@pytest.mark.parametrize("interval", [BillingInterval.QUARTER, BillingInterval.YEAR])
def test_monthly_invoices_of_an_interval_plan_carry_no_monthly_base_fee(interval: BillingInterval) -> None:
    plan = annual("pv_a", "Annual", "1000", interval=interval, timing=BaseFeeTiming.IN_ARREARS)
    subscription = subscribe(plan, date(2026, 4, 1))
    assert base_fee_lines(invoice("2026-04", subscription, {plan.id: plan})) == []


def test_moving_from_an_annual_plan_to_a_monthly_one_credits_the_rest_of_the_year() -> None:
    monthly = annual("pv_m", "Starter", "5000", interval=BillingInterval.MONTH)
    versions = {**VERSIONS, monthly.id: monthly}
    subscription = subscription_rules.change_plan(
        subscribe(GROWTH, date(2026, 4, 1)), monthly.id, start_of_day(date(2027, 1, 1), KOLKATA), KOLKATA
    )
    assert base_fee_lines(invoice("2027-01", subscription, versions)) == [
        # 1 January to 31 March: 90 of 365 days of 1,08,000 back (26,630.136...); the running total of the year
        # goes from 1,08,000.00 to 81,369.86.
        ("Growth plan base fee, year 2026-04-01 to 2027-03-31, 10% annual discount (90 of 365 days unused, "
         "credited)", -26_630_14),
        ("Starter plan base fee", 5_000_00),
    ]
    assert base_fee_lines(invoice("2027-02", subscription, versions)) == [("Starter plan base fee", 5_000_00)]


def test_an_anchored_subscription_s_year_runs_from_anchor_day_to_anchor_day() -> None:
    subscription = subscribe(GROWTH, date(2026, 4, 15), anchor_day=15)
    april = invoice("2026-04", subscription, VERSIONS)
    assert base_fee_lines(april) == [
        ("Growth plan base fee, year 2026-04-15 to 2027-04-14, 10% annual discount", 108_000_00)
    ]
    assert all(base_fee_lines(invoice(key, subscription, VERSIONS)) == [] for key in month_keys("2026-05", 11))
