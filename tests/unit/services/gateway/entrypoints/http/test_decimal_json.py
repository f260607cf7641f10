"""Decimals in request bodies: JSON numbers read exactly, written as plain text; floats never."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.entrypoints.http.decimal_json import MAX_EXPONENT, decimal_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.10", "0.10"),  # strings pass through untouched: the service validates them and names the field
        ("abc", "abc"),
        (1500, "1500"),
        (Decimal("0.1"), "0.1"),
        (Decimal("1E+3"), "1000"),  # 1e3 in JSON
        (Decimal("2.5E-7"), "0.00000025"),
        (Decimal("-0"), "0"),
        (Decimal("100.50"), "100.50"),  # trailing zeros kept, as written
    ],
)
def test_numbers_become_plain_decimal_text(value, text):
    assert decimal_text(value) == text


@pytest.mark.parametrize("value", [0.1, True, False, None, Decimal("NaN"), Decimal("Infinity"),
                                   Decimal("-Infinity"), Decimal(f"1E+{MAX_EXPONENT + 1}"), [1], {"a": 1}])
def test_floats_booleans_non_finite_and_other_types_are_refused(value):
    with pytest.raises(ValueError):
        decimal_text(value)


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e30"), max_value=Decimal("1e30"),
                   places=12))
def test_a_json_number_read_with_parse_float_decimal_keeps_its_exact_value(number):
    # What DecimalJsonRequest does: the text of the number, never a binary float in between.
    parsed = json.loads(f'{{"n": {number}}}', parse_float=Decimal)
    assert Decimal(decimal_text(parsed["n"])) == number
