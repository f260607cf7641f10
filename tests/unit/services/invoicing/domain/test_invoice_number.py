"""Invoice numbers: Indian financial year, padding, and the 16-character limit."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.invoice_number import (
    financial_year,
    format_invoice_number,
    is_valid_invoice_number,
    validate_series,
)


def test_financial_year_boundary() -> None:
    assert financial_year(date(2027, 3, 31)) == "2627"
    assert financial_year(date(2027, 4, 1)) == "2728"
    assert financial_year(date(2026, 4, 1)) == "2627"
    assert financial_year(date(2026, 3, 31)) == "2526"
    assert financial_year(date(2099, 4, 1)) == "9900"  # the century wraps, as printed
    assert financial_year(date(2000, 1, 1)) == "9900"


def test_format() -> None:
    assert format_invoice_number("INV", "2627", 1) == "INV/2627/00001"
    assert format_invoice_number("INV", "2627", 99999) == "INV/2627/99999"
    assert format_invoice_number("INV", "2627", 100000) == "INV/2627/100000"  # 15 characters
    assert format_invoice_number("INV", "2627", 1000000) == "INV/2627/1000000"  # 16: still allowed
    assert format_invoice_number("AB-12", "2627", 99999) == "AB-12/2627/99999"


def test_too_long_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition, match="INV/2627/10000000 would be 17 characters"):
        format_invoice_number("INV", "2627", 10_000_000)
    with pytest.raises(FailedPrecondition, match="17 characters"):
        format_invoice_number("AB-12", "2627", 100000)


@pytest.mark.parametrize("series", ["", "INVOIC", "IN V", "INV/", "ÄB", "IN_V"])
def test_bad_series(series: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_series(series)
    assert error.value.field == "invoice_series"


def test_bad_sequence_and_year() -> None:
    with pytest.raises(InvalidArgument, match="start at 1"):
        format_invoice_number("INV", "2627", 0)
    with pytest.raises(InvalidArgument, match="four digits"):
        format_invoice_number("INV", "26-27", 1)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2098, 12, 31)), st.integers(1, 999_999))
def test_numbers_are_valid_and_ordered_by_sequence(day: date, sequence: int) -> None:
    number = format_invoice_number("INV", financial_year(day), sequence)
    assert is_valid_invoice_number(number) and len(number) <= 16
    assert int(number.rsplit("/", 1)[1]) == sequence


@pytest.mark.parametrize("series", ["0INV", "-A", "0", "-"])
def test_series_starts_as_the_irp_requires(series):
    from services.invoicing.domain.invoice_number import validate_series

    with pytest.raises(InvalidArgument, match="starting with a letter or a digit 1-9"):
        validate_series(series)


@pytest.mark.parametrize(
    "number,valid",
    [
        ("INV/2627/00001", True),
        ("1/2627/1", True),
        ("0INV/1", False),
        ("-1", False),
        ("/A", False),
        ("A" * 16, True),
        ("A" * 17, False),
    ],
)
def test_invoice_numbers_follow_the_irp_pattern(number, valid):
    from services.invoicing.domain.invoice_number import is_valid_invoice_number

    assert is_valid_invoice_number(number) is valid
