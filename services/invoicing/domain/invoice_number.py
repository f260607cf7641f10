"""Invoice numbers: ``<series>/<FY>/<sequence>``, e.g. ``INV/2627/00001``.

FY is the Indian financial year (1 April to 31 March) written with two digits of each year: 2026-27 is "2627".
GST rules allow at most 16 characters of letters, digits, ``-`` and ``/``; the sequence is zero-padded to 5
digits and simply grows past 99999 while the whole still fits.
"""

from __future__ import annotations

import re
from datetime import date

from billing_runtime.errors import FailedPrecondition, InvalidArgument

MAX_LENGTH = 16
SEQUENCE_DIGITS = 5
# Series, two slashes, four FY digits and five sequence digits must fit in 16 characters.
MAX_SERIES_LENGTH = MAX_LENGTH - 2 - 4 - SEQUENCE_DIGITS
# What the IRP accepts as a document number: a letter or a digit 1-9 first (never 0, '-' or '/'), then letters,
# digits, '/' and '-'. A series starts every number, so it starts the same way.
_SERIES = re.compile(r"^[A-Za-z1-9][A-Za-z0-9-]*$")
_NUMBER = re.compile(r"^[A-Za-z1-9][A-Za-z0-9/-]{0,15}$")


def financial_year(day: date) -> str:
    """The Indian financial year ``day`` falls in: 2026-04-01 .. 2027-03-31 -> "2627"; 2026-03-31 -> "2526"."""
    first_year = day.year if day.month >= 4 else day.year - 1
    return f"{first_year % 100:02d}{(first_year + 1) % 100:02d}"


def validate_series(series: str) -> str:
    """``series`` if it is 1..5 letters, digits or ``-``, the first a letter or a digit 1-9 (the IRP's pattern, and
    a full number fits 16 characters); else InvalidArgument naming ``invoice_series``."""
    if not series or len(series) > MAX_SERIES_LENGTH or not _SERIES.fullmatch(series):
        raise InvalidArgument(
            f"is {series!r}; expected 1 to {MAX_SERIES_LENGTH} letters, digits or '-', starting with a letter or a "
            f"digit 1-9 (e.g. INV), so that "
            f"'<series>/<FY>/<5-digit sequence>' fits {MAX_LENGTH} characters",
            field="invoice_series",
        )
    return series


def format_invoice_number(series: str, fy: str, sequence: int) -> str:
    """``INV/2627/00001`` for ("INV", "2627", 1). FailedPrecondition when the number would exceed 16 characters
    (the series has run out of numbers for this financial year)."""
    validate_series(series)
    if not re.fullmatch(r"\d{4}", fy):
        raise InvalidArgument(f"is {fy!r}; expected four digits such as 2627", field="financial_year")
    if sequence < 1:
        raise InvalidArgument(f"is {sequence}; invoice sequences start at 1", field="sequence")
    number = f"{series}/{fy}/{sequence:0{SEQUENCE_DIGITS}d}"
    if len(number) > MAX_LENGTH:
        raise FailedPrecondition(
            f"invoice number {number} would be {len(number)} characters; GST allows at most {MAX_LENGTH}. "
            f"Series {series!r} has used up its numbers for financial year {fy}; configure a shorter series"
        )
    return number


def is_valid_invoice_number(number: str) -> bool:
    """True for what the IRP accepts: 1..16 letters, digits, ``-`` and ``/``, the first a letter or a digit 1-9."""
    return bool(_NUMBER.fullmatch(number))
