"""GetPlanInForce, entitlement overrides and subscription.updated over real gRPC, PostgreSQL and JetStream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from billing.invoicing.v1 import events_pb2
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.messaging import stream_name
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.invoicing.adapters.tables import entitlement_overrides, plan_versions
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, subscribe, terms

IST = ZoneInfo("Asia/Kolkata")
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
UPDATED = "billing.invoicing.v1.subscription.updated"
MISSING = "org_01KNOSUCHORGANISATION00000"
PER_CALL = {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.10"}}
LIMITED = terms(
    currency="INR", base_fee="100", charges=[PER_CALL],
    quotas=[{"metric_code": "api_calls", "limit": "1000", "cap": "QUOTA_CAP_HARD", "grace_percent": "10",
             "grace_hours": 24}],
    enforce_quotas_at_ingest=True,
    entitlements={"sso": {"bool_value": True}, "seats": {"number_value": "5"}, "support": {"string_value": "email"}},
)


def ist(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=IST).astimezone(UTC)


async def in_force(stub, organisation_id: str, at: datetime | None = None) -> pb.GetPlanInForceResponse:
    request = pb.GetPlanInForceRequest(organisation_id=organisation_id)
    if at is not None:
        request.time.CopyFrom(to_timestamp(at))
    return await stub.GetPlanInForce(request)


def stamp(value: Timestamp) -> datetime | None:
    return from_timestamp(value)


async def test_plan_terms_keep_the_new_fields_over_grpc(invoicing_stub):
    plan = await create_plan(invoicing_stub, LIMITED)
    version = (await invoicing_stub.GetPlanVersion(pb.GetPlanVersionRequest(plan_version_id=plan.latest_version.id)))
    returned = version.plan_version.terms
    assert returned.quotas[0].grace_percent == "10" and returned.quotas[0].grace_hours == 24
    assert returned.enforce_quotas_at_ingest
    assert dict(returned.entitlements) == dict(LIMITED.entitlements)


@pytest.mark.parametrize(
    ("quota", "entitlements", "field"),
    [
        ({"cap": "QUOTA_CAP_SOFT", "grace_percent": "10"}, {}, "quotas[0].grace_percent"),
        ({"cap": "QUOTA_CAP_HARD", "grace_hours": 5}, {}, "quotas[0].grace_hours"),
        ({"cap": "QUOTA_CAP_HARD"}, {"seats": {}}, 'entitlements["seats"]'),
        ({"cap": "QUOTA_CAP_HARD"}, {"seats": {"number_value": "ten"}}, 'entitlements["seats"]'),
        ({"cap": "QUOTA_CAP_HARD"}, {"Seats": {"bool_value": True}}, 'entitlements["Seats"]'),
    ],
)
async def test_bad_grace_and_entitlements_are_refused_naming_the_field(invoicing_stub, quota, entitlements, field):
    bad = terms(currency="INR", charges=[PER_CALL], quotas=[{"metric_code": "api_calls", "limit": "10", **quota}],
                entitlements=entitlements)
    error = await expect_rpc_error(
        invoicing_stub.CreatePlan(pb.CreatePlanRequest(code="bad-grace", name="Bad", terms=bad)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == field, error.details()


async def test_a_version_stored_before_the_new_fields_still_loads(invoicing, invoicing_stub):
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee="100", charges=[PER_CALL],
                                                   quotas=[{"metric_code": "api_calls", "limit": "10",
                                                            "cap": "QUOTA_CAP_SOFT"}]))
    legacy = {"currency": "INR", "base_fee": "100", "gst_rate": "18", "sac_code": "998314", "description": "",
              "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.10"},
                           "display_name": "", "gst_rate": None, "sac_code": ""}],
              "quotas": [{"metric_code": "api_calls", "limit": "10", "cap": "soft"}]}
    async with invoicing.engine.begin() as conn:
        await conn.execute(sa.update(plan_versions).where(plan_versions.c.id == plan.latest_version.id)
                           .values(terms=legacy))
    loaded = (await invoicing_stub.GetPlan(pb.GetPlanRequest(plan_id=plan.id))).plan.latest_version.terms
    assert (loaded.quotas[0].grace_percent, loaded.quotas[0].grace_hours) == ("", 0)
    assert not loaded.enforce_quotas_at_ingest and dict(loaded.entitlements) == {}


async def test_a_plan_change_mid_period_and_the_period_of_the_anchor_day(invoicing, invoicing_stub):
    first = await create_plan(invoicing_stub, LIMITED)
    second = await create_plan(invoicing_stub, terms(currency="INR", base_fee="500", charges=[PER_CALL]))
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    subscription = (await invoicing_stub.CreateSubscription(pb.CreateSubscriptionRequest(
        organisation_id=organisation_id, plan_version_id=first.latest_version.id, start_date="2026-09-01",
        billing_anchor_day=5))).subscription
    await invoicing_stub.ChangeSubscriptionPlan(pb.ChangeSubscriptionPlanRequest(
        subscription_id=subscription.id, plan_version_id=second.latest_version.id, effective_date="2026-10-20"))

    before = await in_force(invoicing_stub, organisation_id, ist(2026, 10, 19, 23, 59))
    assert before.found and before.subscription_id == subscription.id
    assert before.plan_version.id == first.latest_version.id
    assert before.plan_version.terms.quotas[0].grace_percent == "10"
    assert before.plan_version.terms.entitlements["seats"].number_value == "5"
    assert (stamp(before.period_start), stamp(before.period_end)) == (ist(2026, 10, 5), ist(2026, 11, 5))
    assert stamp(before.phase_end) == ist(2026, 10, 20)
    assert before.organisation.id == organisation_id and before.organisation.timezone == "Asia/Kolkata"

    after = await in_force(invoicing_stub, organisation_id, ist(2026, 10, 20))
    assert after.found and after.plan_version.id == second.latest_version.id
    assert not after.HasField("phase_end")
    assert (stamp(after.period_start), stamp(after.period_end)) == (ist(2026, 10, 5), ist(2026, 11, 5))

    earlier = await in_force(invoicing_stub, organisation_id, ist(2026, 9, 4))  # before the first anchor day
    assert earlier.found and (stamp(earlier.period_start), stamp(earlier.period_end)) == (
        ist(2026, 8, 5), ist(2026, 9, 5))


async def test_a_scheduled_cancellation_and_after_it(invoicing, invoicing_stub):
    plan = await create_plan(invoicing_stub, LIMITED)
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    subscription = await subscribe(invoicing_stub, organisation_id, plan.latest_version.id, start_date="2026-09-01")
    canceled = (await invoicing_stub.CancelSubscription(
        pb.CancelSubscriptionRequest(subscription_id=subscription.id, at_period_end=True))).subscription
    ends = stamp(canceled.end_time)

    now = await in_force(invoicing_stub, organisation_id)  # time unset: now
    assert now.found and stamp(now.period_end) == ends and not now.HasField("phase_end")
    after = await in_force(invoicing_stub, organisation_id, ends)
    assert not after.found and after.subscription_id == "" and not after.HasField("plan_version")
    local = ends.astimezone(IST)
    assert stamp(after.period_start) == ist(local.year, local.month, 1)  # the calendar month it falls in


async def test_no_subscription_answers_the_calendar_month_and_the_overrides(invoicing_stub):
    organisation_id = (await invoicing_stub.CreateOrganisation(
        pb.CreateOrganisationRequest(name="Solo", billing_email="b@solo.example", billing_currency="USD",
                                     country="US", timezone="America/New_York"))).organisation.id
    await invoicing_stub.SetEntitlementOverride(pb.SetEntitlementOverrideRequest(
        organisation_id=organisation_id, feature="seats", value=pb.EntitlementValue(number_value="25")))
    answer = await in_force(invoicing_stub, organisation_id, datetime(2026, 11, 1, 3, 59, tzinfo=UTC))
    assert not answer.found and answer.organisation.id == organisation_id
    new_york = ZoneInfo("America/New_York")
    assert (stamp(answer.period_start), stamp(answer.period_end)) == (
        datetime(2026, 10, 1, tzinfo=new_york).astimezone(UTC), datetime(2026, 11, 1, tzinfo=new_york).astimezone(UTC))
    assert answer.entitlement_overrides["seats"].number_value == "25"


async def test_unknown_organisations_are_not_found(invoicing_stub):
    await expect_rpc_error(invoicing_stub.GetPlanInForce(pb.GetPlanInForceRequest(organisation_id=MISSING)),
                           grpc.StatusCode.NOT_FOUND)
    for call in (
        invoicing_stub.SetEntitlementOverride(pb.SetEntitlementOverrideRequest(
            organisation_id=MISSING, feature="sso", value=pb.EntitlementValue(bool_value=True))),
        invoicing_stub.DeleteEntitlementOverride(pb.DeleteEntitlementOverrideRequest(organisation_id=MISSING,
                                                                                      feature="sso")),
        invoicing_stub.ListEntitlementOverrides(pb.ListEntitlementOverridesRequest(organisation_id=MISSING)),
    ):
        await expect_rpc_error(call, grpc.StatusCode.NOT_FOUND)


async def count_rows(invoicing, table, *where) -> int:
    async with invoicing.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()


async def test_overrides_are_set_replaced_listed_and_deleted(
    invoicing, invoicing_stub
):
    organisation_id = await create_organisation(invoicing_stub)

    async def put(feature, **value):
        return (await invoicing_stub.SetEntitlementOverride(pb.SetEntitlementOverrideRequest(
            organisation_id=organisation_id, feature=feature, value=pb.EntitlementValue(**value)))
        ).entitlement_overrides

    assert dict(await put("sso", bool_value=True)) == {"sso": pb.EntitlementValue(bool_value=True)}
    await put("sso", bool_value=True)  # the same again: no change
    assert dict(await put("seats", number_value="10")) == {"sso": pb.EntitlementValue(bool_value=True),
                                                           "seats": pb.EntitlementValue(number_value="10")}
    error = await expect_rpc_error(
        invoicing_stub.SetEntitlementOverride(pb.SetEntitlementOverrideRequest(
            organisation_id=organisation_id, feature="seats", value=pb.EntitlementValue())),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "value"
    deleted = await invoicing_stub.DeleteEntitlementOverride(
        pb.DeleteEntitlementOverrideRequest(organisation_id=organisation_id, feature="sso"))
    assert list(deleted.entitlement_overrides) == ["seats"]
    await invoicing_stub.DeleteEntitlementOverride(
        pb.DeleteEntitlementOverrideRequest(organisation_id=organisation_id, feature="sso"))
    listed = await invoicing_stub.ListEntitlementOverrides(
        pb.ListEntitlementOverridesRequest(organisation_id=organisation_id))
    assert dict(listed.entitlement_overrides) == {"seats": pb.EntitlementValue(number_value="10")}
    assert await count_rows(invoicing, entitlement_overrides,
                            entitlement_overrides.c.organisation_id == organisation_id) == 1


async def test_subscription_updated_is_published_for_every_change_on_the_invoicing_stream(
    invoicing, invoicing_stub, jetstream
):
    info = await jetstream.stream_info(stream_name("invoicing"))
    assert any(subject in ("billing.invoicing.v1.>", UPDATED) for subject in info.config.subjects)
    plan = await create_plan(invoicing_stub, LIMITED)
    other = await create_plan(invoicing_stub, terms(currency="INR", base_fee="1", charges=[PER_CALL]))
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    subscription = await subscribe(invoicing_stub, organisation_id, plan.latest_version.id, start_date="2026-09-01")
    change = pb.ChangeSubscriptionPlanRequest(subscription_id=subscription.id,
                                              plan_version_id=other.latest_version.id, effective_date="2026-10-01")
    await invoicing_stub.ChangeSubscriptionPlan(change)
    await invoicing_stub.ChangeSubscriptionPlan(change)  # a repeat: nothing changes, nothing is announced
    await invoicing_stub.CancelSubscription(pb.CancelSubscriptionRequest(subscription_id=subscription.id,
                                                                         at_period_end=True))
    await invoicing_stub.CancelSubscription(pb.CancelSubscriptionRequest(subscription_id=subscription.id))
    override = pb.SetEntitlementOverrideRequest(organisation_id=organisation_id, feature="sso",
                                                value=pb.EntitlementValue(bool_value=False))
    await invoicing_stub.SetEntitlementOverride(override)
    await invoicing_stub.SetEntitlementOverride(override)
    await invoicing_stub.DeleteEntitlementOverride(
        pb.DeleteEntitlementOverrideRequest(organisation_id=organisation_id, feature="sso"))
    expected = [(subscription.id, "created"), (subscription.id, "plan_changed"), (subscription.id, "canceled"),
                (subscription.id, "canceled"), ("", "entitlement_override"), ("", "entitlement_override")]

    received: list[events_pb2.SubscriptionUpdated] = []
    messages = await jetstream.subscribe(UPDATED, stream=stream_name("invoicing"))
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while len(received) < len(expected):
            message = await messages.next_msg(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
            event = events_pb2.SubscriptionUpdated.FromString(message.data)
            assert message.headers["Nats-Msg-Id"] == event.event_id
            if event.organisation_id == organisation_id:
                received.append(event)
        with pytest.raises(TimeoutError):  # and nothing more
            while True:
                message = await messages.next_msg(timeout=0.5)
                event = events_pb2.SubscriptionUpdated.FromString(message.data)
                if event.organisation_id == organisation_id:
                    received.append(event)
                    break
    finally:
        await messages.unsubscribe()
    assert [(event.subscription_id, event.change) for event in received] == expected
    assert all(event.event_id.startswith("subscription.updated:") for event in received)
    assert len({event.event_id for event in received}) == len(expected)
