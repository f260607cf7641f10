"""Catalog use cases against in-memory repositories: a plan is stored with its first version, edits append
versions, nothing is rewritten, and repeats with an idempotency key return what was made."""

from __future__ import annotations

import pytest

from billing_runtime.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from services.invoicing.service import catalog
from tests.unit.services.invoicing.service.fakes import FakeUnitOfWork, Tables

TERMS = {"currency": "INR", "base_fee": "999"}
DEARER = {"currency": "INR", "base_fee": "1499"}


async def create(tables: Tables, code="standard", name="Standard", terms=TERMS, key=""):
    return await catalog.create_plan(FakeUnitOfWork(tables), code=code, name=name, terms=terms, idempotency_key=key)


async def test_a_plan_is_stored_with_its_first_version_under_a_lock_on_its_code():
    tables = Tables()
    plan, created = await create(tables)
    assert created and (plan.code, plan.name, plan.latest_version.version) == ("standard", "Standard", 1)
    assert str(plan.latest_version.terms.base_fee) == "999" and tables.locks == ["plan code standard"]


async def test_a_taken_code_is_refused_unless_the_same_key_repeats_the_request():
    tables = Tables()
    plan, _ = await create(tables, key="k1")
    again, created = await create(tables, key="k1")
    assert (again, created) == (plan, False) and len(tables.versions) == 1
    uow = FakeUnitOfWork(tables)
    with pytest.raises(AlreadyExists) as raised:
        await catalog.create_plan(uow, code="standard", name="Standard", terms=TERMS)
    assert raised.value.field == "code" and uow.rollbacks == 1
    with pytest.raises(Conflict):
        await create(tables, name="Renamed", key="k1")


async def test_editing_appends_numbered_versions_and_refuses_a_version_that_changes_nothing():
    tables = Tables()
    plan, _ = await create(tables)
    second, created = await catalog.create_plan_version(FakeUnitOfWork(tables), plan_id=plan.id, terms=DEARER,
                                                        name="Standard Plus", idempotency_key="v2")
    assert created and (second.version, second.plan_name) == (2, "Standard Plus")
    assert f"plan {plan.id}" in tables.locks
    repeat, created_again = await catalog.create_plan_version(FakeUnitOfWork(tables), plan_id=plan.id,
                                                              terms=DEARER, name="Standard Plus",
                                                              idempotency_key="v2")
    assert (repeat, created_again) == (second, False)
    with pytest.raises(AlreadyExists) as raised:
        await catalog.create_plan_version(FakeUnitOfWork(tables), plan_id=plan.id, terms=DEARER)
    assert raised.value.field == "terms"
    renamed = await catalog.get_plan(FakeUnitOfWork(tables), code="standard")
    assert renamed.name == "Standard Plus" and renamed.latest_version == second
    assert [v.version for v in await catalog.list_plan_versions(FakeUnitOfWork(tables), plan.id)] == [1, 2]


async def test_lookups_and_their_refusals():
    tables = Tables()
    plan, _ = await create(tables)
    assert await catalog.get_plan(FakeUnitOfWork(tables), plan_id=plan.id) == plan
    assert await catalog.get_plan_version(FakeUnitOfWork(tables), plan.latest_version.id) == plan.latest_version
    with pytest.raises(InvalidArgument):
        await catalog.get_plan(FakeUnitOfWork(tables), plan_id=plan.id, code="standard")
    for call in (
        catalog.get_plan(FakeUnitOfWork(tables), code="nothing"),
        catalog.get_plan_version(FakeUnitOfWork(tables), "plv_01KNOSUCHVERSION000000000"),
        catalog.list_plan_versions(FakeUnitOfWork(tables), "plan_01KNOSUCHPLAN00000000000"),
        catalog.create_plan_version(FakeUnitOfWork(tables), plan_id="plan_01KNOSUCHPLAN00000000000", terms=TERMS),
    ):
        with pytest.raises(NotFound):
            await call


async def test_plans_are_listed_page_by_page():
    tables = Tables()
    made = [(await create(tables, code=f"plan-{n}"))[0] for n in range(3)]
    first, token = await catalog.list_plans(FakeUnitOfWork(tables), 2, "")
    rest, last = await catalog.list_plans(FakeUnitOfWork(tables), 2, token)
    assert first + rest == sorted(made, key=lambda p: p.id) and last == ""


async def test_the_new_terms_are_part_of_the_idempotency_fingerprint_and_of_what_a_version_changes():
    tables = Tables()
    granted = {**TERMS, "entitlements": {"sso": {"bool_value": True}}}
    await create(tables, terms=granted, key="k-ent")
    with pytest.raises(Conflict):  # the same key with other entitlements is another request
        await create(tables, terms={**TERMS, "entitlements": {"sso": {"bool_value": False}}}, key="k-ent")
    with pytest.raises(Conflict):
        await create(tables, terms={**granted, "enforce_quotas_at_ingest": True}, key="k-ent")
    plan = (await catalog.get_plan(FakeUnitOfWork(tables), code="standard"))
    # One seat is not "granted": a version that changes the kind of a value changes something.
    one_seat = {**TERMS, "entitlements": {"sso": {"number_value": "1"}}}
    version, created = await catalog.create_plan_version(FakeUnitOfWork(tables), plan_id=plan.id, terms=one_seat)
    assert created and version.version == 2 and version.terms.entitlements == {"sso": 1}
    with pytest.raises(AlreadyExists):
        await catalog.create_plan_version(FakeUnitOfWork(tables), plan_id=plan.id,
                                          terms={**TERMS, "entitlements": {"sso": {"number_value": "1.0"}}})
    enforced, created = await catalog.create_plan_version(
        FakeUnitOfWork(tables), plan_id=plan.id, terms={**one_seat, "enforce_quotas_at_ingest": True})
    assert created and enforced.terms.enforce_quotas_at_ingest
