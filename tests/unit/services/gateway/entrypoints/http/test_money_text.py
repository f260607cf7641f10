"""Decimal text <-> minor units: exact both ways, on digits, for currencies of 0, 2 and 3 decimals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.entrypoints.http.money_text import MAX_MINOR, minor_to_text, text_to_minor


@given(minor=st.integers(min_value=0, max_value=MAX_MINOR), currency=st.sampled_from(["INR", "JPY", "KWD", "USD"]))
def test_text_of_an_amount_reads_back_as_the_same_minor_units(minor, currency):
    assert text_to_minor(minor_to_text(minor, currency), currency) == minor


@given(whole=st.integers(min_value=0, max_value=10**12), fraction=st.integers(min_value=0, max_value=99))
def test_fewer_decimals_than_the_currency_has_are_padded_not_scaled(whole, fraction):
    assert text_to_minor(f"{whole}.{fraction}", "KWD") == whole * 1000 + fraction * (100 if fraction < 10 else 10)


@pytest.mark.parametrize(("text", "currency", "says"), [
    ("10.005", "INR", "3 decimals but INR has 2"), ("10.0", "JPY", "JPY has no minor units"),
    ("1.0000", "KWD", "4 decimals but KWD has 3"), ("", "INR", "decimal amount"), (".5", "INR", "decimal amount"),
    ("1.", "INR", "decimal amount"), ("+1", "INR", "decimal amount"), ("1_000", "INR", "decimal amount"),
    ("١٠٠", "INR", "decimal amount"),  # Arabic-Indic digits: int() would read them, a payment must not
    ("92233720368547758.08", "INR", "too large"), ("1", "ABC", "send amount_minor instead"),
])
def test_what_is_not_an_exact_amount_is_refused(text, currency, says):
    with pytest.raises(ValueError, match=says):
        text_to_minor(text, currency)
