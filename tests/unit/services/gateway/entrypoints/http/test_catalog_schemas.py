"""Catalog JSON <-> invoicing protobuf: every charge field and enum maps both ways, and returned terms can be
sent back unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.invoicing.v1 import invoicing_pb2 as pb
from services.gateway.entrypoints.http import catalog_schemas as cs

TERMS = {
    "currency": "INR",
    "base_fee": "999",
    "charges": [
        {"metric_code": "api_calls", "display_name": "API calls", "gst_rate": "12", "sac_code": "998314",
         "charge": {"model": "graduated", "free_units": "10000",
                    "tiers": [{"up_to": "1000", "unit_price": "0.10", "flat_fee": "5"},
                              {"up_to": None, "unit_price": "0.05", "flat_fee": None}]}},
        {"metric_code": "llm_tokens", "display_name": "", "gst_rate": None, "sac_code": "",
         "charge": {"model": "package", "package_size": "1000000", "package_price": "150",
                    "package_rounding": "down", "maximum_amount": "100000"}},
        {"metric_code": "payments_volume", "display_name": "", "gst_rate": None, "sac_code": "",
         "charge": {"model": "percentage", "rate": "2.5", "fixed_fee_per_event": "3", "free_events": 10,
                    "free_amount": "1000", "min_per_event": "1", "max_per_event": "500", "minimum_amount": "100"}},
    ],
    "quotas": [{"metric_code": "api_calls", "limit": "100000", "cap": "hard", "grace_percent": "12.5",
                "grace_hours": 48},
               {"metric_code": "llm_tokens", "limit": "5000000", "cap": "soft", "grace_percent": None,
                "grace_hours": 0}],
    "gst_rate": "18",
    "sac_code": "998315",
    "description": "Standard",
    "enforce_quotas_at_ingest": True,
    "entitlements": {"seats": {"number": "10"}, "sso": True, "support": "priority", "tier": "10"},
    "ingest_rate_limit": {"events_per_second": 1000, "burst": 20000},
    "billing_interval": "year",
    "base_fee_timing": "in_advance",
    "annual_discount_percent": "10",
    "listed": True,
}


def test_terms_map_to_protobuf_field_for_field():
    message = cs.PlanTerms.model_validate(TERMS).to_pb()
    assert (message.billing_interval, message.base_fee_timing, message.annual_discount_percent) == (
        pb.BILLING_INTERVAL_YEAR, pb.BASE_FEE_TIMING_IN_ADVANCE, "10")
    assert (message.currency, message.base_fee, message.gst_rate, message.sac_code) == ("INR", "999", "18", "998315")
    graduated = message.charges[0]
    assert (graduated.metric_code, graduated.display_name, graduated.gst_rate, graduated.sac_code) == (
        "api_calls", "API calls", "12", "998314")
    assert graduated.charge.model == pb.CHARGE_MODEL_GRADUATED and graduated.charge.free_units == "10000"
    assert [(t.up_to, t.unit_price, t.flat_fee) for t in graduated.charge.tiers] == [
        ("1000", "0.10", "5"), ("", "0.05", "")]  # null is protobuf's "unset": the empty string
    package = message.charges[1].charge
    assert (package.model, package.package_size, package.package_price, package.package_rounding,
            package.maximum_amount, package.unit_price) == (
        pb.CHARGE_MODEL_PACKAGE, "1000000", "150", pb.PACKAGE_ROUNDING_DOWN, "100000", "")
    percentage = message.charges[2].charge
    assert (percentage.rate, percentage.fixed_fee_per_event, percentage.free_events, percentage.free_amount,
            percentage.min_per_event, percentage.max_per_event, percentage.minimum_amount) == (
        "2.5", "3", 10, "1000", "1", "500", "100")
    assert [(q.metric_code, q.limit, q.cap, q.grace_percent, q.grace_hours) for q in message.quotas] == [
        ("api_calls", "100000", pb.QUOTA_CAP_HARD, "12.5", 48), ("llm_tokens", "5000000", pb.QUOTA_CAP_SOFT, "", 0)]
    assert message.enforce_quotas_at_ingest and message.listed
    assert dict(message.entitlements) == {
        "seats": pb.EntitlementValue(number_value="10"), "sso": pb.EntitlementValue(bool_value=True),
        "support": pb.EntitlementValue(string_value="priority"), "tier": pb.EntitlementValue(string_value="10")}


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (True, pb.EntitlementValue(bool_value=True)),
        (False, pb.EntitlementValue(bool_value=False)),
        (25, pb.EntitlementValue(number_value="25")),
        (Decimal("2.50"), pb.EntitlementValue(number_value="2.50")),  # a JSON number, read exactly
        ({"number": "0.000001"}, pb.EntitlementValue(number_value="0.000001")),
        ({"number": 7}, pb.EntitlementValue(number_value="7")),
        ("25", pb.EntitlementValue(string_value="25")),  # a JSON string is always a string
    ],
)
def test_entitlement_values_as_rest_sends_them(value, sent):
    assert cs.entitlement_value_to_pb(cs.EntitlementOverrideSet.model_validate({"value": value}).value) == sent


@pytest.mark.parametrize("value", [None, 1.5, [1], {"number": "1", "unit": "seat"}, {"count": 1}, {"number": True}])
def test_entitlement_values_refused_by_rest(value):
    with pytest.raises(ValidationError):
        cs.EntitlementOverrideSet.model_validate({"value": value})


def test_terms_come_back_as_sent_so_a_returned_version_can_be_posted_again():
    returned = cs.PlanTerms.from_pb(cs.PlanTerms.model_validate(TERMS).to_pb()).model_dump(mode="json")
    assert returned == TERMS
    posted_again = cs.PlanVersionCreate.model_validate({"terms": returned, "reason": "r"})
    assert posted_again.terms.to_pb() == cs.PlanTerms.model_validate(TERMS).to_pb()


def test_a_returned_charge_leaves_unset_fields_out():
    charge = cs.Charge.from_pb(pb.Charge(model=pb.CHARGE_MODEL_PER_UNIT, unit_price="0.05"))
    assert charge.model_dump(mode="json") == {"model": "per_unit", "unit_price": "0.05"}
    flat = cs.Charge.from_pb(pb.Charge(model=pb.CHARGE_MODEL_FLAT, flat_amount="499"))
    assert flat.model_dump(mode="json") == {"model": "flat", "flat_amount": "499"}


@pytest.mark.parametrize("name", ["per_unit", "graduated", "volume", "package", "percentage", "flat"])
def test_every_charge_model_name_round_trips(name):
    message = cs.Charge(model=name).to_pb()
    assert pb.ChargeModel.Name(message.model) == f"CHARGE_MODEL_{name.upper()}"
    assert cs.Charge.from_pb(message).model == name


def test_enum_names_leave_out_unspecified():
    assert cs.CHARGE_MODELS.name(pb.CHARGE_MODEL_UNSPECIFIED) is None
    assert set(cs.QUOTA_CAPS.numbers) == {"hard", "soft"}
    assert cs.SUBSCRIPTION_STATES.names == {pb.SUBSCRIPTION_STATE_ACTIVE: "active",
                                            pb.SUBSCRIPTION_STATE_CANCELED: "canceled"}


@given(st.lists(st.tuples(st.one_of(st.none(), st.decimals(min_value=0, max_value=10**9, places=4)),
                          st.decimals(min_value=0, max_value=1000, places=6)), max_size=6))
def test_tiers_from_json_numbers_map_exactly(tiers):
    body = {"model": "volume", "tiers": [{"up_to": up_to, "unit_price": price} for up_to, price in tiers]}
    message = cs.Charge.model_validate(body).to_pb()
    for (up_to, price), tier in zip(tiers, message.tiers, strict=True):
        assert tier.up_to == ("" if up_to is None else f"{up_to:f}")
        assert tier.unit_price == f"{price:f}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "per_unit", "unit_price": 0.05}, "unit_price"),  # a float never gets through
        ({"model": "per_unit", "unit_price": True}, "unit_price"),
        ({"model": "per_unit", "colour": "red"}, "colour"),
        ({"model": "tiered"}, "model"),
        ({"model": "package", "package_rounding": "nearest"}, "package_rounding"),
        ({"model": "percentage", "free_events": -1}, "free_events"),
    ],
)
def test_bad_charge_json_names_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        cs.Charge.model_validate(body)
    assert caught.value.errors()[0]["loc"][0] == field


def test_subscription_requests_carry_dates_as_iso_text_and_keys():
    create = cs.SubscriptionCreate(organisation_id="org_1", plan_code="standard", start_date="2026-11-01",
                                   billing_anchor_day=15).to_pb("key-1")
    assert (create.organisation_id, create.plan_code, create.plan_version_id, create.start_date,
            create.billing_anchor_day, create.idempotency_key) == ("org_1", "standard", "", "2026-11-01", 15, "key-1")
    assert cs.SubscriptionCreate(organisation_id="org_1", plan_code="s").to_pb("").start_date == ""
    change = cs.SubscriptionChangePlan(plan_version_id="pv_2", effective_date="2026-11-16").to_pb("sub_1")
    assert (change.subscription_id, change.plan_version_id, change.effective_date) == ("sub_1", "pv_2", "2026-11-16")
    with pytest.raises(ValidationError):
        cs.SubscriptionCreate(organisation_id="org_1", plan_code="s", billing_anchor_day=29)


def test_subscription_from_protobuf():
    message = pb.Subscription(
        id="sub_1", organisation_id="org_1", state=pb.SUBSCRIPTION_STATE_ACTIVE, billing_anchor_day=1,
        plan_version_id="pv_2", cancel_at_period_end=True,
        phases=[pb.SubscriptionPhase(plan_version_id="pv_1"), pb.SubscriptionPhase(plan_version_id="pv_2")],
    )
    message.phases[0].start_time.FromSeconds(1_793_471_400)  # 2026-10-31T18:30:00Z: 1 Nov 00:00 in Kolkata
    message.phases[0].end_time.FromSeconds(1_794_767_400)
    subscription = cs.Subscription.from_pb(message).model_dump(mode="json")
    assert subscription["state"] == "active" and subscription["cancel_at_period_end"] is True
    assert subscription["phases"][0] == {"plan_version_id": "pv_1", "starts_at": "2026-10-31T18:30:00Z",
                                         "ends_at": "2026-11-15T18:30:00Z"}
    assert subscription["phases"][1]["ends_at"] is None and subscription["ends_at"] is None
    assert (subscription["past_due"], subscription["past_due_at"]) == (False, None)


def test_a_past_due_subscription_says_since_when():
    message = pb.Subscription(id="sub_1", state=pb.SUBSCRIPTION_STATE_ACTIVE, past_due=True)
    message.past_due_time.FromSeconds(1_794_767_400)
    subscription = cs.Subscription.from_pb(message).model_dump(mode="json")
    assert (subscription["past_due"], subscription["past_due_at"]) == (True, "2026-11-15T18:30:00Z")


def test_exchange_rate_request_with_and_without_an_effective_time():
    message = cs.ExchangeRateCreate(base_currency="USD", quote_currency="INR", rate=Decimal("84.5"), source="demo",
                                    effective_at="2026-01-01T00:00:00Z").to_pb()
    assert (message.rate, message.effective_time.seconds) == ("84.5", 1_767_225_600)
    assert not cs.ExchangeRateCreate(base_currency="USD", quote_currency="INR", rate="84.50",
                                     source="demo").to_pb().HasField("effective_time")
