"""Entitlement overrides against in-memory repositories: set, replace, remove, list; each change announced once
in its transaction, a repeat announcing nothing; refusals naming the field; unknown organisations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.invoicing.adapters import messages
from services.invoicing.service import entitlement_overrides as overrides
from services.invoicing.service import organisations
from services.invoicing.service.organisations import CreateOrganisation
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables


@pytest.fixture
async def setup():
    tables = Tables()
    organisation, _ = await organisations.create_organisation(
        FakeUnitOfWork(tables), FakeOutbox(),
        CreateOrganisation(name="Acme", billing_email="a@acme.example", billing_currency="INR", country="IN",
                           state_code="29", timezone="Asia/Kolkata"),
    )
    tables.outbox.clear()
    return tables, organisation.id


async def put(tables, organisation_id, feature, value):
    return await overrides.set_entitlement_override(
        FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id, feature=feature, value=value)


async def delete(tables, organisation_id, feature):
    return await overrides.delete_entitlement_override(
        FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id, feature=feature)


def changes(tables):
    return [(message.organisation_id, message.subscription_id, message.change)
            for subject, _, message in tables.outbox if subject == messages.SUBSCRIPTION_UPDATED]


async def test_set_replace_delete_and_list_announcing_only_real_changes(setup):
    tables, organisation_id = setup
    assert await put(tables, organisation_id, "seats", {"number_value": "10"}) == {"seats": Decimal(10)}
    assert await put(tables, organisation_id, "seats", {"number_value": "10.00"}) == {"seats": Decimal(10)}
    assert await put(tables, organisation_id, "sso", {"bool_value": True}) == {"seats": 10, "sso": True}
    assert await put(tables, organisation_id, "seats", {"string_value": "10"}) == {"seats": "10", "sso": True}
    assert await delete(tables, organisation_id, "sso") == {"seats": "10"}
    assert await delete(tables, organisation_id, "sso") == {"seats": "10"}
    listed = await overrides.list_entitlement_overrides(FakeUnitOfWork(tables), organisation_id)
    assert listed == {"seats": "10"}
    # seats=10, sso, seats as text, sso removed: four changes; the repeats announced nothing
    assert changes(tables) == [(organisation_id, "", "entitlement_override")] * 4
    assert tables.locks.count(f"organisation {organisation_id}") == 6


async def test_a_grant_of_true_is_not_one_seat(setup):
    tables, organisation_id = setup
    await put(tables, organisation_id, "seats", {"bool_value": True})
    assert await put(tables, organisation_id, "seats", {"number_value": "1"}) == {"seats": Decimal(1)}
    assert len(changes(tables)) == 2


@pytest.mark.parametrize(
    ("feature", "value", "field"),
    [
        ("Seats", {"number_value": "1"}, "feature"),
        ("", {"number_value": "1"}, "feature"),
        ("seats", {}, "value"),
        ("seats", {"number_value": "0.0000001"}, "value"),
        ("seats", {"number_value": "1000000000000"}, "value"),
        ("support", {"string_value": "x" * 257}, "value"),
    ],
)
async def test_refusals_name_the_field_and_change_nothing(setup, feature, value, field):
    tables, organisation_id = setup
    with pytest.raises(InvalidArgument) as raised:
        await put(tables, organisation_id, feature, value)
    assert raised.value.field == field
    assert tables.overrides == {} and changes(tables) == []


async def test_unknown_organisations_are_not_found(setup):
    tables, _ = setup
    missing = "org_01KNOSUCHORGANISATION00000"
    with pytest.raises(NotFound):
        await put(tables, missing, "sso", {"bool_value": True})
    with pytest.raises(NotFound):
        await delete(tables, missing, "sso")
    with pytest.raises(NotFound):
        await overrides.list_entitlement_overrides(FakeUnitOfWork(tables), missing)
    assert changes(tables) == []


async def test_at_most_100_overrides(setup):
    tables, organisation_id = setup
    for index in range(100):
        await put(tables, organisation_id, f"f{index}", {"bool_value": True})
    with pytest.raises(FailedPrecondition):
        await put(tables, organisation_id, "one-more", {"bool_value": True})
    assert len(await put(tables, organisation_id, "f0", {"bool_value": False})) == 100  # replacing is fine
