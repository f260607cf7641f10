"""Creating, reading and listing projects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.ingest.adapters import messages
from services.ingest.domain.project import Project, validate_project_name
from services.ingest.service.ports import EventOutbox, IngestTransaction


class OrganisationDirectory(Protocol):
    async def exists(self, organisation_id: str) -> bool: ...


@dataclass(frozen=True)
class CreateProject:
    organisation_id: str
    name: str
    idempotency_key: str = ""


async def create_project(
    uow: IngestTransaction, outbox: EventOutbox, organisations: OrganisationDirectory, command: CreateProject
) -> tuple[Project, bool]:
    """Create a project in an organisation that invoicing knows. Returns (project, created)."""
    name = validate_project_name(command.name)
    if not command.organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    # Asked before the transaction opens: no row lock is held while another service answers.
    if not await organisations.exists(command.organisation_id):
        raise InvalidArgument(f"no organisation with id {command.organisation_id!r}", field="organisation_id")
    async with uow:
        project, created = await uow.projects.add(new_id("prj"), command.organisation_id, name, command.idempotency_key)
        if created:
            event_id = new_id("evt")
            await outbox.record(uow, messages.PROJECT_CREATED, event_id, messages.project_created(event_id, project))
    return project, created


async def get_project(uow: IngestTransaction, project_id: str) -> Project:
    if not project_id:
        raise InvalidArgument("is required", field="project_id")
    async with uow:
        project = await uow.projects.get(project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id!r}")
    return project


async def list_projects(
    uow: IngestTransaction, organisation_id: str, page_size: int, page_token: str
) -> tuple[list[Project], str]:
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        page = await uow.projects.list(organisation_id=organisation_id, limit=size + 1, after=after)
    return paging.split_page(page, size)
