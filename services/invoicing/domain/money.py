"""Money: exact decimals in, integer minor units out.

Amounts stay full-precision ``Decimal`` until an invoice line; each line is rounded once, half-up, to its
currency's minor units. Arithmetic before that runs in :data:`EXACT`, a context that raises instead of rounding,
so a silent loss of precision is a bug that shows rather than a cent that moves.
"""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.currencies import minor_units

# Inputs are bounded (below), so products and sums of them fit in far fewer digits than this; any operation that
# would still need rounding (a division that does not terminate) raises Inexact.
EXACT = Context(prec=200, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])

MAX_DECIMAL_PLACES = 18
# Strictly below 10**18 in absolute value: more than any real price or monthly quantity, and small enough that
# no product of inputs comes near EXACT's precision.
MAX_INTEGER_DIGITS = 18
_MAX_TEXT_LENGTH = 64
# The largest amount in minor units an invoice, a line, a tax line or a quote may carry: 18 digits, so every amount
# (and a subtotal plus its tax) fits the protobuf int64 fields and PostgreSQL bigint with room to spare. Usage can
# price beyond it (events are bounded one by one, their sum is not): such an invoice is refused, never truncated.
MAX_AMOUNT_MINOR = 10**18 - 1
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,4})?$")


def parse_decimal(value: Any, field: str) -> Decimal:
    """A client-supplied number as an exact ``Decimal``.

    Accepts ``str`` ("12.50", "1e3"), ``int`` and ``Decimal``. Refuses floats (they are not exact), booleans,
    NaN and infinities, more than 18 decimal places and magnitudes of 10**18 or more, each as
    ``InvalidArgument`` naming ``field``."""
    if isinstance(value, bool):
        raise InvalidArgument('must be a decimal number (a string such as "12.50"), not a boolean', field=field)
    if isinstance(value, float):
        raise InvalidArgument('must be a decimal string such as "12.50", not a binary float', field=field)
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT_LENGTH or not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidArgument(f'must be a decimal number such as "12.50", got {value[:40]!r}', field=field)
        number = Decimal(text)
    else:
        raise InvalidArgument(
            f'must be a decimal number as a string such as "12.50", got {type(value).__name__}', field=field
        )
    if not number.is_finite():
        raise InvalidArgument("must be a finite number, not NaN or infinity", field=field)
    if number and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidArgument(f"must be less than 10^{MAX_INTEGER_DIGITS} in absolute value", field=field)
    # Trailing zeros do not count as places: "1.50000000000000000000" is 1.5. Stripped digit by digit rather
    # than with normalize(), which would round a Decimal of more digits than any context holds.
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if exponent < -MAX_DECIMAL_PLACES:
        kept = len(digits)
        while kept and exponent < -MAX_DECIMAL_PLACES and digits[kept - 1] == 0:
            kept -= 1
            exponent += 1
        if exponent < -MAX_DECIMAL_PLACES and kept:
            raise InvalidArgument(f"must have at most {MAX_DECIMAL_PLACES} decimal places", field=field)
        number = Decimal((sign, digits[:kept], exponent)) if kept else Decimal(0)
    return number


def decimal_text(value: Decimal) -> str:
    """A ``Decimal`` as plain text without exponent ("1E+3" -> "1000"), for JSON and display."""
    text = f"{value:f}"
    return "0" if text in ("-0", "+0") else text


def round_minor(amount: Decimal, currency: str) -> int:
    """``amount`` rounded half-up to ``currency``'s minor units, as an integer count of them.

    INR Decimal("12.345") -> 1235; JPY Decimal("12.5") -> 13; KWD Decimal("1.2345") -> 1235; and symmetric
    for negative amounts (-12.345 INR -> -1235)."""
    if not amount.is_finite():
        raise ValueError(f"cannot round {amount} to minor units")
    units = minor_units(currency)
    with localcontext(EXACT) as context:
        context.traps[Inexact] = False  # the one place where rounding is the point
        scaled = amount.scaleb(units)
        return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def beyond_bound(minor: int) -> bool:
    """Whether an amount in minor units is past what an invoice can carry (|minor| > MAX_AMOUNT_MINOR)."""
    return abs(minor) > MAX_AMOUNT_MINOR


def minor_to_decimal(minor: int, currency: str) -> Decimal:
    """Integer minor units back to a ``Decimal`` in major units (1234 INR -> Decimal("12.34"))."""
    with localcontext(EXACT):
        return Decimal(minor).scaleb(-minor_units(currency))


def format_amount(minor: int, currency: str) -> str:
    """Minor units as a plain amount with the currency's digits: INR 123450 -> "1234.50", JPY 1234 -> "1234",
    KWD 1234 -> "1.234", INR -5 -> "-0.05"."""
    units = minor_units(currency)
    return f"{minor_to_decimal(minor, currency):.{units}f}"
