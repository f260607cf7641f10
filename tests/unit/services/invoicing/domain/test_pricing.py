"""Worked examples of every charge model, computed by hand, and the rounded invoice lines."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.charge_rules import validate_charge
from services.invoicing.domain.charges import ChargeDefinition
from services.invoicing.domain.pricing import LineAmounts, line_amounts, price_charge, quote_charge


def charge(**raw: Any) -> ChargeDefinition:
    return validate_charge(raw)


def rows(price: Any) -> list[tuple[str, D, D]]:
    return [(row.description, row.quantity, row.amount) for row in price.breakdown]


# --- per_unit -------------------------------------------------------------------------------------------------


def test_per_unit_after_free_units() -> None:
    # 12345.5 units, the first 1000 free: 11345.5 x 0.015 = 170.1825
    price = price_charge(charge(model="per_unit", unit_price="0.015", free_units="1000"), D("12345.5"))
    assert price.amount == D("170.1825")
    assert price.billable_quantity == D("11345.5")
    assert rows(price) == [("free units", D(1000), D(0)), ("units", D("11345.5"), D("170.1825"))]


def test_per_unit_within_free_units_and_at_zero() -> None:
    per_unit = charge(model="per_unit", unit_price="0.015", free_units="1000")
    assert price_charge(per_unit, D(999)).amount == 0
    zero = price_charge(per_unit, D(0))
    assert zero.amount == 0
    assert rows(zero) == [("units", D(0), D(0))]  # no free row when nothing was free


# --- graduated ------------------------------------------------------------------------------------------------

GRADUATED = dict(model="graduated", tiers=[
    {"up_to": "1000", "unit_price": "0", "flat_fee": "10"},  # first 1000 units: flat 10
    {"up_to": "5000", "unit_price": "0.5", "flat_fee": "5"},  # 1000 < units <= 5000: 0.5 each, flat 5 once reached
    {"up_to": None, "unit_price": "0.25"},  # above 5000: 0.25 each
])  # fmt: skip


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        ("0", "10"),  # the first tier's flat fee even at zero usage
        ("1", "10"),
        ("1000", "10"),  # exactly at up_to: tier 2 is not reached
        ("1000.5", "15.25"),  # 10 + 0.5 x 0.5 + 5
        ("1001", "15.5"),  # 10 + 1 x 0.5 + 5
        ("5000", "2015"),  # 10 + 4000 x 0.5 + 5
        ("6000", "2265"),  # 2015 + 1000 x 0.25
        ("6000.04", "2265.01"),  # 2015 + 1000.04 x 0.25
    ],
)
def test_graduated(quantity: str, amount: str) -> None:
    assert price_charge(charge(**GRADUATED), D(quantity)).amount == D(amount)


def test_graduated_breakdown_shows_each_tier_reached() -> None:
    price = price_charge(charge(**GRADUATED), D(6000))
    assert rows(price) == [("tier 1", D(1000), D(10)), ("tier 2", D(4000), D(2005)), ("tier 3", D(1000), D(250))]
    tier_2 = price.breakdown[1]
    assert (tier_2.from_units, tier_2.up_to, tier_2.unit_price, tier_2.flat_fee) == (D(1000), D(5000), D("0.5"), D(5))
    assert price.breakdown[2].up_to is None


def test_graduated_free_units_come_off_before_the_tiers() -> None:
    # 1100.5 units, 100 free: 1000.5 billable -> 10 + 0.5 x 0.5 + 5 = 15.25
    price = price_charge(charge(**GRADUATED, free_units="100"), D("1100.5"))
    assert price.amount == D("15.25")
    assert rows(price)[0] == ("free units", D(100), D(0))


# --- volume ---------------------------------------------------------------------------------------------------

VOLUME = dict(model="volume", tiers=[
    {"up_to": "100", "unit_price": "2", "flat_fee": "5"},
    {"up_to": "1000", "unit_price": "1.5", "flat_fee": "10"},
    {"up_to": None, "unit_price": "1", "flat_fee": "50"},
])  # fmt: skip


@pytest.mark.parametrize(
    ("quantity", "amount", "tier"),
    [
        ("0", "5", "tier 1"),  # zero falls in the first tier: its flat fee
        ("100", "205", "tier 1"),  # 100 x 2 + 5, exactly at up_to
        ("101", "161.5", "tier 2"),  # 101 x 1.5 + 10: cheaper than 100 units
        ("1000", "1510", "tier 2"),  # 1000 x 1.5 + 10
        ("1000.25", "1050.25", "tier 3"),  # 1000.25 x 1 + 50: cheaper than 1000 units
    ],
)
def test_volume(quantity: str, amount: str, tier: str) -> None:
    price = price_charge(charge(**VOLUME), D(quantity))
    assert price.amount == D(amount)
    assert [row.description for row in price.breakdown] == [tier]
    assert price.breakdown[0].quantity == D(quantity)  # the tier prices every unit


# --- package --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "rounding", "packages", "amount"),
    [
        ("0", "up", 0, "0"),
        ("50", "up", 0, "0"),  # all free
        ("51", "up", 1, "7.5"),  # 1 billable unit starts a package
        ("51", "down", 0, "0"),  # ... which rounding down drops
        ("250", "up", 2, "15"),  # 200 billable: exactly 2 packages either way
        ("250", "down", 2, "15"),
        ("250.5", "up", 3, "22.5"),  # 200.5 billable: a fractional unit opens a third package
        ("250.5", "down", 2, "15"),
    ],
)
def test_package(quantity: str, rounding: str, packages: int, amount: str) -> None:
    package = charge(
        model="package", package_size="100", package_price="7.5", package_rounding=rounding, free_units="50"
    )
    price = price_charge(package, D(quantity))
    assert price.amount == D(amount)
    assert price.breakdown[-1].quantity == packages
    assert price.breakdown[-1].unit_price == D("7.5")


# --- percentage -----------------------------------------------------------------------------------------------


def test_percentage_every_rule_at_once() -> None:
    # 2.5 %, fixed fee 0.30 per charged event, 2 free events, free amount 150, each event's fee within [1, 5]
    percentage = charge(
        model="percentage",
        rate="2.5",
        fixed_fee_per_event="0.30",
        free_events=2,
        free_amount="150",
        min_per_event="1",
        max_per_event="5",
    )
    events = [D(100), D(100), D(20), D(1000), D(0)]
    price = price_charge(percentage, D(1220), events)
    # event 1, 100: free (free amount left 50, free events left 1)
    # event 2, 100: straddles the free amount: 50 charged -> 1.25 + 0.30 = 1.55; the free window ends
    # event 3, 20: 0.50 + 0.30 = 0.80 -> raised to 1 (+0.20)
    # event 4, 1000: 25 + 0.30 = 25.30 -> capped at 5 (-20.30)
    # event 5, 0: 0 + 0.30 -> raised to 1 (+0.70)
    # total 1.55 + 1 + 5 + 1 = 8.55
    assert price.amount == D("8.55")
    assert (price.event_count, price.free_event_count, price.billable_quantity) == (5, 1, D(1070))
    assert rows(price) == [
        ("1 free events, free amount 150", D(150), D(0)),
        ("2.5% of 1070", D(1070), D("26.75")),
        ("fixed fee on 4 events", D(4), D("1.20")),
        ("raised to the minimum per event on 2 events", D(2), D("0.90")),
        ("capped at the maximum per event on 1 events", D(1), D("-20.30")),
    ]


def test_percentage_free_events_only() -> None:
    # 10 %, fixed 1: the first two events are free whatever their size; the third costs 3 + 1
    price = price_charge(
        charge(model="percentage", rate="10", fixed_fee_per_event="1", free_events=2), D(60), [D(10), D(20), D(30)]
    )
    assert price.amount == D(4)
    assert price.free_event_count == 2


def test_percentage_free_amount_only() -> None:
    # 10 % with 25 free: 10 free (15 left), 20 straddles (5 charged: 0.5), 30 charged (3) -> 3.5
    price = price_charge(charge(model="percentage", rate="10", free_amount="25"), D(60), [D(10), D(20), D(30)])
    assert price.amount == D("3.5")
    assert price.free_event_count == 1


def test_percentage_free_events_run_out_before_the_free_amount() -> None:
    # 1 free event, 1000 free amount: the first event is free, the free window closes with it, 20 x 10 % = 2
    price = price_charge(
        charge(model="percentage", rate="10", free_events=1, free_amount="1000"), D(30), [D(10), D(20)]
    )
    assert price.amount == D(2)


def test_percentage_free_amount_used_up_exactly_stops_free_events() -> None:
    # 5 free events but 30 free: 10 and 20 use the amount up exactly; the third event (5) is charged 0.5
    price = price_charge(
        charge(model="percentage", rate="10", free_events=5, free_amount="30"), D(35), [D(10), D(20), D(5)]
    )
    assert price.amount == D("0.5")
    assert price.free_event_count == 2


def test_percentage_on_a_summed_amount_without_events() -> None:
    # 2.5 % of (1220 - 150 free): 1070 x 0.025 = 26.75; no fixed fee or per-event bounds without events
    percentage = charge(
        model="percentage", rate="2.5", fixed_fee_per_event="0.30", free_amount="150", min_per_event="1"
    )
    price = price_charge(percentage, D(1220))
    assert price.amount == D("26.75")
    assert rows(price) == [("free amount", D(150), D(0)), ("2.5% of 1070", D(1070), D("26.75"))]
    assert price.event_count == 0


def test_percentage_of_nothing_is_nothing() -> None:
    assert price_charge(charge(model="percentage", rate="2.5", min_per_event="1"), D(0), []).amount == 0


# --- flat -----------------------------------------------------------------------------------------------------


def test_flat_is_due_whatever_the_usage() -> None:
    flat = charge(model="flat", flat_amount="499")
    assert price_charge(flat, D(0)).amount == D(499)
    assert price_charge(flat, D("123456.789")).amount == D(499)


# --- input ----------------------------------------------------------------------------------------------------


def test_negative_quantity_or_event_is_refused() -> None:
    per_unit = charge(model="per_unit", unit_price="1")
    with pytest.raises(InvalidArgument) as caught:
        price_charge(per_unit, D(-1))
    assert caught.value.field == "quantity"
    with pytest.raises(InvalidArgument) as caught:
        price_charge(charge(model="percentage", rate="1"), D(1), [D(2), D(-1)])
    assert caught.value.field == "event_amounts[1]"


def test_no_rounding_inside_pricing() -> None:
    # 0.333333333333333333 x 3 keeps every digit: 0.999999999999999999, not 1
    price = price_charge(charge(model="per_unit", unit_price="0.333333333333333333"), D(3))
    assert price.amount == D("0.999999999999999999")


# --- lines ----------------------------------------------------------------------------------------------------


def test_minimum_spend_line_tops_up_to_the_rounded_minimum() -> None:
    # usage 170.1825 -> 170.18 INR; minimum 500 -> +329.82
    per_unit = charge(model="per_unit", unit_price="0.015", free_units="1000", minimum_amount="500")
    lines = line_amounts(price_charge(per_unit, D("12345.5")), per_unit, "INR")
    assert lines == LineAmounts(usage_minor=17018, minimum_spend_minor=32982, maximum_cap_minor=0)
    assert lines.total_minor == 50000


def test_maximum_cap_line_takes_off_the_excess() -> None:
    # usage 123.456 -> 123.46 INR; maximum 100 -> -23.46
    per_unit = charge(model="per_unit", unit_price="1", maximum_amount="100")
    lines = line_amounts(price_charge(per_unit, D("123.456")), per_unit, "INR")
    assert lines == LineAmounts(usage_minor=12346, minimum_spend_minor=0, maximum_cap_minor=-2346)
    assert lines.total_minor == 10000


def test_between_minimum_and_maximum_there_is_only_usage() -> None:
    per_unit = charge(model="per_unit", unit_price="1", minimum_amount="10", maximum_amount="100")
    assert line_amounts(price_charge(per_unit, D(50)), per_unit, "INR") == LineAmounts(5000, 0, 0)


@pytest.mark.parametrize(("currency", "minor"), [("JPY", 1235), ("INR", 123457), ("KWD", 1234568)])
def test_line_rounds_to_the_currency_exponent(currency: str, minor: int) -> None:
    # 1234.5675: JPY 1235 (0 places), INR 1234.57 (2), KWD 1234.568 (3), each half up
    per_unit = charge(model="per_unit", unit_price="1234.5675")
    assert line_amounts(price_charge(per_unit, D(1)), per_unit, currency).usage_minor == minor


def test_conversion_happens_before_rounding() -> None:
    # 10.005 USD at 83.1234 INR/USD = 831.649617 INR -> 83165 paise (rounding to 10.01 USD first would give 83207)
    # minimum 20 USD = 1662.468 INR -> 166247; minimum spend 166247 - 83165 = 83082
    per_unit = charge(model="per_unit", unit_price="10.005", minimum_amount="20")
    lines = line_amounts(price_charge(per_unit, D(1)), per_unit, "INR", D("83.1234"))
    assert lines == LineAmounts(usage_minor=83165, minimum_spend_minor=83082, maximum_cap_minor=0)


def test_rate_must_be_positive() -> None:
    per_unit = charge(model="per_unit", unit_price="1")
    with pytest.raises(InvalidArgument):
        line_amounts(price_charge(per_unit, D(1)), per_unit, "INR", D(0))


# --- quote ----------------------------------------------------------------------------------------------------


def test_quote() -> None:
    # graduated 1000.5 units = 15.25; minimum 20 -> usage 15.250 KWD + 4.750 minimum spend
    graduated = charge(**GRADUATED, minimum_amount="20")
    quote = quote_charge(graduated, D("1000.5"), [], "KWD")
    assert quote.price.amount == D("15.25")
    assert quote.lines == LineAmounts(usage_minor=15250, minimum_spend_minor=4750, maximum_cap_minor=0)
    assert quote.total_minor == 20000
    assert quote.currency == "KWD"


@pytest.mark.parametrize("currency", ["XYZ", "inr", "", "XAU"])
def test_quote_refuses_unknown_currency(currency: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        quote_charge(charge(model="flat", flat_amount="1"), D(0), [], currency)
    assert caught.value.field == "currency"
    assert "unknown currency" in caught.value.message


def test_a_quote_past_the_amount_bound_is_refused_naming_the_input() -> None:
    with pytest.raises(InvalidArgument) as caught:
        quote_charge(charge(model="per_unit", unit_price="1000000"), D("9" * 17), [], "INR")
    assert caught.value.field == "quantity"
    assert "999999999999999999 minor units" in caught.value.message
    assert quote_charge(charge(model="per_unit", unit_price="1"), D("9" * 15), [], "INR").total_minor == 10**17 - 100
