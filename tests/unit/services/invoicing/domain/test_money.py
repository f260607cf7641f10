"""Exact decimals from client input, and the one half-up rounding to minor units."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.money import (
    decimal_text,
    format_amount,
    minor_to_decimal,
    parse_decimal,
    round_minor,
)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.345", "INR", 1235),  # third decimal 5 rounds half up
        ("12.344999", "INR", 1234),
        ("-12.345", "INR", -1235),  # half away from zero, symmetric
        ("12.5", "JPY", 13),  # JPY has no minor units
        ("12.4999", "JPY", 12),
        ("1.2345", "KWD", 1235),  # KWD has three
        ("1.2344", "KWD", 1234),
        ("0", "USD", 0),
        ("0.005", "USD", 1),
        ("999999999999999999.995", "INR", 100000000000000000000),  # no precision lost on large amounts
    ],
)
def test_round_minor(amount: str, currency: str, minor: int) -> None:
    assert round_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(123450, "INR", "1234.50"), (1234, "JPY", "1234"), (1234, "KWD", "1.234"), (-5, "INR", "-0.05"),
     (0, "INR", "0.00"), (7, "KWD", "0.007")],
)  # fmt: skip
def test_format_amount(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text


def test_minor_to_decimal() -> None:
    assert minor_to_decimal(1234, "INR") == Decimal("12.34")
    assert minor_to_decimal(1234, "KWD") == Decimal("1.234")
    assert minor_to_decimal(1234, "JPY") == Decimal(1234)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.50", Decimal("12.50")), (" 7 ", Decimal(7)), (5, Decimal(5)), (Decimal("0.1"), Decimal("0.1")),
     ("1e3", Decimal(1000)), ("-3.25", Decimal("-3.25")), ("0.000000000000000001", Decimal("1e-18")),
     ("1.500000000000000000000000", Decimal("1.5")),  # trailing zeros are not decimal places
     ("999999999999999999.999999999999999999", Decimal("999999999999999999.999999999999999999"))],
)  # fmt: skip
def test_parse_decimal_accepts(value: object, expected: Decimal) -> None:
    assert parse_decimal(value, "price") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [(1.5, "float"), (True, "boolean"), (None, "NoneType"), ([], "list"), ("NaN", "decimal number"),
     ("Infinity", "decimal number"), (Decimal("NaN"), "finite"), (Decimal("-Infinity"), "finite"),
     ("1_000", "decimal number"), ("", "decimal number"), ("12,50", "decimal number"), ("0x10", "decimal number"),
     ("0.0000000000000000001", "18 decimal places"), ("1000000000000000000", "10^18"), ("-1e18", "10^18"),
     (10**18, "10^18"), ("1e9999", "10^18"), ("1e99999", "decimal number"), ("1e-9999", "18 decimal places")],
)  # fmt: skip
def test_parse_decimal_refuses(value: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_decimal(value, "charges[0].charge.unit_price")
    assert caught.value.field == "charges[0].charge.unit_price"
    assert message in caught.value.message


def test_parse_decimal_handles_more_digits_than_a_context_holds() -> None:
    # A JSON number parsed straight to Decimal can carry any number of digits; none of this may raise Inexact.
    assert parse_decimal(Decimal("1." + "0" * 400), "price") == 1
    with pytest.raises(InvalidArgument):
        parse_decimal(Decimal("0." + "1" * 400), "price")
    with pytest.raises(InvalidArgument):
        parse_decimal(Decimal("1E-1000000"), "price")


def test_decimal_text_has_no_exponent() -> None:
    assert decimal_text(Decimal("1E+3")) == "1000"
    assert decimal_text(Decimal("1E-7")) == "0.0000001"
    assert decimal_text(Decimal("-0")) == "0"


@given(
    st.decimals(min_value=-(10**15), max_value=10**15, places=6, allow_nan=False, allow_infinity=False),
    st.sampled_from([("JPY", 0), ("INR", 2), ("KWD", 3)]),
)
def test_round_minor_is_half_up_away_from_zero(amount: Decimal, currency_units: tuple[str, int]) -> None:
    currency, units = currency_units
    scaled = abs(Fraction(amount)) * 10**units
    magnitude = int(scaled + Fraction(1, 2))  # floor(x + 1/2): half up for x >= 0
    assert round_minor(amount, currency) == (magnitude if amount >= 0 else -magnitude)
