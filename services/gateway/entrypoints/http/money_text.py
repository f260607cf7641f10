"""Integer minor units written as the decimal amount they stand for, next to the integer in REST answers:
``{"total_minor": 118000, "total": "1180.00"}``, and decimal amounts a client sends turned back into minor
units. Exact integer arithmetic on text; no float anywhere."""

from __future__ import annotations

import re

import iso4217


def minor_units(currency: str) -> int | None:
    """Digits after the decimal point of an ISO 4217 currency (INR 2, JPY 0, KWD 3); None if it has none."""
    try:
        return iso4217.Currency(currency).exponent
    except ValueError:
        return None


def amount_fields(minor: int, currency: str, name: str = "amount") -> dict[str, int | str | None]:
    """A REST model's pair of fields for one amount: ``{"amount_minor": 118000, "amount": "1180.00"}``."""
    return {f"{name}_minor": minor, name: minor_to_text(minor, currency)}


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


# Plain decimal text only: no sign, no exponent, no grouping. "1e3" or "1,000.00" in a payment is a typo more
# often than a notation, and an amount of money is never negative here. ASCII digits only: \d would take
# "١٠٠" (Arabic-Indic), which int() reads as 100.
_AMOUNT = re.compile(r"^([0-9]+)(?:\.([0-9]+))?$")
# The largest amount a protobuf int64 field can carry.
MAX_MINOR = 2**63 - 1


def text_to_minor(text: str, currency: str) -> int:
    """``"1000.50"`` INR -> ``100050``, ``"1000"`` JPY -> ``1000``, ``"1.234"`` KWD -> ``1234``: exact, on digits.

    Raises ``ValueError`` (with a message for the client) for anything else: more decimals than the currency
    has (``"10.005"`` INR is not an amount of rupees and paise, and rounding it would move money nobody asked
    for), a currency without known minor units, a sign, an exponent, or an amount past int64."""
    places = minor_units(currency)
    if places is None:
        raise ValueError(f"cannot be converted: {currency!r} is not an ISO 4217 currency the gateway knows "
                         "(send amount_minor instead)")
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"must be a decimal amount such as {minor_to_text(1000 * 10**places, currency)!r}")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > places:
        raise ValueError(f"has {len(fraction)} decimals but {currency} has {places}" if places
                         else f"must be a whole number: {currency} has no minor units")
    minor = int(whole + fraction.ljust(places, "0"))
    if minor > MAX_MINOR:
        raise ValueError("is too large")
    return minor
