"""Invoice totals in words: Indian numbering for INR, international for others, minor units by exponent."""

from __future__ import annotations

import pytest

from services.invoicing.domain.amount_in_words import amount_in_words


@pytest.mark.parametrize(
    ("minor", "currency", "words"),
    [
        # 12,34,567.50 INR
        (123456750, "INR", "Rupees Twelve Lakh Thirty-Four Thousand Five Hundred and Sixty-Seven and Fifty Paise Only"),
        # 1,23,45,67,890.01 INR
        (12345678901, "INR",
         "Rupees Twelve Crore Thirty-Four Lakh Fifty-Six Thousand Seven Hundred and Eighty-Nine and One Paise Only"),
        (100, "INR", "Rupees One Only"),
        (0, "INR", "Rupees Zero Only"),
        (1050, "USD", "Ten US Dollars and Fifty Cents Only"),
        (101, "USD", "One US Dollar and One Cent Only"),
        (123456700, "USD",
         "One Million Two Hundred and Thirty-Four Thousand Five Hundred and Sixty-Seven US Dollars Only"),
        (-500, "USD", "Minus Five US Dollars Only"),
        (1234, "JPY", "One Thousand Two Hundred and Thirty-Four Japanese Yen Only"),  # no minor unit
        (1005, "KWD", "One Kuwaiti Dinar and Five Fils Only"),  # 1.005 KWD: three-digit fils
        (12345, "KWD", "Twelve Kuwaiti Dinars and Three Hundred and Forty-Five Fils Only"),
        (199, "CHF", "One Swiss Franc (CHF) and 99/100 Only"),  # no table entry: the ISO name and a fraction
    ],
)
def test_words(minor: int, currency: str, words: str) -> None:
    assert amount_in_words(minor, currency) == words
