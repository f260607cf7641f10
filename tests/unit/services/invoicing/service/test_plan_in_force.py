"""GetPlanInForce's use case against in-memory repositories: the period period close would bill (anchor day,
organisation zone), the plan version of the segment containing the moment, when that phase ends inside the period,
and the calendar month with nothing in force."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing_runtime.errors import InvalidArgument, NotFound
from services.invoicing.service import catalog, entitlement_overrides, organisations, plan_in_force, subscriptions
from services.invoicing.service.organisations import CreateOrganisation
from tests.unit.services.invoicing.service.fakes import STORED_AT, FakeOutbox, FakeUnitOfWork, Tables

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def ist(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=IST).astimezone(UTC)


@pytest.fixture
async def setup():
    """(tables, organisation id, basic version, pro version)"""
    tables = Tables()
    organisation, _ = await organisations.create_organisation(
        FakeUnitOfWork(tables), FakeOutbox(),
        CreateOrganisation(name="Acme", billing_email="a@acme.example", billing_currency="INR", country="IN",
                           state_code="29", timezone="Asia/Kolkata"),
    )
    basic, _ = await catalog.create_plan(
        FakeUnitOfWork(tables), code="basic", name="Basic",
        terms={"currency": "INR", "charges": [{"metric_code": "api_calls",
                                                "charge": {"model": "per_unit", "unit_price": "0.1"}}],
               "quotas": [{"metric_code": "api_calls", "limit": "1000", "cap": "hard", "grace_percent": "10"}],
               "enforce_quotas_at_ingest": True, "entitlements": {"seats": {"number_value": "3"}}})
    pro, _ = await catalog.create_plan(FakeUnitOfWork(tables), code="pro", name="Pro",
                                       terms={"currency": "INR", "base_fee": "4999"})
    return tables, organisation.id, basic.latest_version, pro.latest_version


async def subscribe(tables, organisation_id, version, start_date="2026-11-21", anchor=1):
    subscription, _ = await subscriptions.create_subscription(
        FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id, plan_version_id=version.id,
        start_date=start_date, billing_anchor_day=anchor, now=STORED_AT)
    return subscription


async def in_force(tables, organisation_id, at):
    return await plan_in_force.get_plan_in_force(FakeUnitOfWork(tables), organisation_id, at)


async def test_a_plan_change_mid_period_ends_the_phase_inside_the_period(setup):
    tables, organisation_id, basic, pro = setup
    subscription = await subscribe(tables, organisation_id, basic)
    await subscriptions.change_plan(FakeUnitOfWork(tables), FakeOutbox(), subscription_id=subscription.id,
                                    plan_version_id=pro.id, effective_date="2026-12-10", now=NOW)

    before = await in_force(tables, organisation_id, ist(2026, 12, 5, 12))
    assert before.found and before.subscription_id == subscription.id and before.plan_version == basic
    assert (before.period.start, before.period.end) == (ist(2026, 12, 1), ist(2027, 1, 1))
    assert before.phase_end == ist(2026, 12, 10)
    terms = before.plan_version.terms
    assert terms.enforce_quotas_at_ingest and terms.quotas[0].grace_percent == Decimal(10)
    assert terms.entitlements == {"seats": Decimal(3)}

    after = await in_force(tables, organisation_id, ist(2026, 12, 10))  # the first instant of the new phase
    assert after.plan_version == pro and after.phase_end is None
    assert (after.period.start, after.period.end) == (ist(2026, 12, 1), ist(2027, 1, 1))


async def test_a_cancellation_at_period_end_holds_to_the_end_and_then_nothing_is_in_force(setup):
    tables, organisation_id, basic, _ = setup
    subscription = await subscribe(tables, organisation_id, basic, anchor=15)
    await subscriptions.cancel_subscription(FakeUnitOfWork(tables), FakeOutbox(), subscription_id=subscription.id,
                                            at_period_end=True, now=NOW)
    ending = await in_force(tables, organisation_id, ist(2026, 12, 14, 23, 59))
    assert ending.found and (ending.period.start, ending.period.end) == (ist(2026, 11, 15), ist(2026, 12, 15))
    assert ending.phase_end is None  # it ends with the period
    ended = await in_force(tables, organisation_id, ist(2026, 12, 15))
    assert not ended.found and ended.plan_version is None and ended.subscription_id == ""
    assert (ended.period.start, ended.period.end) == (ist(2026, 12, 1), ist(2027, 1, 1))  # the calendar month


async def test_a_cancellation_now_ends_the_phase_at_that_instant(setup):
    tables, organisation_id, basic, _ = setup
    subscription = await subscribe(tables, organisation_id, basic)
    await subscriptions.cancel_subscription(FakeUnitOfWork(tables), FakeOutbox(), subscription_id=subscription.id,
                                            at_period_end=False, now=NOW)
    before = await in_force(tables, organisation_id, ist(2026, 11, 22))
    assert before.found and before.phase_end == NOW
    assert not (await in_force(tables, organisation_id, NOW)).found


async def test_without_a_subscription_the_calendar_month_and_the_overrides(setup):
    tables, organisation_id, _, _ = setup
    await entitlement_overrides.set_entitlement_override(
        FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id, feature="sso",
        value={"bool_value": True})
    answer = await in_force(tables, organisation_id, ist(2026, 11, 30, 23, 59))
    assert not answer.found and answer.overrides == {"sso": True} and answer.phase_end is None
    assert (answer.period.start, answer.period.end) == (ist(2026, 11, 1), ist(2026, 12, 1))
    assert answer.organisation.id == organisation_id


async def test_a_subscription_starting_later_in_the_month_is_when_the_answer_stops_holding(setup):
    tables, organisation_id, basic, _ = setup
    await subscribe(tables, organisation_id, basic, start_date="2026-11-26")
    answer = await in_force(tables, organisation_id, ist(2026, 11, 24))
    assert not answer.found and answer.phase_end == ist(2026, 11, 26)
    assert (await in_force(tables, organisation_id, ist(2026, 11, 26))).found


async def test_one_read_per_answer_and_unknown_organisations(setup):
    tables, organisation_id, basic, _ = setup
    await subscribe(tables, organisation_id, basic)
    tables.plan_reads = 0
    await in_force(tables, organisation_id, NOW)
    assert tables.plan_reads == 1
    with pytest.raises(NotFound):
        await in_force(tables, "org_01KNOSUCHORGANISATION00000", NOW)
    with pytest.raises(InvalidArgument) as raised:
        await in_force(tables, "", NOW)
    assert raised.value.field == "organisation_id"
