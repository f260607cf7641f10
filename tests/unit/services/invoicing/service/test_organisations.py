"""Organisation use cases against in-memory repositories: validation, idempotent creation with its event."""

from __future__ import annotations

import pytest

from billing_runtime.errors import Conflict, InvalidArgument, NotFound
from services.invoicing.adapters import messages
from services.invoicing.service import organisations
from services.invoicing.service.organisations import CreateOrganisation
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables

ACME = CreateOrganisation(name=" Acme Analytics ", billing_email="billing@acme.example", billing_currency="inr",
                          country="in", state_code="29", timezone="Asia/Kolkata")


async def test_an_organisation_is_stored_normalised_and_announced_in_the_same_transaction():
    tables = Tables()
    uow = FakeUnitOfWork(tables)
    organisation, created = await organisations.create_organisation(uow, FakeOutbox(), ACME)
    assert created and organisation.id.startswith("org_")
    assert (organisation.details.name, organisation.details.billing_currency) == ("Acme Analytics", "INR")
    [(subject, event_id, message)] = tables.outbox
    assert subject == messages.ORGANISATION_CREATED
    assert message == messages.organisation_created(event_id, organisation)
    assert uow.commits == 1


async def test_a_repeat_with_the_same_key_returns_the_first_and_announces_once():
    tables = Tables()
    command = CreateOrganisation(**{**ACME.__dict__, "idempotency_key": "k1"})
    first, _ = await organisations.create_organisation(FakeUnitOfWork(tables), FakeOutbox(), command)
    again, created = await organisations.create_organisation(FakeUnitOfWork(tables), FakeOutbox(), command)
    assert (again, created) == (first, False) and len(tables.outbox) == 1
    other = CreateOrganisation(**{**command.__dict__, "name": "Someone Else"})
    uow = FakeUnitOfWork(tables)
    with pytest.raises(Conflict):
        await organisations.create_organisation(uow, FakeOutbox(), other)
    assert uow.rollbacks == 1 and len(tables.organisations) == 1


async def test_invalid_details_are_refused_before_any_transaction():
    uow = FakeUnitOfWork(Tables())
    with pytest.raises(InvalidArgument) as raised:
        await organisations.create_organisation(uow, FakeOutbox(), CreateOrganisation(**{**ACME.__dict__,
                                                                                         "gstin": "nonsense"}))
    assert raised.value.field == "gstin" and (uow.commits, uow.rollbacks) == (0, 0)


async def test_get_and_list():
    tables = Tables()
    made = [
        (await organisations.create_organisation(
            FakeUnitOfWork(tables), FakeOutbox(), CreateOrganisation(**{**ACME.__dict__, "name": f"Org {n}"})
        ))[0]
        for n in range(3)
    ]
    assert await organisations.get_organisation(FakeUnitOfWork(tables), made[1].id) == made[1]
    with pytest.raises(NotFound):
        await organisations.get_organisation(FakeUnitOfWork(tables), "org_01KNOSUCHORGANISATION00000")
    with pytest.raises(InvalidArgument):
        await organisations.get_organisation(FakeUnitOfWork(tables), "")
    first, token = await organisations.list_organisations(FakeUnitOfWork(tables), 2, "")
    rest, last = await organisations.list_organisations(FakeUnitOfWork(tables), 2, token)
    assert first + rest == sorted(made, key=lambda o: o.id) and last == ""
