"""All SQL of the ingest service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.errors import AlreadyExists
from billing_runtime.idempotency import insert_once
from services.ingest.adapters.tables import api_keys, projects
from services.ingest.domain.api_key import ApiKey
from services.ingest.domain.project import Project, project_fingerprint


def _to_project(row: sa.Row[Any]) -> Project:
    return Project(id=row.id, organisation_id=row.organisation_id, name=row.name, created_at=row.created_at)


def _to_api_key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _page(query: sa.Select[Any], table: sa.Table, limit: int, after: str | None) -> sa.Select[Any]:
    query = query.order_by(table.c.id).limit(limit)
    return query.where(table.c.id > after) if after else query


class ProjectRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, project_id: str, organisation_id: str, name: str, idempotency_key: str = ""
    ) -> tuple[Project, bool]:
        values = {"id": project_id, "organisation_id": organisation_id, "name": name}
        try:
            row, created = await insert_once(
                self._conn,
                projects,
                values,
                idempotency_key=idempotency_key,
                fingerprint=project_fingerprint(organisation_id, name),
            )
        except IntegrityError as error:
            if "projects_organisation_name_key" in str(error):
                raise AlreadyExists(
                    f"organisation {organisation_id} already has a project named {name!r}", field="name"
                ) from None
            raise
        return _to_project(row), created

    async def get(self, project_id: str) -> Project | None:
        row = (await self._conn.execute(sa.select(projects).where(projects.c.id == project_id))).one_or_none()
        return _to_project(row) if row else None

    async def list(self, *, organisation_id: str, limit: int, after: str | None) -> list[Project]:
        query = sa.select(projects)
        if organisation_id:
            query = query.where(projects.c.organisation_id == organisation_id)
        rows = (await self._conn.execute(_page(query, projects, limit, after))).all()
        return [_to_project(row) for row in rows]


class ApiKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self,
        *,
        key_id: str,
        project_id: str,
        name: str,
        prefix: str,
        secret_hash: str,
        expires_at: datetime | None,
    ) -> ApiKey:
        row = (
            await self._conn.execute(
                sa.insert(api_keys)
                .values(
                    id=key_id,
                    project_id=project_id,
                    name=name,
                    prefix=prefix,
                    secret_hash=secret_hash,
                    expires_at=expires_at,
                )
                .returning(api_keys)
            )
        ).one()
        return _to_api_key(row)

    async def get(self, key_id: str) -> ApiKey | None:
        row = (await self._conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).one_or_none()
        return _to_api_key(row) if row else None

    async def get_with_project(self, prefix: str) -> tuple[ApiKey, Project] | None:
        """The key with this prefix and its project, in one query (this is on the ingest path)."""
        project_columns = [
            projects.c.organisation_id,
            projects.c.name.label("project_name"),
            projects.c.created_at.label("project_created_at"),
        ]
        row = (
            await self._conn.execute(
                sa.select(api_keys, *project_columns)
                .join(projects, projects.c.id == api_keys.c.project_id)
                .where(api_keys.c.prefix == prefix)
            )
        ).one_or_none()
        if row is None:
            return None
        project = Project(
            id=row.project_id,
            organisation_id=row.organisation_id,
            name=row.project_name,
            created_at=row.project_created_at,
        )
        return _to_api_key(row), project

    async def list(self, *, project_id: str, limit: int, after: str | None) -> list[ApiKey]:
        query = sa.select(api_keys)
        if project_id:
            query = query.where(api_keys.c.project_id == project_id)
        rows = (await self._conn.execute(_page(query, api_keys, limit, after))).all()
        return [_to_api_key(row) for row in rows]

    async def revoke(self, key_id: str) -> tuple[ApiKey, bool] | None:
        """Revoke once: a second revocation keeps the first time. Returns (key, newly_revoked)."""
        row = (
            await self._conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=sa.func.now())
                .returning(api_keys)
            )
        ).one_or_none()
        if row is not None:
            return _to_api_key(row), True
        existing = await self.get(key_id)
        return (existing, False) if existing else None
