"""CheckQuota, CheckQuotas and GetEntitlements through the real metering service, asking the real invoicing
service what organisations are on (GetPlanInForce), with usage metered from events published as ingest does."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import json_format

from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.metering.v1 import metering_pb2 as pb
from billing_runtime.service import Runtime
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.metering.adapters.tables import quota_overages
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.metering.conftest import E, batch, define, eventually, project_id, publish

pytestmark = pytest.mark.usefixtures("metering")

CODE = "api.calls"


async def subscribed(invoicing_stub, organisation_id: str, **terms: Any) -> inv.Plan:
    """A new plan with the given terms, and the organisation subscribed to it from today."""
    message = json_format.ParseDict({"currency": "INR", "base_fee": "0", **terms}, inv.PlanTerms())
    plan = (await invoicing_stub.CreatePlan(inv.CreatePlanRequest(
        code=f"quota-{secrets.token_hex(4)}", name="Quota plan", terms=message))).plan
    await invoicing_stub.CreateSubscription(inv.CreateSubscriptionRequest(
        organisation_id=organisation_id, plan_version_id=plan.latest_version.id))
    return plan


def hard(limit: str, **grace: Any) -> dict[str, Any]:
    return {"metric_code": CODE, "limit": limit, "cap": "QUOTA_CAP_HARD", **grace}


async def use(js, metering_stub, organisation_id: str, *values: str) -> None:
    """Meter events of ``values`` now (a sum metric), and wait until CheckQuota reports them used."""
    project = project_id()
    events = [E(f"evt-{secrets.token_hex(6)}", value, datetime.now(UTC), metric=CODE) for value in values]
    await publish(js, batch(organisation_id, project, events))
    await used_reaches(metering_stub, organisation_id, sum(Decimal(v) for v in values))


async def used_reaches(metering_stub, organisation_id: str, total: Decimal) -> pb.QuotaStatus:
    return await eventually(lambda: check(metering_stub, organisation_id, "0"),
                            lambda status: Decimal(status.used) >= total)


async def check(metering_stub, organisation_id: str, quantity: str = "1", **fields: Any) -> pb.QuotaStatus:
    request = pb.CheckQuotaRequest(organisation_id=organisation_id, metric_code=CODE, quantity=quantity, **fields)
    return (await metering_stub.CheckQuota(request)).status


@pytest.fixture
async def organisation(organisation_id: str, metering_stub) -> str:
    await define(metering_stub, organisation_id, CODE, pb.AGGREGATION_SUM)
    return organisation_id


async def test_exactly_at_the_limit_is_allowed_and_one_unit_over_is_denied(
        invoicing_stub, metering_stub, jetstream, organisation):
    plan = await subscribed(invoicing_stub, organisation, quotas=[hard("10")], enforce_quotas_at_ingest=True)
    await use(jetstream, metering_stub, organisation, "4", "5")

    at_limit = await check(metering_stub, organisation, "1")
    assert (at_limit.allowed, at_limit.reason) == (True, pb.QUOTA_REASON_WITHIN_LIMIT)
    assert (at_limit.used, at_limit.limit, at_limit.remaining, at_limit.quantity) == ("9", "10", "1", "1")
    assert (at_limit.cap, at_limit.enforced_at_ingest) == (pb.QUOTA_CAP_HARD, True)
    assert (at_limit.plan_code, at_limit.plan_version) == (plan.code, 1)
    now = datetime.now(UTC)
    assert from_timestamp(at_limit.period_start) <= now < from_timestamp(at_limit.reset_time)
    assert now - timedelta(seconds=5) < from_timestamp(at_limit.usage_time) <= now
    assert (at_limit.grace_limit, at_limit.HasField("grace_end_time")) == ("", False)

    over = await check(metering_stub, organisation, "2")
    assert (over.allowed, over.reason, over.quantity) == (False, pb.QUOTA_REASON_OVER_HARD_CAP, "2")
    assert f"hard cap of 10 {CODE} per period on plan {plan.code} (v1)" in over.message
    assert "9 used" in over.message

    await use(jetstream, metering_stub, organisation, "1")  # exactly at the limit now
    exactly = await check(metering_stub, organisation, "0")
    assert (exactly.allowed, exactly.remaining) == (True, "0")
    assert not (await check(metering_stub, organisation, "0.000001")).allowed


async def test_within_grace_the_overage_is_recorded_once(invoicing_stub, metering_stub, jetstream, organisation,
                                                         metering: Runtime):
    await subscribed(invoicing_stub, organisation, quotas=[hard("10", grace_percent="50", grace_hours=24)])
    await use(jetstream, metering_stub, organisation, "12")
    status = await check(metering_stub, organisation, "3")
    assert (status.allowed, status.reason, status.grace_limit) == (True, pb.QUOTA_REASON_WITHIN_GRACE, "15")
    async with metering.engine.connect() as conn:
        rows = (await conn.execute(sa.select(quota_overages).where(
            quota_overages.c.organisation_id == organisation))).all()
    assert len(rows) == 1 and rows[0].quota_limit == 10
    assert from_timestamp(status.grace_end_time) == rows[0].first_over_at + timedelta(hours=24)
    beyond = await check(metering_stub, organisation, "4")
    assert (beyond.allowed, beyond.reason) == (False, pb.QUOTA_REASON_OVER_HARD_CAP)


async def test_past_grace_is_denied(invoicing_stub, metering_stub, jetstream, organisation, metering: Runtime):
    await subscribed(invoicing_stub, organisation, quotas=[hard("10", grace_percent="50", grace_hours=1)])
    first = await check(metering_stub, organisation, "0")
    went_over = datetime.now(UTC) - timedelta(hours=2)  # as if usage had gone over two hours ago
    async with metering.engine.begin() as conn:
        await conn.execute(sa.insert(quota_overages).values(
            organisation_id=organisation, metric_code=CODE, period_start=from_timestamp(first.period_start),
            quota_limit=Decimal(10), first_over_at=went_over))
    await use(jetstream, metering_stub, organisation, "12")
    status = await check(metering_stub, organisation, "1")
    assert (status.allowed, status.reason) == (False, pb.QUOTA_REASON_GRACE_EXPIRED)
    assert from_timestamp(status.grace_end_time) == went_over + timedelta(hours=1)
    assert "grace ended" in status.message


async def test_a_soft_cap_allows_over_its_limit(invoicing_stub, metering_stub, jetstream, organisation):
    await subscribed(invoicing_stub, organisation, quotas=[
        {"metric_code": CODE, "limit": "10", "cap": "QUOTA_CAP_SOFT"}], enforce_quotas_at_ingest=True)
    await use(jetstream, metering_stub, organisation, "12")
    status = await check(metering_stub, organisation, "1")
    assert (status.allowed, status.reason, status.cap) == (True, pb.QUOTA_REASON_OVER_SOFT_CAP, pb.QUOTA_CAP_SOFT)
    assert (status.remaining, status.enforced_at_ingest) == ("0", False)


async def test_a_plan_change_mid_period_is_reflected_at_once(invoicing_stub, metering_stub, jetstream, organisation):
    await subscribed(invoicing_stub, organisation, quotas=[hard("10")])
    await use(jetstream, metering_stub, organisation, "10")
    assert not (await check(metering_stub, organisation, "1")).allowed  # now cached for the TTL (30 s)
    bigger = json_format.ParseDict({"currency": "INR", "base_fee": "0", "quotas": [hard("100")]}, inv.PlanTerms())
    upgrade = (await invoicing_stub.CreatePlan(inv.CreatePlanRequest(
        code=f"quota-{secrets.token_hex(4)}", name="Bigger", terms=bigger))).plan
    subscription = (await invoicing_stub.ListSubscriptions(
        inv.ListSubscriptionsRequest(organisation_id=organisation))).subscriptions[0]
    await invoicing_stub.ChangeSubscriptionPlan(inv.ChangeSubscriptionPlanRequest(
        subscription_id=subscription.id, plan_version_id=upgrade.latest_version.id))
    # Well inside the cache's TTL: only invoicing's subscription.updated announcement can make this pass.
    status = await eventually(lambda: check(metering_stub, organisation, "1"), lambda s: s.allowed, timeout=5)
    assert (status.plan_code, status.limit, status.used) == (upgrade.code, "100", "10")


async def test_usage_is_never_older_than_the_lag_bound(metering_stub, jetstream, organisation, metering: Runtime):
    await check(metering_stub, organisation, "0")  # tracked from now on
    await publish(jetstream, batch(organisation, project_id(), [E("evt-lag", "7", datetime.now(UTC), metric=CODE)]))
    query = pb.GetUsageTotalsRequest(queries=[pb.UsageTotalQuery(
        organisation_id=organisation, metric_code=CODE, start_time=to_timestamp(datetime.now(UTC) - timedelta(1)),
        end_time=to_timestamp(datetime.now(UTC) + timedelta(1)))])
    await eventually(lambda: metering_stub.GetUsageTotals(query), lambda r: r.totals[0].value == "7")
    # Stored by now; once the bound has passed, no answer may come from a read that started before it was.
    await asyncio.sleep(metering.settings.quota_max_lag_seconds)
    assert (await check(metering_stub, organisation, "0")).used == "7"


async def test_without_a_subscription_or_a_quota_everything_is_allowed(invoicing_stub, metering_stub, organisation):
    unsubscribed = await check(metering_stub, organisation, "1000")
    assert (unsubscribed.allowed, unsubscribed.reason, unsubscribed.limit) == (
        True, pb.QUOTA_REASON_NO_SUBSCRIPTION, "")
    await subscribed(invoicing_stub, organisation, quotas=[{**hard("10"), "metric_code": "other.metric"}])
    no_quota = await eventually(lambda: check(metering_stub, organisation, "1000"),
                                lambda s: s.reason != pb.QUOTA_REASON_NO_SUBSCRIPTION, timeout=5)
    assert (no_quota.allowed, no_quota.reason, no_quota.remaining) == (True, pb.QUOTA_REASON_NO_QUOTA, "")


async def test_check_quotas_answers_in_order_and_refuses_bad_input(invoicing_stub, metering_stub, organisation):
    await subscribed(invoicing_stub, organisation, quotas=[hard("10")])
    response = await metering_stub.CheckQuotas(pb.CheckQuotasRequest(checks=[
        pb.CheckQuotaRequest(organisation_id=organisation, metric_code=CODE, quantity="10"),
        pb.CheckQuotaRequest(organisation_id=organisation, metric_code=CODE, quantity="11"),
    ]))
    assert [s.allowed for s in response.statuses] == [True, False]
    error = await expect_rpc_error(metering_stub.CheckQuotas(pb.CheckQuotasRequest(checks=[
        pb.CheckQuotaRequest(organisation_id=organisation, metric_code=CODE, quantity="-1" * 50)])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "checks[0].quantity"
    assert len(error.details()) < 300
    await expect_rpc_error(metering_stub.CheckQuota(pb.CheckQuotaRequest(
        organisation_id="org_nobody", metric_code=CODE)), grpc.StatusCode.NOT_FOUND)


async def test_entitlements_plan_value_override_and_unknown_feature(invoicing_stub, metering_stub, organisation):
    plan = await subscribed(invoicing_stub, organisation, entitlements={
        "sso": {"bool_value": True}, "seats": {"number_value": "10"}, "support": {"string_value": "standard"}})
    response = await metering_stub.GetEntitlements(pb.GetEntitlementsRequest(organisation_id=organisation))
    assert (response.subscription_found, response.plan_code, response.plan_version) == (True, plan.code, 1)
    assert [(e.feature, e.WhichOneof("value"), e.source) for e in response.entitlements] == [
        ("seats", "number_value", pb.ENTITLEMENT_SOURCE_PLAN),
        ("sso", "bool_value", pb.ENTITLEMENT_SOURCE_PLAN),
        ("support", "string_value", pb.ENTITLEMENT_SOURCE_PLAN),
    ]
    await invoicing_stub.SetEntitlementOverride(inv.SetEntitlementOverrideRequest(
        organisation_id=organisation, feature="seats", value=inv.EntitlementValue(number_value="25")))

    async def seats():
        return (await metering_stub.GetEntitlements(pb.GetEntitlementsRequest(
            organisation_id=organisation, feature="seats"))).entitlements

    [overridden] = await eventually(seats, lambda e: e[0].source == pb.ENTITLEMENT_SOURCE_OVERRIDE, timeout=5)
    assert overridden.number_value == "25"
    [unknown] = (await metering_stub.GetEntitlements(pb.GetEntitlementsRequest(
        organisation_id=organisation, feature="audit-log"))).entitlements
    assert (unknown.feature, unknown.source, unknown.WhichOneof("value"), unknown.bool_value) == (
        "audit-log", pb.ENTITLEMENT_SOURCE_UNKNOWN, "bool_value", False)
