"""What ingest's use cases need from storage, as Protocols: the adapters implement them over PostgreSQL
(:mod:`services.ingest.adapters.unit_of_work`), unit tests with in-memory fakes
(``tests/unit/services/ingest/service/fakes.py``). Use cases see domain objects only, never SQL or rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import Message

from services.ingest.domain.api_key import ApiKey
from services.ingest.domain.project import Project
from services.ingest.domain.quota import MetricRule, QuotaQuestion, QuotaWindow


class Projects(Protocol):
    async def add(
        self, project_id: str, organisation_id: str, name: str, idempotency_key: str = ""
    ) -> tuple[Project, bool]:
        """Store a new project; (project, created). The same idempotency key with the same organisation and name
        returns the first project with created False, with anything else Conflict; a name the organisation
        already uses is AlreadyExists."""
        ...

    async def get(self, project_id: str) -> Project | None: ...

    async def list(self, *, organisation_id: str, limit: int, after: str | None) -> list[Project]:
        """Up to ``limit`` projects in id order after ``after``, of one organisation unless it is ""."""
        ...


class ApiKeys(Protocol):
    async def add(
        self, *, key_id: str, project_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None
    ) -> ApiKey: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def get_with_project(self, prefix: str) -> tuple[ApiKey, Project] | None:
        """The key with this prefix and its project."""
        ...

    async def list(self, *, project_id: str, limit: int, after: str | None) -> list[ApiKey]:
        """Up to ``limit`` keys in id order after ``after``, of one project unless it is ""."""
        ...

    async def revoke(self, key_id: str) -> tuple[ApiKey, bool] | None:
        """Revoke once, keeping the first revocation time; (key, newly revoked), None for an unknown key."""
        ...


class IngestTransaction(Protocol):
    """One transaction over ingest's repositories: ``async with uow:`` commits when the block ends normally and
    rolls back on an exception. The repositories are usable inside the block only."""

    @property
    def projects(self) -> Projects: ...

    @property
    def api_keys(self) -> ApiKeys: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class EventOutbox(Protocol):
    """Records an event in the transaction of ``uow`` (``billing_runtime.outbox.Outbox``): it is published if,
    and only if, that transaction commits. ``uow`` is whatever transaction the implementation writes with."""

    async def record(self, uow: Any, subject: str, event_id: str, message: Message) -> None: ...


class QuotaSource(Protocol):
    """Metering's answers about quotas and metrics (:mod:`services.ingest.adapters.metering_quotas`). Both raise
    a ``DomainError`` (usually Unavailable) when metering cannot answer."""

    async def check(
        self, organisation_id: str, questions: Sequence[QuotaQuestion], now_seconds: float
    ) -> list[QuotaWindow]:
        """One window per question, in order: the billing period containing the question's time, its usage and
        the ceiling ingest enforces (judged at ``now_seconds``)."""
        ...

    async def metric_rules(self, organisation_id: str) -> dict[str, MetricRule]:
        """How events of each of the organisation's active metrics add to usage, by code."""
        ...
