"""ISO 4217 currencies and their minor units, from the iso4217 package."""

from __future__ import annotations

import iso4217

# Codes that are not money one can invoice in: funds codes, precious metals, testing and "no currency".
_NOT_INVOICEABLE = {
    "XAU", "XAG", "XPD", "XPT",  # precious metals
    "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA",  # bond-market units and supranational units of account
    "BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW",  # funds codes
    "XTS", "XXX",  # testing, no currency
}  # fmt: skip


def is_invoiceable(code: str) -> bool:
    """True for an active ISO 4217 currency one can bill in ("INR", "USD", "JPY", "KWD" ...)."""
    if code in _NOT_INVOICEABLE:
        return False
    try:
        currency = iso4217.Currency(code)
    except ValueError:
        return False
    return currency.exponent is not None


def minor_units(code: str) -> int:
    """Digits after the decimal point: INR 2, JPY 0, KWD 3."""
    exponent = iso4217.Currency(code).exponent
    if exponent is None:
        raise ValueError(f"{code} has no minor units")
    return exponent
