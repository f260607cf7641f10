"""Integer minor units written as the decimal amount they stand for, next to the integer in REST answers:
``{"total_minor": 118000, "total": "1180.00"}``. Exact integer arithmetic on text; no float anywhere."""

from __future__ import annotations

import iso4217


def minor_units(currency: str) -> int | None:
    """Digits after the decimal point of an ISO 4217 currency (INR 2, JPY 0, KWD 3); None if it has none."""
    try:
        return iso4217.Currency(currency).exponent
    except ValueError:
        return None


def minor_to_text(minor: int, currency: str) -> str | None:
    """``118000`` INR -> ``"1180.00"``, ``-5`` INR -> ``"-0.05"``, ``1234`` JPY -> ``"1234"``, ``1234`` KWD ->
    ``"1.234"``; None when the currency has no minor units the gateway knows (the integer is still exact)."""
    places = minor_units(currency)
    if places is None:
        return None
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(places + 1, "0")
    if not places:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}"
