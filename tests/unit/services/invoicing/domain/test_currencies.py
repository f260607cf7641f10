"""ISO 4217 currencies one can invoice in, and their minor units."""

from __future__ import annotations

import pytest

from services.invoicing.domain.currencies import is_invoiceable, minor_units


@pytest.mark.parametrize("code", ["INR", "USD", "JPY", "KWD", "EUR", "GBP"])
def test_invoiceable(code: str) -> None:
    assert is_invoiceable(code) is True


@pytest.mark.parametrize(
    "code",
    [
        "XAU",  # gold
        "XAG",  # silver
        "XPT",  # platinum
        "XDR",  # special drawing rights
        "XXX",  # no currency
        "XTS",  # testing
        "inr",
        "usd",
        "Usd",
        "ABC",
        "",
        "US",
        "USDX",
        " USD",
    ],
)
def test_not_invoiceable(code: str) -> None:
    assert is_invoiceable(code) is False


def test_funds_codes_are_not_invoiceable() -> None:
    # The module excludes "funds codes" by design; these are the ISO 4217 fund codes (e.g. USN: US dollar
    # next day, BOV: Bolivian Mvdol, CLF: Chilean Unidad de Fomento).
    funds = ["BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"]
    assert [code for code in funds if is_invoiceable(code)] == []


@pytest.mark.parametrize(("code", "digits"), [("INR", 2), ("JPY", 0), ("KWD", 3), ("USD", 2), ("BHD", 3)])
def test_minor_units(code: str, digits: int) -> None:
    assert minor_units(code) == digits


@pytest.mark.parametrize("code", ["XAU", "XXX"])
def test_minor_units_of_a_code_without_them(code: str) -> None:
    with pytest.raises(ValueError, match=f"{code} has no minor units"):
        minor_units(code)


def test_minor_units_of_an_unknown_code() -> None:
    with pytest.raises(ValueError):
        minor_units("ABC")
