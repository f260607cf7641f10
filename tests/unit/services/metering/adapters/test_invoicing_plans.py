"""The plan-in-force cache of InvoicingPlans, with invoicing's answer replaced by an in-memory one (the gRPC call
itself is exercised by the integration tests)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.errors import Unavailable
from billing_runtime.timestamps import to_timestamp
from services.metering.adapters.invoicing_plans import InvoicingPlans, plan_from_pb
from services.metering.domain.plan_in_force import Cap, PlanInForce

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def plan(version: int = 1, start: datetime = START, end: datetime = END) -> PlanInForce:
    return PlanInForce("org_1", "INR", "UTC", True, start, end, end, plan_code="standard", plan_version=version)


class Directory(InvoicingPlans):
    """InvoicingPlans whose question to invoicing is answered from ``answers`` (None: unknown organisation)."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.clock_now = 0.0
        super().__init__("127.0.0.1:1", ttl, clock=lambda: self.clock_now)
        self.answer: PlanInForce | None | Exception = plan()
        self.asked: list[datetime] = []
        self.gate: asyncio.Event | None = None

    async def _ask(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        self.asked.append(at)
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
async def plans():
    directory = Directory()
    yield directory
    await directory.close()


async def test_an_answer_is_kept_for_its_ttl_then_asked_again(plans):
    assert (await plans.plan_in_force("org_1", NOW)).plan_version == 1
    plans.answer = plan(2)
    plans.clock_now = 29.9
    assert (await plans.plan_in_force("org_1", NOW)).plan_version == 1
    plans.clock_now = 30.0
    assert (await plans.plan_in_force("org_1", NOW)).plan_version == 2
    assert len(plans.asked) == 2


async def test_an_answer_serves_only_times_it_holds_at(plans):
    await plans.plan_in_force("org_1", NOW)
    plans.answer = plan(1, END, datetime(2026, 5, 1, tzinfo=UTC))
    april = await plans.plan_in_force("org_1", END)
    assert april.period_start == END
    assert plans.cached("org_1", NOW).period_start == START  # both periods kept
    assert len(plans.asked) == 2


async def test_an_announced_change_drops_the_answer_at_once(plans):
    await plans.plan_in_force("org_1", NOW)
    plans.answer = plan(2)
    plans.invalidate("org_1")
    assert (await plans.plan_in_force("org_1", NOW)).plan_version == 2


async def test_concurrent_misses_share_one_call(plans):
    plans.gate = asyncio.Event()
    waiting = [asyncio.create_task(plans.plan_in_force("org_1", NOW)) for _ in range(10)]
    await asyncio.sleep(0)
    plans.gate.set()
    answers = await asyncio.gather(*waiting)
    assert len(plans.asked) == 1
    assert {answer.plan_version for answer in answers} == {1}


async def test_an_answer_fetched_across_an_announcement_is_not_kept(plans):
    plans.gate = asyncio.Event()
    fetching = asyncio.create_task(plans.plan_in_force("org_1", NOW))
    await asyncio.sleep(0)
    plans.invalidate("org_1")
    plans.gate.set()
    await fetching
    assert plans.cached("org_1", NOW) is None


async def test_an_unknown_organisation_is_none(plans):
    plans.answer = None
    assert await plans.plan_in_force("org_x", NOW) is None


async def test_while_invoicing_is_down_an_expired_answer_that_holds_is_used(plans):
    await plans.plan_in_force("org_1", NOW)
    plans.invalidate("org_1")
    plans.answer = Unavailable("invoicing down")
    assert (await plans.plan_in_force("org_1", NOW)).plan_version == 1
    with pytest.raises(Unavailable):  # nothing cached holds in April
        await plans.plan_in_force("org_1", END + timedelta(days=1))


def test_invoicings_answer_in_meterings_words():
    response = invoicing_pb2.GetPlanInForceResponse(
        organisation=invoicing_pb2.Organisation(id="org_1", billing_currency="INR", timezone="Asia/Kolkata"),
        found=True, subscription_id="sub_1",
        plan_version=invoicing_pb2.PlanVersion(
            id="plv_1", plan_code="standard", version=3, terms=invoicing_pb2.PlanTerms(
            enforce_quotas_at_ingest=True,
            quotas=[invoicing_pb2.Quota(metric_code="api.calls", limit="1000", cap=invoicing_pb2.QUOTA_CAP_HARD,
                                        grace_percent="10", grace_hours=24),
                    invoicing_pb2.Quota(metric_code="storage", limit="5.5", cap=invoicing_pb2.QUOTA_CAP_SOFT)],
            entitlements={"sso": invoicing_pb2.EntitlementValue(bool_value=True),
                          "seats": invoicing_pb2.EntitlementValue(number_value="10")}),
        ),
        period_start=to_timestamp(START), period_end=to_timestamp(END),
        phase_end=to_timestamp(NOW),
        entitlement_overrides={"support": invoicing_pb2.EntitlementValue(string_value="priority")},
    )
    converted = plan_from_pb(response)
    assert (converted.plan_code, converted.plan_version, converted.valid_until) == ("standard", 3, NOW)
    calls = converted.quota("api.calls")
    assert (calls.limit, calls.cap, calls.grace_percent, calls.grace_hours) == (1000, Cap.HARD, 10, 24)
    assert converted.quota("storage").cap is Cap.SOFT
    assert dict(converted.entitlements) == {"sso": True, "seats": 10}
    assert dict(converted.overrides) == {"support": "priority"}
    assert converted.enforce_quotas_at_ingest and converted.timezone == "Asia/Kolkata"

