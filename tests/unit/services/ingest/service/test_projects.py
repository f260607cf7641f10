"""Project use cases against in-memory repositories: validation, the question to invoicing before the
transaction, idempotent creation with its event, paging."""

from __future__ import annotations

import pytest

from billing_runtime.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from services.ingest.adapters import messages
from services.ingest.service import projects
from services.ingest.service.projects import CreateProject
from tests.unit.services.ingest.service.fakes import FakeOrganisations, FakeOutbox, FakeUnitOfWork, Tables


@pytest.fixture
def tables() -> Tables:
    return Tables()


@pytest.fixture
def uow(tables: Tables) -> FakeUnitOfWork:
    return FakeUnitOfWork(tables)


class WatchingOrganisations(FakeOrganisations):
    """Fails the test if invoicing is asked while the transaction is open (a row lock held across a call)."""

    def __init__(self, uow: FakeUnitOfWork, *known: str) -> None:
        super().__init__(*known)
        self._uow = uow

    async def exists(self, organisation_id: str) -> bool:
        assert not self._uow.open, "invoicing must be asked before the transaction opens"
        return await super().exists(organisation_id)


async def test_a_project_is_created_with_its_event_in_the_same_transaction(uow, tables):
    project, created = await projects.create_project(
        uow, FakeOutbox(), WatchingOrganisations(uow, "org_1"), CreateProject("org_1", "  web  ")
    )
    assert created and project.name == "web" and project.organisation_id == "org_1"
    assert project.id.startswith("prj_") and tables.projects == {project.id: project}
    [(subject, event_id, message)] = tables.outbox
    assert subject == messages.PROJECT_CREATED and message == messages.project_created(event_id, project)
    assert uow.commits == 1


async def test_the_same_idempotency_key_returns_the_first_project_and_records_no_second_event(tables):
    command = CreateProject("org_1", "web", idempotency_key="k1")
    first, created = await projects.create_project(
        FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations("org_1"), command
    )
    again, created_again = await projects.create_project(
        FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations("org_1"), command
    )
    assert (created, created_again) == (True, False) and again == first
    assert len(tables.outbox) == 1
    with pytest.raises(Conflict):
        await projects.create_project(
            FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations("org_1"),
            CreateProject("org_1", "other", idempotency_key="k1"),
        )


async def test_a_name_already_used_in_the_organisation_rolls_back_and_records_nothing(tables):
    await projects.create_project(FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations("org_1"),
                                  CreateProject("org_1", "web"))
    uow = FakeUnitOfWork(tables)
    with pytest.raises(AlreadyExists):
        await projects.create_project(uow, FakeOutbox(), FakeOrganisations("org_1"), CreateProject("org_1", "web"))
    assert uow.rollbacks == 1 and len(tables.projects) == 1 and len(tables.outbox) == 1


async def test_an_organisation_invoicing_does_not_know_is_refused_without_a_transaction(uow, tables):
    organisations = FakeOrganisations("org_1")
    with pytest.raises(InvalidArgument) as raised:
        await projects.create_project(uow, FakeOutbox(), organisations, CreateProject("org_unknown", "web"))
    assert raised.value.field == "organisation_id" and organisations.asked == ["org_unknown"]
    assert (uow.commits, uow.rollbacks, tables.projects) == (0, 0, {})


@pytest.mark.parametrize(("command", "field"), [(CreateProject("", "web"), "organisation_id"),
                                                (CreateProject("org_1", ""), "name"),
                                                (CreateProject("org_1", "-bad"), "name")])
async def test_bad_commands_are_refused_before_asking_anyone(uow, command, field):
    organisations = FakeOrganisations("org_1")
    with pytest.raises(InvalidArgument) as raised:
        await projects.create_project(uow, FakeOutbox(), organisations, command)
    assert raised.value.field == field and organisations.asked == [] and uow.commits == 0


async def test_get_project(tables):
    project, _ = await projects.create_project(FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations("org_1"),
                                               CreateProject("org_1", "web"))
    assert await projects.get_project(FakeUnitOfWork(tables), project.id) == project
    with pytest.raises(NotFound):
        await projects.get_project(FakeUnitOfWork(tables), "prj_01KNOSUCHPROJECT0000000000")
    with pytest.raises(InvalidArgument):
        await projects.get_project(FakeUnitOfWork(tables), "")


async def test_projects_are_listed_page_by_page_per_organisation(tables):
    made = []
    for organisation_id, name in [("org_1", "a"), ("org_2", "b"), ("org_1", "c"), ("org_1", "d")]:
        project, _ = await projects.create_project(
            FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations(organisation_id),
            CreateProject(organisation_id, name),
        )
        made.append(project)
    first, token = await projects.list_projects(FakeUnitOfWork(tables), "org_1", 2, "")
    second, last = await projects.list_projects(FakeUnitOfWork(tables), "org_1", 2, token)
    # Id order (ids made in one millisecond are not in creation order), one organisation's only.
    assert first + second == sorted((p for p in made if p.organisation_id == "org_1"), key=lambda p: p.id)
    assert token == first[-1].id and last == ""
    everything, _ = await projects.list_projects(FakeUnitOfWork(tables), "", 0, "")
    assert everything == sorted(made, key=lambda p: p.id)
