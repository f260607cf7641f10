"""The catalog and subscriptions over gRPC: versions, idempotency, and bad input refused with nothing stored."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa

from billing.invoicing.v1 import invoicing_pb2 as pb
from services.invoicing.adapters.tables import plan_versions, plans, subscriptions
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, subscribe, terms

PER_CALL = {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.10"}}


async def count(invoicing, table) -> int:
    async with invoicing.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


def graduated(*tiers: dict) -> dict:
    return {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_GRADUATED", "tiers": list(tiers)}}


@pytest.mark.parametrize(
    ("plan_terms", "field"),
    [
        # overlapping / unordered tiers
        ({"charges": [graduated({"up_to": "100"}, {"up_to": "50"}, {})]}, "charges[0].charge.tiers[1].up_to"),
        # a tier after an open-ended one
        ({"charges": [graduated({"up_to": "100"}, {}, {"up_to": "500"})]}, "charges[0].charge.tiers[2]"),
        # a negative price
        ({"charges": [{"metric_code": "api_calls",
                       "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "-1"}}]},
         "charges[0].charge.unit_price"),
        ({"base_fee": "-10", "charges": [PER_CALL]}, "base_fee"),
        # unknown currency
        ({"currency": "XYZ", "charges": [PER_CALL]}, "currency"),
        # a quota on a metric the plan does not charge
        ({"charges": [PER_CALL], "quotas": [{"metric_code": "llm_tokens", "limit": "10", "cap": "QUOTA_CAP_HARD"}]},
         "quotas[0].metric_code"),
        # two charges for one metric
        ({"charges": [PER_CALL, PER_CALL]}, "charges[1].metric_code"),
        ({"charges": [{"metric_code": "api_calls", "charge": {}}]}, "charges[0].charge.model"),
    ],
)
async def test_bad_plans_are_invalid_argument_naming_the_field_and_store_nothing(
    invoicing, invoicing_stub, plan_terms, field
):
    before = (await count(invoicing, plans), await count(invoicing, plan_versions))
    error = await expect_rpc_error(
        invoicing_stub.CreatePlan(
            pb.CreatePlanRequest(code=f"bad-{secrets.token_hex(3)}", name="Bad", terms=terms(**{"currency": "INR",
                                                                                                  **plan_terms}))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == field, error.details()
    assert (await count(invoicing, plans), await count(invoicing, plan_versions)) == before


async def test_editing_a_plan_makes_a_version_and_subscriptions_keep_theirs(invoicing, invoicing_stub):
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee="100", charges=[PER_CALL]))
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=datetime(2026, 9, 1, tzinfo=UTC))
    subscription = await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    edited = await invoicing_stub.CreatePlanVersion(
        pb.CreatePlanVersionRequest(plan_id=plan.id, terms=terms(currency="INR", base_fee="150", charges=[PER_CALL]))
    )
    assert edited.plan_version.version == 2 and edited.plan_version.terms.base_fee == "150"
    fetched = (await invoicing_stub.GetPlan(pb.GetPlanRequest(code=plan.code))).plan
    assert fetched.latest_version.id == edited.plan_version.id
    versions = (await invoicing_stub.ListPlanVersions(pb.ListPlanVersionsRequest(plan_id=plan.id))).plan_versions
    assert [(v.version, v.terms.base_fee) for v in versions] == [(1, "100"), (2, "150")]
    same_again = pb.CreatePlanVersionRequest(
        plan_id=plan.id, terms=terms(currency="INR", base_fee="150.00", charges=[PER_CALL])
    )
    error = await expect_rpc_error(invoicing_stub.CreatePlanVersion(same_again), grpc.StatusCode.ALREADY_EXISTS)
    assert "version 2" in error.details()
    too_early = await expect_rpc_error(
        invoicing_stub.ChangeSubscriptionPlan(
            pb.ChangeSubscriptionPlanRequest(
                subscription_id=subscription.id, plan_version_id=edited.plan_version.id, effective_date="2026-10-01"
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(too_early) == "effective_date"  # the request's field, not the domain's instant
    kept = (await invoicing_stub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=subscription.id)))
    assert kept.subscription.plan_version_id == plan.latest_version.id


async def test_creating_a_plan_is_idempotent_by_key_and_a_taken_code_is_already_exists(invoicing_stub):
    request = pb.CreatePlanRequest(
        code=f"idem-{secrets.token_hex(3)}", name="Idem", terms=terms(currency="INR", charges=[PER_CALL]),
        idempotency_key=secrets.token_hex(8),
    )
    first = await invoicing_stub.CreatePlan(request)
    second = await invoicing_stub.CreatePlan(request)
    assert first.created and not second.created and first.plan.id == second.plan.id
    other_key = pb.CreatePlanRequest()
    other_key.CopyFrom(request)
    other_key.idempotency_key = ""
    await expect_rpc_error(invoicing_stub.CreatePlan(other_key), grpc.StatusCode.ALREADY_EXISTS)
    changed_body = pb.CreatePlanRequest()
    changed_body.CopyFrom(request)
    changed_body.name = "Something else"
    await expect_rpc_error(invoicing_stub.CreatePlan(changed_body), grpc.StatusCode.ABORTED)


async def test_subscriptions_refuse_a_start_before_the_organisation_and_a_second_active_one(
    invoicing, invoicing_stub
):
    plan = await create_plan(invoicing_stub, terms(currency="INR", charges=[PER_CALL]))
    organisation_id = await create_organisation(invoicing_stub)  # created now
    before = await count(invoicing, subscriptions)
    error = await expect_rpc_error(
        invoicing_stub.CreateSubscription(
            pb.CreateSubscriptionRequest(
                organisation_id=organisation_id, plan_version_id=plan.latest_version.id, start_date="2020-01-01"
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "start_date" and "before the organisation" in error.details()
    for bad, field in (
        ({"billing_anchor_day": 29}, "billing_anchor_day"), ({"start_date": "01/10/2026"}, "start_date")
    ):
        error = await expect_rpc_error(
            invoicing_stub.CreateSubscription(
                pb.CreateSubscriptionRequest(organisation_id=organisation_id, plan_version_id=plan.latest_version.id,
                                             **bad)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert error_field(error) == field
    await expect_rpc_error(
        invoicing_stub.CreateSubscription(
            pb.CreateSubscriptionRequest(organisation_id="org_missing", plan_version_id=plan.latest_version.id)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert await count(invoicing, subscriptions) == before

    first = await invoicing_stub.CreateSubscription(
        pb.CreateSubscriptionRequest(organisation_id=organisation_id, plan_code=plan.code)
    )
    assert first.subscription.plan_version_id == plan.latest_version.id
    await expect_rpc_error(
        invoicing_stub.CreateSubscription(pb.CreateSubscriptionRequest(organisation_id=organisation_id,
                                                                       plan_code=plan.code)),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    canceled = await invoicing_stub.CancelSubscription(
        pb.CancelSubscriptionRequest(subscription_id=first.subscription.id, at_period_end=True)
    )
    again = await invoicing_stub.CancelSubscription(
        pb.CancelSubscriptionRequest(subscription_id=first.subscription.id, at_period_end=True)
    )
    assert canceled.subscription.cancel_at_period_end and again.subscription == canceled.subscription
    now = await invoicing_stub.CancelSubscription(
        pb.CancelSubscriptionRequest(subscription_id=first.subscription.id, at_period_end=False)
    )
    assert now.subscription.state == pb.SUBSCRIPTION_STATE_CANCELED


async def test_a_quote_prices_a_charge_with_its_tier_breakdown(invoicing_stub):
    charge = pb.Charge(
        model=pb.CHARGE_MODEL_GRADUATED,
        tiers=[pb.Tier(up_to="1000", unit_price="0", flat_fee="100"), pb.Tier(unit_price="0.015")],
        maximum_amount="150",
    )
    quote = await invoicing_stub.QuotePrice(pb.QuotePriceRequest(currency="INR", charge=charge, quantity="5000.5"))
    # 100 flat + 4,000.5 x 0.015 = 160.0075 -> 160.01, capped at 150
    assert quote.amount == "160.0075" and quote.usage_minor == 16001
    assert (quote.maximum_cap_minor, quote.total_minor) == (-1001, 15000)
    assert [(t.quantity, t.amount) for t in quote.breakdown] == [("1000", "100"), ("4000.5", "60.0075")]
    error = await expect_rpc_error(
        invoicing_stub.QuotePrice(pb.QuotePriceRequest(currency="INR", charge=charge, quantity="1.5e400")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "quantity"
    error = await expect_rpc_error(
        invoicing_stub.QuotePrice(pb.QuotePriceRequest(currency="ABC", charge=charge, quantity="1")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "currency"


async def test_exchange_rates_are_never_rewritten(invoicing_stub):
    request = pb.CreateExchangeRateRequest(base_currency="usd", quote_currency="INR", rate="84.25", source="RBI")
    request.effective_time.FromDatetime(datetime(2026, 7, 1, tzinfo=UTC))
    first = await invoicing_stub.CreateExchangeRate(request)
    repeat = await invoicing_stub.CreateExchangeRate(request)
    assert first.created and not repeat.created and first.exchange_rate.base_currency == "USD"
    request.rate = "85"
    await expect_rpc_error(invoicing_stub.CreateExchangeRate(request), grpc.StatusCode.ALREADY_EXISTS)
    request.rate = "0"
    error = await expect_rpc_error(invoicing_stub.CreateExchangeRate(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "rate"
