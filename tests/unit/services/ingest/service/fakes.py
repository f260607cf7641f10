"""In-memory stand-ins for ingest's ports (``services.ingest.service.ports``), keeping the contracts the
PostgreSQL repositories keep: idempotency keys, unique project names per organisation, revoke-once, id-ordered
pages, and a transaction that rolls back on an exception (events recorded in it included)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from billing_runtime.errors import AlreadyExists, Conflict
from services.ingest.domain.api_key import ApiKey
from services.ingest.domain.project import Project, project_fingerprint
from tests.unit.services.fake_transaction import FakeOutbox, FakeTransaction

__all__ = ["FakeOutbox", "FakeOrganisations", "FakeUnitOfWork", "Tables"]

CREATED_AT = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Tables:
    """What the database holds; a transaction works on it and restores it when rolled back."""

    projects: dict[str, Project] = field(default_factory=dict)
    project_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # idempotency key -> (fingerprint, id)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    outbox: list[tuple[str, str, Message]] = field(default_factory=list)  # (subject, event id, message)


def _page(items: dict[str, Any], limit: int, after: str | None, keep) -> list[Any]:
    chosen = [item for key, item in sorted(items.items()) if (after is None or key > after) and keep(item)]
    return chosen[:limit]


class FakeProjects:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def add(
        self, project_id: str, organisation_id: str, name: str, idempotency_key: str = ""
    ) -> tuple[Project, bool]:
        fingerprint = project_fingerprint(organisation_id, name)
        if idempotency_key in self._tables.project_keys:
            first_fingerprint, first_id = self._tables.project_keys[idempotency_key]
            if first_fingerprint != fingerprint:
                raise Conflict("was already used for a different request", field="idempotency_key")
            return self._tables.projects[first_id], False
        if any(p.organisation_id == organisation_id and p.name == name for p in self._tables.projects.values()):
            raise AlreadyExists(f"organisation {organisation_id} already has a project named {name!r}", field="name")
        project = Project(id=project_id, organisation_id=organisation_id, name=name, created_at=CREATED_AT)
        self._tables.projects[project_id] = project
        if idempotency_key:
            self._tables.project_keys[idempotency_key] = (fingerprint, project_id)
        return project, True

    async def get(self, project_id: str) -> Project | None:
        return self._tables.projects.get(project_id)

    async def list(self, *, organisation_id: str, limit: int, after: str | None) -> list[Project]:
        return _page(self._tables.projects, limit, after,
                     lambda p: not organisation_id or p.organisation_id == organisation_id)


class FakeApiKeys:
    def __init__(self, tables: Tables, clock) -> None:
        self._tables = tables
        self._clock = clock

    async def add(
        self, *, key_id: str, project_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None
    ) -> ApiKey:
        key = ApiKey(id=key_id, project_id=project_id, name=name, prefix=prefix, secret_hash=secret_hash,
                     created_at=CREATED_AT, expires_at=expires_at)
        self._tables.api_keys[key_id] = key
        return key

    async def get(self, key_id: str) -> ApiKey | None:
        return self._tables.api_keys.get(key_id)

    async def get_with_project(self, prefix: str) -> tuple[ApiKey, Project] | None:
        for key in self._tables.api_keys.values():
            if key.prefix == prefix:
                return key, self._tables.projects[key.project_id]
        return None

    async def list(self, *, project_id: str, limit: int, after: str | None) -> list[ApiKey]:
        return _page(self._tables.api_keys, limit, after, lambda k: not project_id or k.project_id == project_id)

    async def revoke(self, key_id: str) -> tuple[ApiKey, bool] | None:
        key = self._tables.api_keys.get(key_id)
        if key is None:
            return None
        if key.revoked_at is not None:
            return key, False
        revoked = replace(key, revoked_at=self._clock())
        self._tables.api_keys[key_id] = revoked
        return revoked, True


class FakeUnitOfWork(FakeTransaction):
    """Ingest's transaction over :class:`Tables`."""

    def __init__(self, tables: Tables, clock=lambda: datetime(2026, 11, 21, 12, 0, tzinfo=UTC)) -> None:
        super().__init__(tables)
        self._clock = clock

    @property
    def projects(self) -> FakeProjects:
        return FakeProjects(self.inside())

    @property
    def api_keys(self) -> FakeApiKeys:
        return FakeApiKeys(self.inside(), self._clock)


class FakeOrganisations:
    """Invoicing, as ingest asks it: which organisations exist; ``asked`` says whether it was asked."""

    def __init__(self, *known: str) -> None:
        self.known = set(known)
        self.asked: list[str] = []

    async def exists(self, organisation_id: str) -> bool:
        self.asked.append(organisation_id)
        return organisation_id in self.known
