"""A client's charge definition: what is accepted, what is refused (and where), and the JSON round trip."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.charge_rules import charge_to_dict, validate_charge
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel, PackageRounding, Tier

OPEN = {"up_to": None, "unit_price": "0.25"}


def test_graduated_is_typed() -> None:
    charge = validate_charge({
        "model": "graduated",
        "tiers": [{"up_to": "1000", "flat_fee": "10"}, {"up_to": 5000, "unit_price": "0.5"}, OPEN],
        "free_units": "100",
        "minimum_amount": "50",
    })  # fmt: skip
    assert charge == ChargeDefinition(
        model=ChargeModel.GRADUATED,
        tiers=(
            Tier(up_to=Decimal(1000), unit_price=Decimal(0), flat_fee=Decimal(10)),
            Tier(up_to=Decimal(5000), unit_price=Decimal("0.5"), flat_fee=Decimal(0)),
            Tier(up_to=None, unit_price=Decimal("0.25"), flat_fee=Decimal(0)),
        ),
        free_units=Decimal(100),
        minimum_amount=Decimal(50),
    )


def test_percentage_is_typed() -> None:
    charge = validate_charge({
        "model": "percentage", "rate": "2.5", "fixed_fee_per_event": "0.30", "free_events": "3",
        "free_amount": "1000", "min_per_event": "1", "max_per_event": None,
    })  # fmt: skip
    assert charge == ChargeDefinition(
        model=ChargeModel.PERCENTAGE, rate=Decimal("2.5"), fixed_fee_per_event=Decimal("0.30"), free_events=3,
        free_amount=Decimal(1000), min_per_event=Decimal(1), max_per_event=None,
    )  # fmt: skip


def test_package_defaults_to_rounding_up() -> None:
    charge = validate_charge({"model": "package", "package_size": "100", "package_price": "7.5"})
    assert charge.package_rounding is PackageRounding.UP
    down = validate_charge(
        {"model": "package", "package_size": "100", "package_price": "7.5", "package_rounding": "down"}
    )
    assert down.package_rounding is PackageRounding.DOWN


def test_rate_of_exactly_100_and_equal_min_max_are_fine() -> None:
    charge = validate_charge({"model": "percentage", "rate": "100", "min_per_event": "2", "max_per_event": "2"})
    assert charge.rate == 100


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ("per_unit", "charge", "must be an object"),
        ({}, "charge.model", "is required"),
        ({"model": "tiered"}, "charge.model", "unknown charge model 'tiered'"),
        ({"model": "per_unit", "unit_price": "1", "colour": "red"}, "charge.colour", "unknown field"),
        ({"model": "per_unit", "unit_price": "1", "tiers": [OPEN]}, "charge.tiers", "not used by the per_unit"),
        ({"model": "flat", "flat_amount": "1", "free_units": "5"}, "charge.free_units", "not used by the flat"),
        ({"model": "percentage", "rate": "1", "free_units": "5"}, "charge.free_units", "not used by the percentage"),
        ({"model": "graduated", "tiers": [OPEN], "rate": "1"}, "charge.rate", "not used by the graduated"),
        ({"model": "per_unit"}, "charge.unit_price", "is required"),
        ({"model": "per_unit", "unit_price": None}, "charge.unit_price", "is required"),
        ({"model": "package", "package_size": "10"}, "charge.package_price", "is required"),
        ({"model": "flat"}, "charge.flat_amount", "is required"),
        ({"model": "percentage"}, "charge.rate", "is required"),
        ({"model": "graduated"}, "charge.tiers", "is required"),
        ({"model": "per_unit", "unit_price": "-0.01"}, "charge.unit_price", "must not be negative"),
        ({"model": "per_unit", "unit_price": 0.5}, "charge.unit_price", "float"),
        ({"model": "flat", "flat_amount": "-1"}, "charge.flat_amount", "must not be negative"),
        ({"model": "per_unit", "unit_price": "1", "free_units": "-1"}, "charge.free_units", "must not be negative"),
        ({"model": "per_unit", "unit_price": "1", "minimum_amount": "-5"}, "charge.minimum_amount", "negative"),
        (
            {"model": "per_unit", "unit_price": "1", "minimum_amount": "10", "maximum_amount": "9.99"},
            "charge.minimum_amount",
            "must not exceed maximum_amount (9.99)",
        ),
        ({"model": "percentage", "rate": "100.01"}, "charge.rate", "at most 100"),
        ({"model": "percentage", "rate": "-1"}, "charge.rate", "must not be negative"),
        ({"model": "percentage", "rate": "1", "fixed_fee_per_event": "-0.3"}, "charge.fixed_fee_per_event", "negative"),
        ({"model": "percentage", "rate": "1", "free_events": -1}, "charge.free_events", "between 0"),
        ({"model": "percentage", "rate": "1", "free_events": "2.5"}, "charge.free_events", "whole number"),
        ({"model": "percentage", "rate": "1", "free_events": True}, "charge.free_events", "whole number"),
        ({"model": "percentage", "rate": "1", "free_amount": "-1"}, "charge.free_amount", "negative"),
        (
            {"model": "percentage", "rate": "1", "min_per_event": "5", "max_per_event": "4"},
            "charge.min_per_event",
            "must not exceed max_per_event",
        ),
        ({"model": "package", "package_size": "0", "package_price": "1"}, "charge.package_size", "above 0"),
        ({"model": "package", "package_size": "-5", "package_price": "1"}, "charge.package_size", "negative"),
        ({"model": "package", "package_size": "5", "package_price": "-1"}, "charge.package_price", "negative"),
        (
            {"model": "package", "package_size": "5", "package_price": "1", "package_rounding": "nearest"},
            "charge.package_rounding",
            "'up' or 'down'",
        ),
        # tiers
        ({"model": "graduated", "tiers": []}, "charge.tiers", "at least one tier"),
        ({"model": "volume", "tiers": "0-100"}, "charge.tiers", "must be a list"),
        ({"model": "volume", "tiers": [OPEN] * 101}, "charge.tiers", "at most 100"),
        ({"model": "graduated", "tiers": ["x"]}, "charge.tiers[0]", "must be an object"),
        (
            {"model": "graduated", "tiers": [{"up_to": "10", "price": "1"}, OPEN]},
            "charge.tiers[0].price",
            "unknown field",
        ),
        (
            {"model": "graduated", "tiers": [{"up_to": "100"}, {"up_to": "50"}, OPEN]},
            "charge.tiers[1].up_to",
            "ascending order without overlap: up_to 50 is not above the previous tier's up_to 100",
        ),
        (
            {"model": "volume", "tiers": [{"up_to": "100"}, {"up_to": "100"}, OPEN]},
            "charge.tiers[1].up_to",
            "ascending order without overlap",
        ),
        ({"model": "graduated", "tiers": [{"up_to": "0"}, OPEN]}, "charge.tiers[0].up_to", "above 0"),
        ({"model": "graduated", "tiers": [{"up_to": "-5"}, OPEN]}, "charge.tiers[0].up_to", "above 0"),
        ({"model": "graduated", "tiers": [OPEN, {"up_to": "100"}]}, "charge.tiers[1]", "after the open-ended tier"),
        ({"model": "volume", "tiers": [OPEN, OPEN]}, "charge.tiers[1]", "after the open-ended tier"),
        (
            {"model": "graduated", "tiers": [{"up_to": "100"}, {"up_to": "200"}]},
            "charge.tiers[1].up_to",
            "last tier must be open-ended",
        ),
        (
            {"model": "graduated", "tiers": [{"up_to": "100", "unit_price": "-1"}, OPEN]},
            "charge.tiers[0].unit_price",
            "must not be negative",
        ),
        (
            {"model": "graduated", "tiers": [{"up_to": "100"}, {"up_to": None, "flat_fee": "-1"}]},
            "charge.tiers[1].flat_fee",
            "must not be negative",
        ),
        ({"model": "volume", "tiers": [{"up_to": 1.5}, OPEN]}, "charge.tiers[0].up_to", "float"),
    ],
)
def test_refused(raw: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_charge(raw)
    assert caught.value.field == field
    assert message in caught.value.message


def test_the_path_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_charge({"model": "graduated", "tiers": [{"up_to": "9"}, {"up_to": "3"}, OPEN]}, "charges[1].charge")
    assert caught.value.field == "charges[1].charge.tiers[1].up_to"


@pytest.mark.parametrize(
    "raw",
    [
        {"model": "per_unit", "unit_price": "0.015", "free_units": "1000", "minimum_amount": "500",
         "maximum_amount": None},
        {"model": "graduated", "tiers": [{"up_to": "1000", "unit_price": "0", "flat_fee": "10"},
                                         {"up_to": None, "unit_price": "0.25", "flat_fee": "0"}],
         "free_units": "0", "minimum_amount": None, "maximum_amount": "9999.99"},
        {"model": "volume", "tiers": [{"up_to": "100", "unit_price": "2", "flat_fee": "5"},
                                      {"up_to": None, "unit_price": "1", "flat_fee": "50"}],
         "free_units": "0", "minimum_amount": None, "maximum_amount": None},
        {"model": "package", "package_size": "100", "package_price": "7.5", "package_rounding": "down",
         "free_units": "50", "minimum_amount": None, "maximum_amount": None},
        {"model": "percentage", "rate": "2.5", "fixed_fee_per_event": "0.30", "free_events": 3,
         "free_amount": "150", "min_per_event": "1", "max_per_event": "5", "minimum_amount": None,
         "maximum_amount": None},
        {"model": "flat", "flat_amount": "499", "minimum_amount": None, "maximum_amount": None},
    ],
)  # fmt: skip
def test_charge_to_dict_is_what_the_client_sent(raw: dict[str, Any]) -> None:
    charge = validate_charge(raw)
    assert charge_to_dict(charge) == raw
    assert validate_charge(charge_to_dict(charge)) == charge


def test_charge_to_dict_writes_no_exponents() -> None:
    charge = validate_charge({"model": "per_unit", "unit_price": "1e3"})
    assert charge_to_dict(charge)["unit_price"] == "1000"
