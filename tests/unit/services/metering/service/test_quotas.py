"""The quota and entitlement use cases with in-memory plans and usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing_runtime.errors import InvalidArgument, NotFound
from services.metering.domain.entitlements import EntitlementSource
from services.metering.domain.plan_in_force import Cap, PlanInForce, QuotaTerms
from services.metering.domain.quota import QuotaReason
from services.metering.service.quota_book import QuotaBook, UsageKey
from services.metering.service.quotas import MAX_CHECKS, CheckQuota, QuotaChecks
from tests.unit.services.metering.service.test_quota_book import FakeOverages, FakeUsage

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
APRIL = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
NOW = datetime(2026, 3, 31, 23, tzinfo=UTC)


def plan(period, found: bool = True) -> PlanInForce:
    return PlanInForce(
        "org_1", "INR", "UTC", found, *period, period[1], subscription_id="sub_1", plan_code="standard",
        plan_version=2, enforce_quotas_at_ingest=True,
        quotas={"api.calls": QuotaTerms("api.calls", Decimal(1000), Cap.HARD, Decimal(10), 24)},
        entitlements={"sso": True, "seats": Decimal(10)} if found else {},
        overrides={"seats": Decimal(25), "beta": "early"},
    )


class Plans:
    def __init__(self) -> None:
        self.periods = [MARCH, APRIL]
        self.found = True

    async def plan_in_force(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        if organisation_id != "org_1":
            return None
        return next(plan(p, self.found) for p in self.periods if p[0] <= at < p[1])


@pytest.fixture
def usage() -> FakeUsage:
    return FakeUsage()


@pytest.fixture
def overages() -> FakeOverages:
    return FakeOverages()


@pytest.fixture
def checks(usage, overages) -> QuotaChecks:
    return QuotaChecks(Plans(), QuotaBook(usage, overages, wall=lambda: NOW), now=lambda: NOW)


async def test_a_check_decides_on_the_periods_usage(checks, usage):
    usage.values[UsageKey("org_1", "api.calls", *MARCH)] = Decimal(999)
    answer = await checks.check(CheckQuota("org_1", "api.calls", "", None))
    assert (answer.decision.allowed, answer.decision.reason, answer.used) == (True, QuotaReason.WITHIN_LIMIT, 999)
    assert (answer.plan.plan_code, answer.usage_time, answer.quantity) == ("standard", NOW, 1)
    denied = await checks.check(CheckQuota("org_1", "api.calls", "2", None))
    assert denied.decision.reason is QuotaReason.WITHIN_GRACE  # 1001 is within the 10 % grace


async def test_an_answer_holds_until_the_usage_it_read_is_read_again(checks, usage):
    march = UsageKey("org_1", "api.calls", *MARCH)
    usage.values[march] = Decimal(10)
    answer = await checks.check(CheckQuota("org_1", "api.calls", "1", None))
    assert await checks.still_holds(answer, NOW)  # nothing changed: the same answer may be given again
    usage.values[march] = Decimal(11)
    await checks.book.refresh()  # a newer read of the same pair
    assert not await checks.still_holds(answer, NOW)
    again = await checks.check(CheckQuota("org_1", "api.calls", "1", None))
    assert again.used == 11 and await checks.still_holds(again, NOW)
    assert not await checks.still_holds(again, APRIL[0])  # another period


async def test_an_answer_whose_grace_clock_would_start_now_is_never_reused(checks, usage):
    usage.values[UsageKey("org_1", "api.calls", *MARCH)] = Decimal(999)
    over = await checks.check(CheckQuota("org_1", "api.calls", "2", None))
    assert over.decision.reason is QuotaReason.WITHIN_GRACE and over.first_over is None
    assert not await checks.still_holds(over, NOW)  # its grace end moves with the clock


async def test_over_the_limit_the_first_overage_is_recorded_and_grace_counts_from_it(checks, usage, overages):
    march = UsageKey("org_1", "api.calls", *MARCH)
    usage.values[march] = Decimal(1050)
    overages.stored[(march, Decimal(1000))] = NOW - timedelta(hours=25)
    answer = await checks.check(CheckQuota("org_1", "api.calls", "1", None))
    assert (answer.decision.allowed, answer.decision.reason) == (False, QuotaReason.GRACE_EXPIRED)


async def test_a_batch_picks_the_period_of_each_checks_time(checks, usage):
    usage.values[UsageKey("org_1", "api.calls", *MARCH)] = Decimal(1000)
    answers = await checks.check_many([
        CheckQuota("org_1", "api.calls", "0", NOW),
        CheckQuota("org_1", "api.calls", "5", APRIL[0] + timedelta(minutes=1)),
    ])
    assert [a.plan.period_start for a in answers] == [MARCH[0], APRIL[0]]
    assert [a.used for a in answers] == [1000, 0]
    assert len(usage.reads) == 1  # one pass over the book


async def test_bad_input_is_refused_naming_the_field(checks):
    with pytest.raises(InvalidArgument) as error:
        await checks.check(CheckQuota("org_1", "api.calls", "-1", None))
    assert error.value.field == "quantity"
    with pytest.raises(InvalidArgument) as error:
        await checks.check_many([CheckQuota("org_1", "api.calls", "1", None),
                                 CheckQuota("org_1", "API CALLS", "1", None)])
    assert error.value.field == "checks[1].metric_code"
    with pytest.raises(InvalidArgument) as error:
        await checks.check_many([CheckQuota("org_1", "api.calls", "1", None)] * (MAX_CHECKS + 1))
    assert error.value.field == "checks"
    with pytest.raises(InvalidArgument) as error:
        await checks.check(CheckQuota("org_1", "api.calls", "1e30", None))
    assert "1e30" in str(error.value) and error.value.field == "quantity"
    with pytest.raises(InvalidArgument) as error:
        await checks.check(CheckQuota("org_1", "api.calls", "0." + "1" * 19, None))
    assert error.value.field == "quantity"


async def test_an_unknown_organisation_is_not_found(checks):
    with pytest.raises(NotFound):
        await checks.check(CheckQuota("org_x", "api.calls", "1", None))


async def test_entitlements_are_the_plans_with_overrides_over_them(checks):
    answer = await checks.entitlements("org_1", "")
    assert [(e.feature, e.value, e.source) for e in answer.entitlements] == [
        ("beta", "early", EntitlementSource.OVERRIDE),
        ("seats", Decimal(25), EntitlementSource.OVERRIDE),
        ("sso", True, EntitlementSource.PLAN),
    ]
    [unknown] = (await checks.entitlements("org_1", "audit-log")).entitlements
    assert (unknown.value, unknown.source) == (False, EntitlementSource.UNKNOWN)
    with pytest.raises(InvalidArgument) as error:
        await checks.entitlements("org_1", "SSO!")
    assert error.value.field == "feature"


async def test_without_a_subscription_only_overrides_apply(checks):
    checks.plans.found = False
    answer = await checks.entitlements("org_1", "")
    assert [e.feature for e in answer.entitlements] == ["beta", "seats"]
    status = await checks.check(CheckQuota("org_1", "api.calls", "1", None))
    assert status.decision.reason is QuotaReason.NO_SUBSCRIPTION
