"""All SQL of the gateway: the admin audit log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.adapters.tables import audit_log


class AuditLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, *, request_id: str, actor: str, action: str, resource_type: str, resource_id: str) -> None:
        await self._conn.execute(
            sa.insert(audit_log).values(
                request_id=request_id, actor=actor, action=action, resource_type=resource_type,
                resource_id=resource_id,
            )
        )

    async def recent(self, *, limit: int, before_id: int | None) -> list[dict[str, Any]]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        return [dict(row._mapping) for row in (await self._conn.execute(query)).all()]

