"""Validation and normalisation of an organisation's billing details."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.organisation import MAX_NAME_LENGTH, OrganisationDetails, validate_details

VALID_IN: dict[str, Any] = {
    "name": "Acme Analytics",
    "billing_email": "billing@acme.example",
    "billing_currency": "INR",
    "country": "IN",
    "state_code": "27",
    "gstin": "27AAPFU0939F1ZV",
    "timezone": "Asia/Kolkata",
}
VALID_US: dict[str, Any] = {
    "name": "Acme Inc",
    "billing_email": "ap@acme.example",
    "billing_currency": "USD",
    "country": "US",
}


def _invalid(field: str, **overrides: Any) -> InvalidArgument:
    base = VALID_US if overrides.pop("_us", False) else VALID_IN
    with pytest.raises(InvalidArgument) as raised:
        validate_details(**{**base, **overrides})
    assert raised.value.field == field
    return raised.value


class TestNormalisation:
    def test_valid_indian_organisation(self) -> None:
        assert validate_details(**VALID_IN) == OrganisationDetails(
            name="Acme Analytics",
            billing_email="billing@acme.example",
            billing_currency="INR",
            country="IN",
            state_code="27",
            gstin="27AAPFU0939F1ZV",
            timezone="Asia/Kolkata",
        )

    def test_trims_and_upper_cases_codes(self) -> None:
        details = validate_details(
            name="  Acme Analytics \t",
            billing_email="  Billing@Acme.example ",
            billing_currency=" inr ",
            country=" in ",
            state_code=" 29 ",
            gstin=" 29abcde1234f1zw ",
            timezone=" Asia/Kolkata ",
        )
        assert details == OrganisationDetails(
            name="Acme Analytics",
            billing_email="Billing@Acme.example",  # trimmed, case kept
            billing_currency="INR",
            country="IN",
            state_code="29",
            gstin="29ABCDE1234F1ZW",
            timezone="Asia/Kolkata",
        )

    def test_timezone_defaults_to_utc(self) -> None:
        assert validate_details(**VALID_US).timezone == "UTC"
        assert validate_details(**VALID_US, timezone="   ").timezone == "UTC"

    def test_optional_fields_default_empty(self) -> None:
        details = validate_details(**VALID_US)
        assert details.state_code == ""
        assert details.gstin == ""

    def test_indian_organisation_without_gstin(self) -> None:
        assert validate_details(**{**VALID_IN, "gstin": ""}).gstin == ""

    def test_name_at_maximum_length(self) -> None:
        assert validate_details(**{**VALID_US, "name": "n" * MAX_NAME_LENGTH}).name == "n" * 200

    def test_subdivision_state_code_outside_india(self) -> None:
        details = validate_details(**VALID_US, state_code="ca")
        assert (details.country, details.state_code) == ("US", "CA")

    def test_subdivision_state_code_in_germany(self) -> None:
        assert validate_details(**{**VALID_US, "country": "DE", "state_code": "BY"}).state_code == "BY"


class TestInvalid:
    @pytest.mark.parametrize("name", ["", "   ", "\t\n"])
    def test_name_missing(self, name: str) -> None:
        assert _invalid("name", name=name).message == "is required"

    def test_name_too_long(self) -> None:
        error = _invalid("name", name="n" * (MAX_NAME_LENGTH + 1))
        assert error.message == "must be at most 200 characters"

    def test_email_missing(self) -> None:
        assert _invalid("billing_email", billing_email="  ").message == "is required"

    @pytest.mark.parametrize(
        "email",
        [
            "billing",
            "billing@acme",
            "@acme.example",
            "billing@",
            "bill ing@acme.example",
            "a@b@acme.example",
            "billing@acme.example.",
            "billing@.",
            "a@" + "b" * 250 + ".in",
        ],
    )
    def test_email_malformed(self, email: str) -> None:
        assert _invalid("billing_email", billing_email=email).message == f"{email!r} is not an email address"

    def test_currency_missing(self) -> None:
        error = _invalid("billing_currency", billing_currency=" ")
        assert error.message == "is required (an ISO 4217 code such as INR or USD)"

    @pytest.mark.parametrize("currency", ["ABC", "XAU", "XXX", "RUPEE"])
    def test_currency_unknown(self, currency: str) -> None:
        error = _invalid("billing_currency", billing_currency=currency)
        assert error.message == f"{currency!r} is not an ISO 4217 currency code"

    def test_country_missing(self) -> None:
        error = _invalid("country", country="")
        assert error.message == "is required (an ISO 3166-1 alpha-2 code such as IN)"

    @pytest.mark.parametrize("country", ["ZZ", "IND", "I", "XX"])
    def test_country_unknown(self, country: str) -> None:
        error = _invalid("country", country=country)
        assert error.message == f"{country!r} is not an ISO 3166-1 alpha-2 country code"

    def test_india_requires_state_code(self) -> None:
        error = _invalid("state_code", state_code="", gstin="")
        assert error.message == "is required for organisations in India (GST state code, e.g. 29)"

    @pytest.mark.parametrize("state_code", ["00", "39", "MH", "7"])
    def test_india_bad_state_code(self, state_code: str) -> None:
        error = _invalid("state_code", state_code=state_code, gstin="")
        assert error.message == f"{state_code!r} is not a GST state code"

    def test_bad_gstin_check_character(self) -> None:
        error = _invalid("gstin", gstin="27AAPFU0939F1ZW")
        assert error.message == "check character is 'W' but should be 'V'; the GSTIN has a typo"

    def test_gstin_of_another_state(self) -> None:
        error = _invalid("gstin", gstin="29ABCDE1234F1ZW")
        assert error.message == "is registered in state 29 but state_code is '27'"

    def test_gstin_malformed(self) -> None:
        assert _invalid("gstin", gstin="GSTIN").message.startswith("must be 15 characters")

    def test_gstin_outside_india(self) -> None:
        error = _invalid("gstin", _us=True, gstin="27AAPFU0939F1ZV")
        assert error.message == "applies only to organisations in India (country IN)"

    @pytest.mark.parametrize(("country", "state_code"), [("US", "ZZ"), ("US", "27"), ("DE", "CA")])
    def test_state_code_not_a_subdivision(self, country: str, state_code: str) -> None:
        error = _invalid("state_code", _us=True, country=country, state_code=state_code)
        assert error.message == f"{state_code!r} is not a subdivision of {country} (ISO 3166-2)"

    @pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "IST", "../etc/passwd", "/etc/localtime"])
    def test_bad_timezone(self, timezone: str) -> None:
        error = _invalid("timezone", timezone=timezone)
        assert error.message == f"{timezone!r} is not an IANA time zone such as Asia/Kolkata"

    def test_first_bad_field_is_reported(self) -> None:
        _invalid("name", name="", billing_email="nope", billing_currency="ABC", country="ZZ", timezone="x")
        _invalid("billing_email", billing_email="nope", billing_currency="ABC", country="ZZ")
        _invalid("billing_currency", billing_currency="ABC", country="ZZ")
        _invalid("country", country="ZZ", timezone="Nowhere/Land")

    def test_str_names_the_field(self) -> None:
        assert str(_invalid("country", country="")) == ("country: is required (an ISO 3166-1 alpha-2 code such as IN)")


class TestFingerprint:
    def test_is_a_sha256_hex_digest(self) -> None:
        fingerprint = validate_details(**VALID_IN).fingerprint()
        assert len(fingerprint) == 64
        assert set(fingerprint) <= set("0123456789abcdef")

    def test_is_stable_for_equal_details(self) -> None:
        first = validate_details(**VALID_IN)
        second = validate_details(**{key: f"  {value} " for key, value in VALID_IN.items()})
        assert first == second
        assert first.fingerprint() == second.fingerprint()
        assert first.fingerprint() == first.fingerprint()

    @pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(OrganisationDetails)])
    def test_differs_when_any_field_differs(self, field: str) -> None:
        details = validate_details(**VALID_IN)
        changed = dataclasses.replace(details, **{field: getattr(details, field) + "x"})
        assert changed.fingerprint() != details.fingerprint()

    def test_field_boundaries_matter(self) -> None:
        # Moving characters from one field to its neighbour must not produce the same digest.
        a = OrganisationDetails(name="ab", billing_email="c", billing_currency="INR", country="IN")
        b = OrganisationDetails(name="a", billing_email="bc", billing_currency="INR", country="IN")
        assert a.fingerprint() != b.fingerprint()
