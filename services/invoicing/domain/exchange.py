"""Exchange rates: which row of the admins' rate table converts a plan's prices into the invoice currency.

A rate says 1 ``base_currency`` = ``rate`` ``quote_currency`` from ``effective_at`` on; the row in force at an
instant is the latest one effective at or before it. No row is an error naming the pair, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain import currencies
from services.invoicing.domain.invoice import ExchangeRate

MAX_RATE_DECIMAL_PLACES = 12
MAX_RATE = Decimal(10) ** 12  # more than any real pair (1 BTC-like unit aside, which is not ISO 4217)
MAX_SOURCE_LENGTH = 200


def select_rate(rates: Sequence[ExchangeRate], base: str, quote: str, at: datetime) -> ExchangeRate | None:
    """The rate from ``base`` to ``quote`` in force at ``at``: the latest effective at or before it, or None."""
    candidates = [r for r in rates if r.base_currency == base and r.quote_currency == quote and r.effective_at <= at]
    return max(candidates, key=lambda r: r.effective_at, default=None)


def require_rate(rates: Sequence[ExchangeRate], base: str, quote: str, at: datetime) -> ExchangeRate:
    """As :func:`select_rate`, but FailedPrecondition naming the pair and the instant when there is none."""
    found = select_rate(rates, base, quote, at)
    if found is None:
        raise FailedPrecondition(
            f"no exchange rate from {base} to {quote} effective at {at.isoformat()}; add one with "
            f"base_currency {base}, quote_currency {quote} and effective_at at or before {at.isoformat()} "
            "(POST /api/v1/admin/exchange-rates, or billing rates add)"
        )
    return found


def validate_rate(
    *, base_currency: str, quote_currency: str, rate: Decimal, source: str, effective_at: datetime
) -> ExchangeRate:
    """A rate row an admin supplies, normalised (upper-case codes, trimmed source) and checked.

    InvalidArgument naming the field for: a currency that is not invoiceable ISO 4217, the same currency on both
    sides, a rate that is not a positive Decimal below 10^12 with at most 12 decimal places (trailing zeros do not
    count), an empty or overlong source, a naive ``effective_at``."""
    base = base_currency.strip().upper()
    quote = quote_currency.strip().upper()
    for field, code in (("base_currency", base), ("quote_currency", quote)):
        if not currencies.is_invoiceable(code):
            raise InvalidArgument(f"{code!r} is not an ISO 4217 currency one can invoice in", field=field)
    if base == quote:
        raise InvalidArgument(f"is {quote}, the same as base_currency; a rate converts between two currencies",
                              field="quote_currency")
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise InvalidArgument("must be a finite decimal such as \"83.25\"", field="rate")
    if rate <= 0:
        raise InvalidArgument(f"is {rate}; it must be positive", field="rate")
    if rate >= MAX_RATE:
        raise InvalidArgument(f"is {rate}; it must be less than 10^12", field="rate")
    normalized = rate.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_RATE_DECIMAL_PLACES:
        raise InvalidArgument(f"is {rate}; at most {MAX_RATE_DECIMAL_PLACES} decimal places", field="rate")
    text = source.strip()
    if not text:
        raise InvalidArgument("is required (where the rate comes from, e.g. \"RBI reference rate\")", field="source")
    if len(text) > MAX_SOURCE_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_SOURCE_LENGTH} characters", field="source")
    if effective_at.tzinfo is None or effective_at.utcoffset() is None:
        raise InvalidArgument("must carry a time zone (an aware datetime)", field="effective_at")
    return ExchangeRate(base_currency=base, quote_currency=quote, rate=rate, source=text, effective_at=effective_at)
