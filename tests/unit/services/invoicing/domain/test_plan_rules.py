"""A plan version's terms: what is accepted, what is refused (and where), and the JSON round trip."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.charges import ChargeModel
from services.invoicing.domain.plan import DEFAULT_SAC_CODE, IngestRateLimit, QuotaCap
from services.invoicing.domain.plan_rules import terms_to_dict, validate_plan_code, validate_plan_name, validate_terms

API_CALLS = {"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.01"}}
TOKENS = {
    "metric_code": "llm.tokens",
    "display_name": "LLM tokens",
    "charge": {"model": "graduated", "tiers": [{"up_to": "1000000", "unit_price": "0"},
                                               {"up_to": None, "unit_price": "0.00002"}]},
    "gst_rate": "12",
    "sac_code": "998315",
}  # fmt: skip


def terms(**overrides: Any) -> dict[str, Any]:
    return {"currency": "INR", "base_fee": "999", "charges": [API_CALLS, TOKENS],
            "quotas": [{"metric_code": "api_calls", "limit": "100000", "cap": "hard"}], **overrides}  # fmt: skip


def test_terms_are_typed_with_defaults() -> None:
    checked = validate_terms(terms())
    assert checked.currency == "INR"
    assert checked.base_fee == Decimal(999)
    assert [c.metric_code for c in checked.charges] == ["api_calls", "llm.tokens"]
    assert checked.charges[1].charge.model is ChargeModel.GRADUATED
    assert (checked.charges[0].gst_rate, checked.charges[0].sac_code) == (None, "")
    assert (checked.charges[1].gst_rate, checked.charges[1].sac_code) == (Decimal(12), "998315")
    assert checked.charges[1].display_name == "LLM tokens"
    assert (checked.quotas[0].limit, checked.quotas[0].cap) == (Decimal(100000), QuotaCap.HARD)
    assert (checked.gst_rate, checked.sac_code, checked.description) == (Decimal(18), DEFAULT_SAC_CODE, "")


def test_a_free_plan_needs_nothing_but_a_currency() -> None:
    checked = validate_terms({"currency": "JPY"})
    assert (checked.base_fee, checked.charges, checked.quotas) == (Decimal(0), (), ())


def test_terms_round_trip() -> None:
    checked = validate_terms(terms(gst_rate="5.25", sac_code="998599", description="Line one\nline two"))
    assert validate_terms(terms_to_dict(checked)) == checked
    assert terms_to_dict(checked)["charges"][1]["charge"]["tiers"][1] == {
        "up_to": None, "unit_price": "0.00002", "flat_fee": "0"}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ("INR", None, "must be an object"),
        ({"base_fee": "1"}, "currency", "is required"),
        (terms(currency="XYZ"), "currency", "unknown currency 'XYZ'"),
        (terms(currency="inr"), "currency", "unknown currency"),
        (terms(currency="XAU"), "currency", "unknown currency"),
        (terms(colour="red"), "colour", "unknown field"),
        (terms(base_fee="-1"), "base_fee", "must not be negative"),
        (terms(base_fee=9.99), "base_fee", "float"),
        (terms(charges={"api_calls": {}}), "charges", "must be a list"),
        (terms(charges=[API_CALLS, API_CALLS]), "charges[1].metric_code", "a second charge for metric 'api_calls'"),
        (terms(charges=[{"charge": API_CALLS["charge"]}]), "charges[0].metric_code", "is required"),
        (terms(charges=[{**API_CALLS, "metric_code": "API Calls"}]), "charges[0].metric_code", "lowercase letter"),
        (terms(charges=[{**API_CALLS, "metric_code": 7}]), "charges[0].metric_code", "is required"),
        (terms(charges=[{"metric_code": "api_calls"}]), "charges[0].charge", "is required"),
        (terms(charges=[{**API_CALLS, "price": "1"}]), "charges[0].price", "unknown field"),
        (
            terms(
                charges=[
                    {
                        **API_CALLS,
                        "charge": {"model": "graduated", "tiers": [{"up_to": "100"}, {"up_to": "10"}, {"up_to": None}]},
                    }
                ]
            ),
            "charges[0].charge.tiers[1].up_to",
            "ascending order",
        ),
        (
            terms(charges=[{**API_CALLS, "charge": {"model": "per_unit", "unit_price": "-1"}}]),
            "charges[0].charge.unit_price",
            "must not be negative",
        ),
        (terms(charges=[{**API_CALLS, "gst_rate": "101"}]), "charges[0].gst_rate", "at most 100"),
        (terms(charges=[{**API_CALLS, "gst_rate": "-1"}]), "charges[0].gst_rate", "must not be negative"),
        (terms(charges=[{**API_CALLS, "gst_rate": "18.005"}]), "charges[0].gst_rate", "2 decimal places"),
        (terms(charges=[{**API_CALLS, "sac_code": "998"}]), "charges[0].sac_code", "6 digits starting with 99"),
        (terms(charges=[{**API_CALLS, "sac_code": "123456"}]), "charges[0].sac_code", "6 digits starting with 99"),
        (terms(charges=[{**API_CALLS, "display_name": "x" * 101}]), "charges[0].display_name", "at most 100"),
        (
            terms(charges=[API_CALLS], quotas=[{"metric_code": "storage_gb", "limit": "5", "cap": "soft"}]),
            "quotas[0].metric_code",
            "plan declares a quota for storage_gb but has no charge for it",
        ),
        (
            terms(
                quotas=[
                    {"metric_code": "api_calls", "limit": "5", "cap": "hard"},
                    {"metric_code": "api_calls", "limit": "6", "cap": "soft"},
                ]
            ),
            "quotas[1].metric_code",
            "a second quota",
        ),
        (terms(quotas=[{"metric_code": "api_calls", "limit": "-5", "cap": "hard"}]), "quotas[0].limit", "negative"),
        (terms(quotas=[{"metric_code": "api_calls", "cap": "hard"}]), "quotas[0].limit", "is required"),
        (
            terms(quotas=[{"metric_code": "api_calls", "limit": "5", "cap": "strict"}]),
            "quotas[0].cap",
            "'hard' or 'soft'",
        ),
        (
            terms(quotas=[{"metric_code": "api_calls", "limit": "5", "cap": "hard", "period": "day"}]),
            "quotas[0].period",
            "unknown field",
        ),
        (terms(gst_rate="18.5.1"), "gst_rate", "decimal number"),
        (terms(sac_code="99831"), "sac_code", "6 digits"),
        (terms(description="a\x00b"), "description", "control characters"),
    ],
)
def test_refused(raw: Any, field: str | None, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_terms(raw)
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize("code", ["free", "standard", "enterprise-2026", "team.v2", "a"])
def test_plan_code_accepted(code: str) -> None:
    assert validate_plan_code(code) == code


@pytest.mark.parametrize("code", ["", "Standard", "2026-plan", "plan code", "-x", "x" * 65, None, 5])
def test_plan_code_refused(code: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_plan_code(code)
    assert caught.value.field == "code"


def test_plan_name() -> None:
    assert validate_plan_name("  Standard  ") == "Standard"
    for bad in ["", "   ", "x" * 101, "tab\there", None, 3]:
        with pytest.raises(InvalidArgument) as caught:
            validate_plan_name(bad)
        assert caught.value.field == "name"


# --- quota grace, the enforcement flag and entitlements ---------------------------------------------------------

HARD_WITH_GRACE = {"metric_code": "api_calls", "limit": "1000", "cap": "hard", "grace_percent": "12.5",
                   "grace_hours": 48}


def test_grace_enforcement_and_entitlements_are_typed_and_round_trip() -> None:
    checked = validate_terms(terms(
        quotas=[HARD_WITH_GRACE], enforce_quotas_at_ingest=True,
        entitlements={"sso": {"bool_value": True}, "seats": {"number_value": "10"},
                      "support": {"string_value": "priority"}},
    ))
    quota = checked.quotas[0]
    assert (quota.grace_percent, quota.grace_hours) == (Decimal("12.5"), 48)
    assert checked.enforce_quotas_at_ingest is True
    assert checked.entitlements == {"seats": Decimal(10), "sso": True, "support": "priority"}
    assert list(checked.entitlements) == ["seats", "sso", "support"]  # sorted
    assert validate_terms(terms_to_dict(checked)) == checked
    assert terms_to_dict(checked)["quotas"][0] == {**HARD_WITH_GRACE, "limit": "1000"}


def test_terms_without_the_new_fields_read_and_write_as_before() -> None:
    """Versions stored before quotas had a grace (and plans had entitlements) load with the defaults, and their
    data, hence their request fingerprints, are unchanged."""
    stored = terms_to_dict(validate_terms(terms()))
    assert "enforce_quotas_at_ingest" not in stored and "entitlements" not in stored
    assert stored["quotas"] == [{"metric_code": "api_calls", "limit": "100000", "cap": "hard"}]
    checked = validate_terms(stored)
    assert (checked.quotas[0].grace_percent, checked.quotas[0].grace_hours) == (0, 0)
    assert (checked.enforce_quotas_at_ingest, checked.entitlements) == (False, {})


def test_a_listed_plan_says_so_and_round_trips_and_an_unlisted_one_stores_as_before() -> None:
    listed = validate_terms(terms(listed=True))
    assert listed.listed is True and terms_to_dict(listed)["listed"] is True
    assert validate_terms(terms_to_dict(listed)) == listed
    assert "listed" not in terms_to_dict(validate_terms(terms()))  # fingerprints of older versions unchanged
    with pytest.raises(InvalidArgument) as refused:
        validate_terms(terms(listed="yes"))
    assert refused.value.field == "listed"


def test_a_hard_cap_may_have_grace_without_hours_meaning_the_rest_of_the_period() -> None:
    quota = validate_terms(terms(quotas=[{**HARD_WITH_GRACE, "grace_hours": 0}])).quotas[0]
    assert (quota.grace_percent, quota.grace_hours) == (Decimal("12.5"), 0)


def test_an_ingest_rate_limit_is_typed_round_trips_and_defaults_its_burst_to_one_second() -> None:
    checked = validate_terms(terms(ingest_rate_limit={"events_per_second": 1000, "burst": 20000}))
    assert checked.ingest_rate_limit == IngestRateLimit(1000, 20000)
    assert validate_terms(terms_to_dict(checked)) == checked
    one_second = validate_terms(terms(ingest_rate_limit={"events_per_second": 50}))
    assert one_second.ingest_rate_limit == IngestRateLimit(50, 50)
    assert "ingest_rate_limit" not in terms_to_dict(validate_terms(terms()))


def _quota(**fields: Any) -> dict[str, Any]:
    return terms(quotas=[{"metric_code": "api_calls", "limit": "1000", "cap": "hard", **fields}])


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (_quota(cap="soft", grace_percent="10"), "quotas[0].grace_percent", "hard caps only"),
        (_quota(grace_percent="100.01"), "quotas[0].grace_percent", "at most 100"),
        (_quota(grace_percent="-1"), "quotas[0].grace_percent", "must not be negative"),
        (_quota(grace_percent="0.125"), "quotas[0].grace_percent", "2 decimal places"),
        (_quota(grace_percent="ten"), "quotas[0].grace_percent", "decimal number"),
        (_quota(grace_hours=24), "quotas[0].grace_hours", "needs a grace_percent"),
        (_quota(grace_percent="10", grace_hours=8785), "quotas[0].grace_hours", "0 to 8784"),
        (_quota(grace_percent="10", grace_hours=-1), "quotas[0].grace_hours", "0 to 8784"),
        (_quota(grace_percent="10", grace_hours="24"), "quotas[0].grace_hours", "whole number"),
        (_quota(grace_percent="10", grace_hours=True), "quotas[0].grace_hours", "whole number"),
        (terms(enforce_quotas_at_ingest="yes"), "enforce_quotas_at_ingest", "true or false"),
        (terms(ingest_rate_limit={}), "ingest_rate_limit.events_per_second", "is required"),
        (terms(ingest_rate_limit={"events_per_second": 0}), "ingest_rate_limit.events_per_second", "1 to 1,000,000"),
        (terms(ingest_rate_limit={"events_per_second": 1_000_001}), "ingest_rate_limit.events_per_second",
         "1 to 1,000,000"),
        (terms(ingest_rate_limit={"events_per_second": "10"}), "ingest_rate_limit.events_per_second", "whole number"),
        (terms(ingest_rate_limit={"events_per_second": 10, "burst": 10_000_001}), "ingest_rate_limit.burst",
         "1 to 10,000,000"),
        (terms(ingest_rate_limit={"events_per_second": 10, "per": "minute"}), "ingest_rate_limit.per",
         "unknown field"),
        (terms(entitlements=[]), "entitlements", "must be an object"),
        (terms(entitlements={"seats": {}}), 'entitlements["seats"]', "exactly one of"),
        (terms(entitlements={"seats": {"number_value": "1", "string_value": "x"}}), 'entitlements["seats"]',
         "exactly one of"),
        (terms(entitlements={"Seats": {"number_value": "1"}}), 'entitlements["Seats"]', "not a feature key"),
        (terms(entitlements={"seats": {"number_value": "1e12"}}), 'entitlements["seats"]', "less than 10^12"),
        (terms(entitlements={"seats": {"number_value": "1.0000001"}}), 'entitlements["seats"]', "6 decimal places"),
        (terms(entitlements={"sso": {"bool_value": "true"}}), 'entitlements["sso"]', "true or false"),
        (terms(entitlements={f"f{i}": {"bool_value": True} for i in range(101)}), "entitlements", "at most 100"),
    ],
)
def test_grace_and_entitlements_refused(raw: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_terms(raw)
    assert caught.value.field == field
    assert message in caught.value.message


def test_billing_interval_terms_are_typed_round_trip_and_stay_out_of_monthly_plans() -> None:
    from services.invoicing.domain.plan import BaseFeeTiming, BillingInterval

    checked = validate_terms(terms(billing_interval="year", base_fee_timing="in_advance",
                                   annual_discount_percent="16.67"))
    assert (checked.billing_interval, checked.base_fee_timing, checked.annual_discount_percent) == (
        BillingInterval.YEAR, BaseFeeTiming.IN_ADVANCE, Decimal("16.67"))
    assert checked.interval_fee() == Decimal("999") * 12 * Decimal("0.8333")
    assert validate_terms(terms_to_dict(checked)) == checked
    monthly = validate_terms(terms())
    assert (monthly.billing_interval, monthly.base_fee_timing) == (BillingInterval.MONTH, BaseFeeTiming.IN_ARREARS)
    assert monthly.interval_fee() == Decimal(999)
    assert not {"billing_interval", "base_fee_timing", "annual_discount_percent"} & set(terms_to_dict(monthly))
    assert validate_terms(terms(billing_interval="quarter")).interval_fee() == Decimal(2997)


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"billing_interval": "week"}, "billing_interval", "must be one of month, quarter, year"),
    ({"billing_interval": 12}, "billing_interval", "must be one of"),
    ({"base_fee_timing": "later"}, "base_fee_timing", "must be one of in_advance, in_arrears"),
    ({"billing_interval": "year", "annual_discount_percent": "100.5"}, "annual_discount_percent", "at most 100"),
    ({"billing_interval": "year", "annual_discount_percent": "-1"}, "annual_discount_percent", ""),
    ({"billing_interval": "year", "annual_discount_percent": "10.001"}, "annual_discount_percent", "2 decimal"),
    ({"billing_interval": "quarter", "annual_discount_percent": "10"}, "annual_discount_percent", "yearly plan"),
    ({"annual_discount_percent": "10"}, "annual_discount_percent", "billed every month"),
])  # fmt: skip
def test_billing_interval_terms_refused(raw: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_terms(terms(**raw))
    assert caught.value.field == field
    assert message in str(caught.value)
