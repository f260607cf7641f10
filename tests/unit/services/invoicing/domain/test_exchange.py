"""Exchange rates: the row in force at an instant, a clear error when none, and validation of new rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.exchange import require_rate, select_rate, validate_rate
from services.invoicing.domain.invoice import ExchangeRate


def rate(base: str, quote: str, value: str, day: int) -> ExchangeRate:
    return ExchangeRate(base, quote, Decimal(value), "RBI", datetime(2026, 11, day, tzinfo=UTC))


RATES = [rate("USD", "INR", "83.10", 1), rate("USD", "INR", "83.40", 15), rate("USD", "INR", "84.00", 25),
         rate("INR", "USD", "0.012", 20), rate("USD", "JPY", "150", 1)]


def test_latest_at_or_before() -> None:
    assert select_rate(RATES, "USD", "INR", datetime(2026, 11, 20, tzinfo=UTC)) == RATES[1]
    assert select_rate(RATES, "USD", "INR", datetime(2026, 11, 15, tzinfo=UTC)) == RATES[1]  # effective exactly then
    assert select_rate(RATES, "USD", "INR", datetime(2026, 11, 14, 23, tzinfo=UTC)) == RATES[0]
    assert select_rate(RATES, "USD", "INR", datetime(2026, 10, 31, tzinfo=UTC)) is None
    assert select_rate(RATES, "USD", "KWD", datetime(2026, 12, 1, tzinfo=UTC)) is None


def test_missing_rate_names_the_pair() -> None:
    at = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    with pytest.raises(FailedPrecondition) as error:
        require_rate(RATES, "USD", "INR", at)
    assert str(error.value).startswith("no exchange rate from USD to INR effective at 2026-10-31T18:30:00+00:00; add")
    assert require_rate(RATES, "USD", "JPY", datetime(2026, 11, 1, tzinfo=UTC)) == RATES[4]


def test_validate_normalises() -> None:
    row = validate_rate(base_currency=" usd", quote_currency="inr ", rate=Decimal("83.250000000000000"),
                        source=" RBI reference ", effective_at=datetime(2026, 11, 1, tzinfo=UTC))
    assert row == ExchangeRate("USD", "INR", Decimal("83.250000000000000"), "RBI reference",
                               datetime(2026, 11, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"base_currency": "XAU"}, "base_currency", "not an ISO 4217"),
        ({"quote_currency": "ABC"}, "quote_currency", "not an ISO 4217"),
        ({"quote_currency": "USD"}, "quote_currency", "same as base_currency"),
        ({"rate": Decimal(0)}, "rate", "positive"),
        ({"rate": Decimal("-83")}, "rate", "positive"),
        ({"rate": Decimal("0.0000000000001")}, "rate", "at most 12 decimal places"),
        ({"rate": Decimal("NaN")}, "rate", "finite"),
        ({"rate": 83.25}, "rate", "finite decimal"),
        ({"rate": Decimal(10) ** 12}, "rate", r"less than 10\^12"),
        ({"source": "  "}, "source", "required"),
        ({"effective_at": datetime(2026, 11, 1)}, "effective_at", "aware"),
    ],
)
def test_validate_refuses(changes: dict, field: str, message: str) -> None:
    arguments = {"base_currency": "USD", "quote_currency": "INR", "rate": Decimal("83.25"), "source": "RBI",
                 "effective_at": datetime(2026, 11, 1, tzinfo=UTC)} | changes
    with pytest.raises(InvalidArgument, match=message) as error:
        validate_rate(**arguments)
    assert error.value.field == field


def test_twelve_places_is_fine() -> None:
    assert validate_rate(base_currency="INR", quote_currency="USD", rate=Decimal("0.011976047904"), source="RBI",
                         effective_at=datetime(2026, 11, 1, tzinfo=UTC)).rate == Decimal("0.011976047904")
