"""Invoice amounts (ISO 4217 minor units) as Stripe's API takes them, and back: exact or refused, never rounded."""

from __future__ import annotations

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain.stripe_money import (
    THREE_DECIMAL,
    ZERO_DECIMAL,
    NotConvertible,
    collectable,
    from_stripe,
    stripe_exponent,
    to_stripe,
)


@pytest.mark.parametrize(("currency", "ours", "stripes"), [
    ("INR", 11800, 11800),   # 118.00 INR: paise on both sides
    ("USD", 1099, 1099),
    ("JPY", 500, 500),       # zero-decimal on both sides: 500 yen is 500
    ("KRW", 15000, 15000),
    ("KWD", 12340, 12340),   # three-decimal on both sides, last digit 0
    ("TND", 5000, 5000),
    ("ISK", 500, 50000),     # zero-decimal in ISO, two-decimal at Stripe: 500 kronur is 50000
    ("MGA", 100000, 1000),   # two-decimal in ISO, zero-decimal at Stripe: 1,000.00 ariary is 1000
    ("IQD", 250000, 25000),  # three-decimal in ISO, two-decimal at Stripe
    ("HUF", 17500, 17500),
])
def test_amounts_convert_exactly_both_ways(currency, ours, stripes):
    assert to_stripe(ours, currency) == stripes
    assert from_stripe(stripes, currency) == ours
    assert to_stripe(ours, currency.lower()) == stripes  # Stripe writes currencies in lower case


@pytest.mark.parametrize(("currency", "ours", "why"), [
    ("KWD", 12345, "ending in 0"),   # Stripe wants the last fils digit 0
    ("BHD", 1001, "ending in 0"),
    ("MGA", 100050, "fraction"),     # half an ariary cannot be charged
    ("IQD", 250005, "fraction"),
])
def test_amounts_stripe_cannot_represent_are_refused_not_rounded(currency, ours, why):
    with pytest.raises(NotConvertible, match=why):
        to_stripe(ours, currency)
    assert not collectable(ours, currency).online and why in collectable(ours, currency).reason


def test_a_stripe_amount_no_iso_amount_maps_to_is_refused():
    with pytest.raises(NotConvertible):
        from_stripe(50001, "ISK")  # fractional kronur: Stripe no longer accepts them either


def test_collectable_through_stripe():
    assert collectable(0, "USD") == (False, "nothing to pay: the invoice total is zero")
    assert collectable(1, "JPY").online and collectable(50, "INR").online  # Stripe's minimum is Stripe's to say
    assert not collectable(100, "XYZ").online


def test_the_lists_are_stripes():
    assert stripe_exponent("jpy") == 0 and stripe_exponent("KWD") == 3 and stripe_exponent("ISK") == 2
    assert len(ZERO_DECIMAL) == 16 and THREE_DECIMAL == {"BHD", "JOD", "KWD", "OMR", "TND"}


@given(st.sampled_from(["INR", "USD", "JPY", "KWD", "ISK", "MGA", "EUR", "TND", "UGX"]),
       st.integers(min_value=1, max_value=10**12))
def test_whatever_converts_comes_back_unchanged(currency, amount):
    try:
        sent = to_stripe(amount, currency)
    except NotConvertible:
        exponent = iso4217.Currency(currency).exponent
        assert currency in ("KWD", "TND", "MGA") and (amount % 10 or exponent == 2)
        return
    assert from_stripe(sent, currency) == amount
