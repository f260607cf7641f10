"""Subscription use cases against in-memory repositories: one active subscription per organisation, starts
not before the organisation, plan changes and cancellations under a lock on the subscription."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing_runtime.errors import AlreadyExists, InvalidArgument, NotFound
from services.invoicing.adapters import messages
from services.invoicing.domain.subscription import SubscriptionStatus
from services.invoicing.service import catalog, organisations, subscriptions
from services.invoicing.service.organisations import CreateOrganisation
from tests.unit.services.invoicing.service.fakes import STORED_AT, FakeOutbox, FakeUnitOfWork, Tables

NOW = STORED_AT + timedelta(days=1)  # organisations in the fakes are created at STORED_AT


@pytest.fixture
async def setup():
    """(tables, organisation id, first plan version id, second plan version id)"""
    tables = Tables()
    organisation, _ = await organisations.create_organisation(
        FakeUnitOfWork(tables), FakeOutbox(),
        CreateOrganisation(name="Acme", billing_email="a@acme.example", billing_currency="INR", country="IN",
                           state_code="29", timezone="Asia/Kolkata"),
    )
    basic, _ = await catalog.create_plan(FakeUnitOfWork(tables), code="basic", name="Basic",
                                         terms={"currency": "INR", "base_fee": "999"})
    pro, _ = await catalog.create_plan(FakeUnitOfWork(tables), code="pro", name="Pro",
                                       terms={"currency": "INR", "base_fee": "4999"})
    tables.locks.clear()
    return tables, organisation.id, basic.latest_version.id, pro.latest_version.id


async def subscribe(tables, organisation_id, **more):
    return await subscriptions.create_subscription(FakeUnitOfWork(tables), FakeOutbox(),
                                                   organisation_id=organisation_id,
                                                   now=NOW, **more)


async def change(tables, **fields):
    return await subscriptions.change_plan(FakeUnitOfWork(tables), FakeOutbox(), **fields)


async def cancel(tables, **fields):
    return await subscriptions.cancel_subscription(FakeUnitOfWork(tables), FakeOutbox(), **fields)


async def test_a_subscription_starts_at_the_start_of_its_day_in_the_organisations_zone(setup):
    tables, organisation_id, basic, _ = setup
    subscription, created = await subscribe(tables, organisation_id, plan_code="basic", start_date="2026-11-22")
    assert created and subscription.status is SubscriptionStatus.ACTIVE
    assert subscription.current_phase.plan_version_id == basic
    assert subscription.current_phase.starts_at == datetime(2026, 11, 21, 18, 30, tzinfo=UTC)  # 00:00 IST
    assert tables.locks[0] == f"organisation {organisation_id}"


async def test_one_active_subscription_per_organisation_unless_the_same_key_repeats(setup):
    tables, organisation_id, basic, pro = setup
    first, _ = await subscribe(tables, organisation_id, plan_version_id=basic, idempotency_key="s1")
    again, created = await subscribe(tables, organisation_id, plan_version_id=basic, idempotency_key="s1")
    assert (again, created) == (first, False)
    uow = FakeUnitOfWork(tables)
    with pytest.raises(AlreadyExists) as raised:
        await subscriptions.create_subscription(uow, FakeOutbox(), organisation_id=organisation_id,
                                                plan_version_id=pro, now=NOW)
    assert raised.value.field == "organisation_id" and uow.rollbacks == 1 and len(tables.subscriptions) == 1


async def test_a_subscription_canceled_at_a_period_end_that_has_come_makes_way(setup):
    tables, organisation_id, basic, pro = setup
    first, _ = await subscribe(tables, organisation_id, plan_version_id=basic)
    ending = await cancel(tables, subscription_id=first.id,
                          at_period_end=True, now=NOW)
    assert ending.cancel_at_period_end and ending.status is SubscriptionStatus.ACTIVE
    assert ending.ends_at is not None
    period_end_day = ending.ends_at.astimezone(ZoneInfo("Asia/Kolkata")).date().isoformat()  # the 1st, in IST
    second, created = await subscribe(tables, organisation_id, plan_version_id=pro, start_date=period_end_day)
    assert created and second.id != first.id
    old = await subscriptions.get_subscription(FakeUnitOfWork(tables), first.id)
    assert old.status is SubscriptionStatus.CANCELED


async def test_refusals_name_the_field(setup):
    tables, organisation_id, basic, _ = setup
    cases = [
        ({"organisation_id": organisation_id, "plan_version_id": basic, "start_date": "2026-11-01"}, InvalidArgument,
         "start_date"),  # before the organisation existed
        ({"organisation_id": organisation_id, "plan_version_id": basic, "start_date": "21/11/2026"}, InvalidArgument,
         "start_date"),
        ({"organisation_id": organisation_id, "plan_version_id": basic, "plan_code": "basic"}, InvalidArgument,
         "plan_version_id"),
        ({"organisation_id": "", "plan_version_id": basic}, InvalidArgument, "organisation_id"),
        ({"organisation_id": "org_01KNOSUCHORGANISATION00000", "plan_version_id": basic}, NotFound, None),
        ({"organisation_id": organisation_id, "plan_code": "nothing"}, NotFound, None),
    ]
    for arguments, error, field in cases:
        with pytest.raises(error) as raised:
            await subscribe(tables, **arguments)
        assert raised.value.field == field, arguments
    assert tables.subscriptions == {}


async def test_a_plan_change_adds_a_phase_and_a_repeat_changes_nothing(setup):
    tables, organisation_id, basic, pro = setup
    subscription, _ = await subscribe(tables, organisation_id, plan_version_id=basic)
    tables.locks.clear()
    changed, did = await change(tables, subscription_id=subscription.id,
                                plan_code="pro", effective_date="2026-12-01", now=NOW)
    assert did and [p.plan_version_id for p in changed.phases] == [basic, pro]
    assert tables.locks[0] == f"subscription {subscription.id}"
    same, did_again = await change(tables, subscription_id=subscription.id,
                                   plan_version_id=pro, effective_date="2026-12-01", now=NOW)
    assert (same, did_again) == (changed, False)
    with pytest.raises(InvalidArgument) as raised:
        await change(tables, subscription_id=subscription.id,
                     plan_version_id=basic, effective_date="2026-11-01", now=NOW)
    assert raised.value.field == "effective_date"  # the domain's effective_at, as the request named it


async def test_cancel_now_and_again(setup):
    tables, organisation_id, basic, _ = setup
    subscription, _ = await subscribe(tables, organisation_id, plan_version_id=basic)
    canceled = await cancel(tables, subscription_id=subscription.id,
                            at_period_end=False, now=NOW)
    assert canceled.status is SubscriptionStatus.CANCELED and canceled.ends_at == NOW
    again = await cancel(tables, subscription_id=subscription.id,
                         at_period_end=False, now=NOW + timedelta(hours=1))
    assert again == canceled
    listed, _ = await subscriptions.list_subscriptions(FakeUnitOfWork(tables), organisation_id, 0, "")
    assert listed == [canceled]
    with pytest.raises(NotFound):
        await cancel(tables, subscription_id="sub_01KNOSUCHSUBSCRIPTION0000",
                     at_period_end=False, now=NOW)


def announced(tables):
    """(organisation id, subscription id, change) of each subscription.updated recorded, in order."""
    found = []
    for subject, event_id, message in tables.outbox:
        if subject == messages.SUBSCRIPTION_UPDATED:
            assert event_id == message.event_id and event_id.startswith("subscription.updated:")
            found.append((message.organisation_id, message.subscription_id, message.change))
    return found


async def test_each_change_is_announced_once_in_its_transaction_and_a_repeat_announces_nothing(setup):
    tables, organisation_id, basic, pro = setup
    tables.outbox.clear()
    first, _ = await subscribe(tables, organisation_id, plan_version_id=basic, idempotency_key="s1")
    await subscribe(tables, organisation_id, plan_version_id=basic, idempotency_key="s1")
    await change(tables, subscription_id=first.id, plan_code="pro", effective_date="2026-12-01", now=NOW)
    await change(tables, subscription_id=first.id, plan_code="pro", effective_date="2026-12-01", now=NOW)
    await cancel(tables, subscription_id=first.id, at_period_end=True, now=NOW)
    await cancel(tables, subscription_id=first.id, at_period_end=True, now=NOW)
    await cancel(tables, subscription_id=first.id, at_period_end=False, now=NOW)
    await cancel(tables, subscription_id=first.id, at_period_end=False, now=NOW)
    assert announced(tables) == [
        (organisation_id, first.id, "created"),
        (organisation_id, first.id, "plan_changed"),
        (organisation_id, first.id, "canceled"),  # at period end
        (organisation_id, first.id, "canceled"),  # now
    ]
    assert len({event_id for _, event_id, _ in tables.outbox}) == len(tables.outbox)


async def test_a_refused_change_announces_nothing(setup):
    tables, organisation_id, basic, pro = setup
    first, _ = await subscribe(tables, organisation_id, plan_version_id=basic)
    tables.outbox.clear()
    with pytest.raises(AlreadyExists):
        await subscribe(tables, organisation_id, plan_version_id=pro)
    with pytest.raises(InvalidArgument):
        await change(tables, subscription_id=first.id, plan_version_id=pro, effective_date="2026-11-01", now=NOW)
    assert announced(tables) == []
