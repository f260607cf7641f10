from __future__ import annotations

import pytest

from billing_runtime.errors import InvalidArgument
from services.payments.domain.money import check_amount, check_currency, collectable


def test_zero_is_settled_without_an_order():
    assert collectable(0, "INR") == (False, "nothing to pay: the invoice total is zero")


def test_below_the_minimum_is_payable_offline_only():
    assert not collectable(99, "INR").online and "minimum of 100" in collectable(99, "INR").reason
    assert collectable(100, "INR").online


def test_three_decimal_currencies_end_in_zero_and_zero_decimal_ones_have_a_minimum_of_one():
    assert not collectable(12345, "KWD").online and collectable(12340, "KWD").online
    assert collectable(1, "JPY").online


@pytest.mark.parametrize("value", ["", "inr", "RUPEE", "IN"])
def test_currency_codes(value):
    with pytest.raises(InvalidArgument):
        check_currency(value)


@pytest.mark.parametrize("value", [0, -5, 10**16])
def test_amounts(value):
    with pytest.raises(InvalidArgument):
        check_amount(value)
