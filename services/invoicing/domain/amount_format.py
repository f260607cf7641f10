"""How numbers are written on an invoice: digit grouping, unit prices and quantities. Text only, no arithmetic
on money (amounts arrive already rounded, as ``int`` minor units, or as full-precision ``Decimal`` to display).

Indian invoices group digits in lakhs and crores (``12,34,567.50``): the last three digits, then pairs. Every
other currency groups in thousands (``1,234,567.50``).
"""

from __future__ import annotations

from decimal import Decimal

from services.invoicing.domain.currencies import minor_units
from services.invoicing.domain.money import format_amount

# Unit prices and tier amounts are kept at full precision; this many decimals is enough to print any price the
# catalog accepts (a per-token price of 0.000002) without writing a long tail of a converted rate.
MAX_DISPLAY_DECIMALS = 8


def uses_indian_grouping(currency: str) -> bool:
    """True where amounts are grouped in lakhs and crores (INR)."""
    return currency == "INR"


def group_digits(digits: str, *, indian: bool = False) -> str:
    """Commas between groups of a string of digits: ``1234567`` -> ``1,234,567`` or, Indian, ``12,34,567``."""
    if len(digits) <= 3:
        return digits
    head, last_three = digits[:-3], digits[-3:]
    size = 2 if indian else 3
    groups = []
    while head:
        groups.append(head[-size:])
        head = head[:-size]
    return ",".join(reversed(groups)) + "," + last_three


def _group_text(text: str, *, indian: bool) -> str:
    """A plain number ("-1234567.50") with its integer part grouped ("-1,234,567.50")."""
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    integer, dot, fraction = digits.partition(".")
    return sign + group_digits(integer, indian=indian) + dot + fraction


def _grouped(value: Decimal, places: int, *, indian: bool) -> str:
    """``value`` (already carrying at most ``places`` decimals) with ``places`` decimals and grouped digits."""
    return _group_text(f"{value:.{places}f}", indian=indian)


def format_minor_grouped(minor: int, currency: str) -> str:
    """An amount in minor units in major units, grouped as its currency's invoices are: INR 123456750 ->
    ``12,34,567.50``, USD 123456750 -> ``1,234,567.50``, JPY 1234 -> ``1,234``, KWD 1234567 -> ``1,234.567``."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor must be an int of minor units, got {type(minor).__name__}")
    return _group_text(format_amount(minor, currency), indian=uses_indian_grouping(currency))


def format_unit_price(value: Decimal, currency: str) -> str:
    """A full-precision price: at least the currency's minor digits, more only where the price has them (at most
    ``MAX_DISPLAY_DECIMALS``, rounded half-up beyond). INR 1.5 -> ``1.50``; INR 0.0004 -> ``0.0004``."""
    if not isinstance(value, Decimal):
        raise TypeError(f"value must be a Decimal, got {type(value).__name__}")
    places = minor_units(currency)
    rounded = value.quantize(Decimal(1).scaleb(-MAX_DISPLAY_DECIMALS), rounding="ROUND_HALF_UP").normalize()
    exponent = rounded.as_tuple().exponent
    decimals = max(places, -exponent if isinstance(exponent, int) else 0)
    return _grouped(rounded, decimals, indian=uses_indian_grouping(currency))


def format_quantity(value: Decimal, currency: str = "") -> str:
    """A quantity without trailing zeros, grouped like the invoice's amounts: ``1234567`` -> ``12,34,567`` on an
    INR invoice; ``2.50`` -> ``2.5``."""
    if not isinstance(value, Decimal):
        raise TypeError(f"value must be a Decimal, got {type(value).__name__}")
    rounded = value.quantize(Decimal(1).scaleb(-MAX_DISPLAY_DECIMALS), rounding="ROUND_HALF_UP").normalize()
    exponent = rounded.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return _grouped(rounded, decimals, indian=uses_indian_grouping(currency))
