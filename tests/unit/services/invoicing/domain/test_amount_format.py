"""Digit grouping of invoice amounts (lakhs and crores for INR), unit prices and quantities."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.amount_format import (
    format_minor_grouped,
    format_quantity,
    format_unit_price,
    group_digits,
)
from services.invoicing.domain.money import format_amount

INDIAN = re.compile(r"^-?(\d{1,3}|\d{1,2}(,\d{2})*,\d{3})(\.\d+)?$")
INTERNATIONAL = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$")


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (123456750, "INR", "12,34,567.50"),  # 12 lakh 34 thousand 567 rupees 50 paise
        (123456750, "USD", "1,234,567.50"),
        (12345678900, "INR", "12,34,56,789.00"),  # 12 crore
        (99999, "INR", "999.99"),
        (100000, "INR", "1,000.00"),
        (5, "INR", "0.05"),
        (-5, "INR", "-0.05"),
        (-12345678, "INR", "-1,23,456.78"),
        (1234, "JPY", "1,234"),
        (1234567, "KWD", "1,234.567"),
        (0, "KWD", "0.000"),
    ],
)
def test_amounts_are_grouped_as_their_currency_writes_them(minor: int, currency: str, expected: str) -> None:
    assert format_minor_grouped(minor, currency) == expected


def test_group_digits() -> None:
    assert group_digits("1234567") == "1,234,567"
    assert group_digits("1234567", indian=True) == "12,34,567"
    assert group_digits("123") == "123"
    assert group_digits("1234", indian=True) == "1,234"


@pytest.mark.parametrize("minor", [1.5, True, Decimal(1)])
def test_minor_units_must_be_an_int(minor) -> None:
    with pytest.raises(TypeError):
        format_minor_grouped(minor, "INR")


@given(st.integers(min_value=-(10**20), max_value=10**20), st.sampled_from(["INR", "USD", "JPY", "KWD"]))
def test_grouping_only_adds_commas_to_the_plain_amount(minor: int, currency: str) -> None:
    text = format_minor_grouped(minor, currency)
    assert text.replace(",", "") == format_amount(minor, currency)
    assert (INDIAN if currency == "INR" else INTERNATIONAL).fullmatch(text), text


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("1.5", "INR", "1.50"),  # at least the currency's two digits
        ("0.0004", "INR", "0.0004"),  # more where the price has them
        ("0.00038000", "INR", "0.00038"),
        ("100", "JPY", "100"),
        ("0.06", "JPY", "0.06"),
        ("15.25", "KWD", "15.250"),
        ("83.123456789", "INR", "83.12345679"),  # at most 8 decimals, half-up
        ("1234567.5", "INR", "12,34,567.50"),
        ("1234567.5", "USD", "1,234,567.50"),
        ("1E+3", "USD", "1,000.00"),
    ],
)
def test_unit_prices_keep_their_precision(value: str, currency: str, expected: str) -> None:
    assert format_unit_price(Decimal(value), currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("1234567", "INR", "12,34,567"),
        ("1234567", "USD", "1,234,567"),
        ("2.50", "", "2.5"),
        ("1E+3", "", "1,000"),
        ("0", "", "0"),
        ("0.000000001", "", "0"),
    ],
)
def test_quantities_drop_trailing_zeros(value: str, currency: str, expected: str) -> None:
    assert format_quantity(Decimal(value), currency) == expected


def test_prices_must_be_decimals() -> None:
    with pytest.raises(TypeError):
        format_unit_price(0.1, "INR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_quantity(3, "INR")  # type: ignore[arg-type]
