"""Invariants of pricing over generated charges and quantities (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.charge_rules import charge_to_dict, validate_charge
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel
from services.invoicing.domain.currencies import minor_units
from services.invoicing.domain.pricing import line_amounts, price_charge


def amounts(max_value: int = 10_000, places: int = 4, min_value: int = 0) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=min_value, max_value=max_value, places=places, allow_nan=False, allow_infinity=False)


quantities = amounts(max_value=10**9, places=6)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    gaps = draw(st.lists(amounts(max_value=10**6, places=3, min_value=0).filter(lambda gap: gap > 0), max_size=5))
    tiers, up_to = [], Decimal(0)
    for gap in gaps:
        up_to += gap
        tiers.append(
            {"up_to": str(up_to), "unit_price": str(draw(amounts(places=6))), "flat_fee": str(draw(amounts()))}
        )
    tiers.append({"up_to": None, "unit_price": str(draw(amounts(places=6))), "flat_fee": str(draw(amounts()))})
    return tiers


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy.map(str))


@st.composite
def charges(draw: st.DrawFn, model: ChargeModel | None = None) -> ChargeDefinition:
    model = model or draw(st.sampled_from(ChargeModel))
    raw: dict[str, Any] = {"model": model.value}
    if model is not ChargeModel.FLAT and model is not ChargeModel.PERCENTAGE:
        raw["free_units"] = str(draw(amounts(max_value=1000, places=2)))
    if model is ChargeModel.PER_UNIT:
        raw["unit_price"] = str(draw(amounts(places=8)))
    elif model in (ChargeModel.GRADUATED, ChargeModel.VOLUME):
        raw["tiers"] = draw(tier_lists())
    elif model is ChargeModel.PACKAGE:
        raw["package_size"] = str(draw(amounts(max_value=10_000, places=2).filter(lambda size: size > 0)))
        raw["package_price"] = str(draw(amounts()))
        raw["package_rounding"] = draw(st.sampled_from(["up", "down"]))
    elif model is ChargeModel.PERCENTAGE:
        raw["rate"] = str(draw(amounts(max_value=100, places=4)))
        raw["fixed_fee_per_event"] = str(draw(amounts(max_value=10)))
        raw["free_events"] = draw(st.integers(min_value=0, max_value=5))
        raw["free_amount"] = str(draw(amounts(max_value=500, places=2)))
        low, high = sorted([draw(amounts(max_value=50)), draw(amounts(max_value=50))])
        raw["min_per_event"] = draw(st.sampled_from([None, str(low)]))
        raw["max_per_event"] = draw(st.sampled_from([None, str(high)]))
    else:
        raw["flat_amount"] = str(draw(amounts()))
    low, high = sorted([draw(amounts(max_value=10**6)), draw(amounts(max_value=10**6))])
    raw["minimum_amount"] = draw(st.sampled_from([None, str(low)]))
    raw["maximum_amount"] = draw(st.sampled_from([None, str(high)]))
    return validate_charge(raw)


event_lists = st.lists(amounts(max_value=1000, places=2), max_size=12)


@given(charges(ChargeModel.GRADUATED), quantities, quantities)
def test_graduated_never_decreases_with_quantity(charge: ChargeDefinition, a: Decimal, b: Decimal) -> None:
    low, high = sorted([a, b])
    assert price_charge(charge, low).amount <= price_charge(charge, high).amount


@st.composite
def graduated_at_a_boundary(draw: st.DrawFn) -> tuple[ChargeDefinition, Decimal]:
    """A graduated charge and a quantity exactly at one of its tiers' up_to (after free units), or just above."""
    charge = draw(charges(ChargeModel.GRADUATED))
    bounds = [tier.up_to for tier in charge.tiers if tier.up_to is not None] or [Decimal(0)]
    nudge = draw(st.sampled_from([Decimal(0), Decimal("0.001")]))
    return charge, charge.free_units + draw(st.sampled_from(bounds)) + nudge


@given(st.one_of(st.tuples(charges(ChargeModel.GRADUATED), quantities), graduated_at_a_boundary()))
def test_graduated_is_each_tier_on_its_own_units(case: tuple[ChargeDefinition, Decimal]) -> None:
    charge, quantity = case
    # Reference in Fraction arithmetic: a tier prices its overlap with (free_units, quantity]; its flat fee is
    # due when usage passes the tier's lower bound (always for the first tier).
    billable = max(Fraction(quantity) - Fraction(charge.free_units), Fraction(0))
    expected, lower = Fraction(0), Fraction(0)
    for index, tier in enumerate(charge.tiers):
        upper = billable if tier.up_to is None else Fraction(tier.up_to)
        expected += max(min(billable, upper) - lower, Fraction(0)) * Fraction(tier.unit_price)
        if index == 0 or billable > lower:
            expected += Fraction(tier.flat_fee)
        lower = upper
    assert Fraction(price_charge(charge, quantity).amount) == expected


@given(charges(ChargeModel.VOLUME), quantities)
def test_volume_is_the_containing_tier_on_every_unit(charge: ChargeDefinition, quantity: Decimal) -> None:
    billable = max(quantity - charge.free_units, Decimal(0))
    tier = next(t for t in charge.tiers if t.up_to is None or billable <= t.up_to)
    expected = Fraction(billable) * Fraction(tier.unit_price) + Fraction(tier.flat_fee)
    assert Fraction(price_charge(charge, quantity).amount) == expected


@given(charges(ChargeModel.PER_UNIT), quantities)
def test_per_unit_is_exact(charge: ChargeDefinition, quantity: Decimal) -> None:
    billable = max(Fraction(quantity) - Fraction(charge.free_units), Fraction(0))
    assert Fraction(price_charge(charge, quantity).amount) == billable * Fraction(charge.unit_price)


@given(charges(ChargeModel.PACKAGE), quantities)
def test_package_counts_whole_packages(charge: ChargeDefinition, quantity: Decimal) -> None:
    billable = max(Fraction(quantity) - Fraction(charge.free_units), Fraction(0))
    packages = billable / Fraction(charge.package_size)
    whole = -(-packages.numerator // packages.denominator) if charge.package_rounding == "up" else int(packages)
    assert Fraction(price_charge(charge, quantity).amount) == whole * Fraction(charge.package_price)


@given(charges(ChargeModel.PERCENTAGE), event_lists)
def test_percentage_per_event_fees_stay_within_bounds(charge: ChargeDefinition, events: list[Decimal]) -> None:
    price = price_charge(charge, sum(events, Decimal(0)), events)
    charged = price.event_count - price.free_event_count
    assert price.amount >= 0
    if charge.min_per_event is not None:
        assert price.amount >= charged * charge.min_per_event
    if charge.max_per_event is not None:
        assert price.amount <= charged * charge.max_per_event
    unbounded = sum(events, Decimal(0)) * charge.rate / 100 + charged * charge.fixed_fee_per_event
    if charge.min_per_event is None:
        assert price.amount <= unbounded  # free parts only ever take off
    assert price.billable_quantity <= sum(events, Decimal(0))


@given(charges(), quantities, event_lists)
def test_breakdown_adds_up_to_the_amount(charge: ChargeDefinition, quantity: Decimal, events: list[Decimal]) -> None:
    price = price_charge(charge, quantity, events)
    assert sum((row.amount for row in price.breakdown), Decimal(0)) == price.amount
    assert price.amount >= 0


@given(charges())
def test_charge_to_dict_round_trips(charge: ChargeDefinition) -> None:
    assert validate_charge(charge_to_dict(charge)) == charge


def half_up(value: Fraction) -> int:
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


@given(
    charges(), quantities, event_lists, st.sampled_from(["JPY", "INR", "KWD"]),
    st.decimals(min_value=Decimal("0.0001"), max_value=1000, places=6, allow_nan=False, allow_infinity=False),
)  # fmt: skip
def test_rounding_happens_once_at_the_line(
    charge: ChargeDefinition, quantity: Decimal, events: list[Decimal], currency: str, rate: Decimal
) -> None:
    price = price_charge(charge, quantity, events)
    lines = line_amounts(price, charge, currency, rate)
    scale = 10 ** minor_units(currency)
    usage = half_up(Fraction(price.amount) * Fraction(rate) * scale)
    assert lines.usage_minor == usage
    if charge.minimum_amount is not None:
        minimum = half_up(Fraction(charge.minimum_amount) * Fraction(rate) * scale)
        assert lines.minimum_spend_minor == max(minimum - usage, 0)
        assert lines.total_minor >= minimum
    else:
        assert lines.minimum_spend_minor == 0
    if charge.maximum_amount is not None:
        maximum = half_up(Fraction(charge.maximum_amount) * Fraction(rate) * scale)
        assert lines.maximum_cap_minor == min(maximum - usage, 0)
        assert lines.total_minor <= maximum
    else:
        assert lines.maximum_cap_minor == 0
