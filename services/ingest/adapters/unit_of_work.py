"""Ingest's unit of work: one PostgreSQL transaction with ingest's repositories on it."""

from __future__ import annotations

from types import TracebackType

from billing_runtime.database import UnitOfWork
from services.ingest.adapters.repository import ApiKeyRepository, ProjectRepository


class IngestUnitOfWork(UnitOfWork):
    """The transaction's repositories are made when the block opens (they need its connection) and dropped when
    it ends, so a use case reaches storage only through ``uow.projects`` and ``uow.api_keys`` inside its
    ``async with uow`` and never builds a repository itself (which is what lets tests fake them)."""

    _projects: ProjectRepository | None = None
    _api_keys: ApiKeyRepository | None = None

    @property
    def projects(self) -> ProjectRepository:
        if self._projects is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._projects

    @property
    def api_keys(self) -> ApiKeyRepository:
        if self._api_keys is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._api_keys

    async def __aenter__(self) -> IngestUnitOfWork:
        await super().__aenter__()
        self._projects = ProjectRepository(self.connection)
        self._api_keys = ApiKeyRepository(self.connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._projects = self._api_keys = None
        await super().__aexit__(exc_type, exc, tb)
