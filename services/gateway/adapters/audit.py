"""The audit log over PostgreSQL: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE; migration 0003)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters.tables import audit_log


@dataclass(frozen=True)
class AuditFilter:
    """Entries matching every given field: ``action`` is a prefix (``invoice.`` for every invoice action)."""

    actor: str = ""
    action: str = ""
    resource_type: str = ""
    resource_id: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if self.actor:
            conditions.append(audit_log.c.actor == self.actor)
        if self.action:
            conditions.append(audit_log.c.action.startswith(self.action, autoescape=True))
        if self.resource_type:
            conditions.append(audit_log.c.resource_type == self.resource_type)
        if self.resource_id:
            conditions.append(audit_log.c.resource_id == self.resource_id)
        if self.since is not None:
            conditions.append(audit_log.c.created_at >= self.since)
        if self.until is not None:
            conditions.append(audit_log.c.created_at < self.until)
        return conditions


class AuditLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(
        self, *, request_id: str, actor: str, action: str, resource_type: str, resource_id: str, role: str = "",
        source_ip: str = "", reason: str = "", before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await self._conn.execute(
            sa.insert(audit_log).values(
                request_id=request_id, actor=actor, action=action, resource_type=resource_type,
                resource_id=resource_id, role=role, source_ip=source_ip, reason=reason, before=before, after=after,
            )
        )

    async def recent(
        self, *, limit: int, before_id: int | None, matching: AuditFilter | None = None
    ) -> list[dict[str, Any]]:
        """Newest first, up to ``limit``, below ``before_id`` when given."""
        query = sa.select(audit_log).where(*(matching or AuditFilter()).where()).order_by(audit_log.c.id.desc())
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        return [dict(row._mapping) for row in (await self._conn.execute(query.limit(limit))).all()]

    async def after_id(self, *, limit: int, after_id: int, matching: AuditFilter) -> list[dict[str, Any]]:
        """Oldest first from ``after_id`` (exclusive): the export's pages."""
        query = (
            sa.select(audit_log)
            .where(audit_log.c.id > after_id, *matching.where())
            .order_by(audit_log.c.id)
            .limit(limit)
        )
        return [dict(row._mapping) for row in (await self._conn.execute(query)).all()]
