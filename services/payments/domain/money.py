"""Amounts the provider will accept: integer minor units of an ISO 4217 currency, above its minimum.

Razorpay takes amounts in the currency's smallest unit, refuses an order below its minimum (INR 1.00, that is
100 paise), and for three-decimal currencies (KWD, BHD, OMR) wants the last digit 0.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from billing_runtime.errors import InvalidArgument

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# ISO 4217 minor-unit exponents that are not 2, for the currencies Razorpay settles.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3}
# The largest amount one order may carry: well beyond any invoice we issue, and inside int64.
MAX_AMOUNT_MINOR = 10**15


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def minimum_amount(currency: str) -> int:
    """The smallest order the provider accepts, in minor units: one whole unit (INR 1.00 = 100 paise)."""
    return 10 ** exponent(currency)


def check_currency(currency: str, field: str = "currency") -> str:
    if not _CURRENCY.fullmatch(currency or ""):
        raise InvalidArgument("must be a three-letter ISO 4217 code such as INR", field=field)
    return currency


def check_amount(amount_minor: int, field: str = "amount_minor") -> int:
    if amount_minor <= 0:
        raise InvalidArgument("must be a positive amount in minor units", field=field)
    if amount_minor > MAX_AMOUNT_MINOR:
        raise InvalidArgument(f"must be at most {MAX_AMOUNT_MINOR} minor units", field=field)
    return amount_minor


class Collectable(NamedTuple):
    """Whether an invoice's total can be collected online, and why not."""

    online: bool
    reason: str = ""


def collectable(total_minor: int, currency: str) -> Collectable:
    """Zero totals need no payment; totals below the provider's minimum (or not a multiple of 10 for a
    three-decimal currency) can only be paid offline."""
    if total_minor == 0:
        return Collectable(False, "nothing to pay: the invoice total is zero")
    minimum = minimum_amount(currency)
    if total_minor < minimum:
        return Collectable(False, f"below the provider's minimum of {minimum} minor units of {currency}")
    if exponent(currency) == 3 and total_minor % 10:
        return Collectable(False, f"{currency} amounts must end in 0 for the provider")
    return Collectable(True)
