"""SQL of the catalog: plans and their versions (terms kept as JSON, decimals as strings)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import plan_versions, plans
from services.invoicing.domain.plan import Plan, PlanVersion, PlanVersionTerms
from services.invoicing.domain.plan_rules import terms_to_dict, validate_terms

_VERSION_COLUMNS = (
    plan_versions,
    plans.c.code.label("plan_code"),
)


def version_from_row(row: sa.Row[Any]) -> PlanVersion:
    return PlanVersion(
        id=row.id,
        plan_id=row.plan_id,
        plan_code=row.plan_code,
        plan_name=row.name,
        version=row.version,
        terms=validate_terms(row.terms),
        created_at=row.created_at,
    )


def _versions_query() -> sa.Select[Any]:
    return sa.select(*_VERSION_COLUMNS).join(plans, plans.c.id == plan_versions.c.plan_id)


class CatalogRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_plan(
        self, plan_id: str, code: str, name: str, *, idempotency_key: str, fingerprint: str
    ) -> tuple[str, bool]:
        """Insert a plan row (or find the one made with this idempotency key). Returns (plan id, created)."""
        row, created = await insert_once(
            self._conn,
            plans,
            {"id": plan_id, "code": code, "name": name},
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        return row.id, created

    async def lock_code(self, code: str) -> None:
        """Serialise creates of one plan code until the transaction ends (a taken code is then a clear error,
        not a unique-index failure)."""
        await self._conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"plan:{code}", 0))))

    async def made_with_key(self, plan_id: str, idempotency_key: str) -> bool:
        if not idempotency_key:
            return False
        found = await self._conn.execute(
            sa.select(plans.c.id).where(plans.c.id == plan_id, plans.c.idempotency_key == idempotency_key)
        )
        return found.scalar_one_or_none() is not None

    async def version_made_with_key(self, idempotency_key: str) -> bool:
        if not idempotency_key:
            return False
        found = await self._conn.execute(
            sa.select(plan_versions.c.id).where(plan_versions.c.idempotency_key == idempotency_key)
        )
        return found.scalar_one_or_none() is not None

    async def plan_id_for_code(self, code: str) -> str | None:
        return (await self._conn.execute(sa.select(plans.c.id).where(plans.c.code == code))).scalar_one_or_none()

    async def lock_plan(self, plan_id: str) -> sa.Row[Any] | None:
        """The plan row, locked, so two new versions of one plan get consecutive numbers."""
        return (
            await self._conn.execute(sa.select(plans).where(plans.c.id == plan_id).with_for_update())
        ).one_or_none()

    async def add_version(
        self,
        version_id: str,
        plan_id: str,
        name: str,
        terms: PlanVersionTerms,
        *,
        idempotency_key: str = "",
        fingerprint: str = "",
    ) -> tuple[PlanVersion, bool]:
        """Append the next version of a plan (the caller holds :meth:`lock_plan`). Returns (version, created)."""
        next_version = (
            await self._conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(plan_versions.c.version), 0) + 1).where(
                    plan_versions.c.plan_id == plan_id
                )
            )
        ).scalar_one()
        row, created = await insert_once(
            self._conn,
            plan_versions,
            {"id": version_id, "plan_id": plan_id, "version": next_version, "name": name,
             "terms": terms_to_dict(terms)},
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        if name:
            await self._conn.execute(sa.update(plans).where(plans.c.id == plan_id).values(name=name))
        version = await self.get_version(row.id)
        assert version is not None
        return version, created

    async def get_version(self, version_id: str) -> PlanVersion | None:
        row = (await self._conn.execute(_versions_query().where(plan_versions.c.id == version_id))).one_or_none()
        return version_from_row(row) if row else None

    async def versions(self, version_ids: Iterable[str]) -> dict[str, PlanVersion]:
        ids = list(set(version_ids))
        if not ids:
            return {}
        rows = (await self._conn.execute(_versions_query().where(plan_versions.c.id.in_(ids)))).all()
        return {row.id: version_from_row(row) for row in rows}

    async def versions_of(self, plan_id: str) -> list[PlanVersion]:
        rows = (
            await self._conn.execute(
                _versions_query().where(plan_versions.c.plan_id == plan_id).order_by(plan_versions.c.version)
            )
        ).all()
        return [version_from_row(row) for row in rows]

    async def latest_version(self, plan_id: str) -> PlanVersion | None:
        row = (
            await self._conn.execute(
                _versions_query()
                .where(plan_versions.c.plan_id == plan_id)
                .order_by(plan_versions.c.version.desc())
                .limit(1)
            )
        ).one_or_none()
        return version_from_row(row) if row else None

    async def get_plan(self, plan_id: str) -> Plan | None:
        row = (await self._conn.execute(sa.select(plans).where(plans.c.id == plan_id))).one_or_none()
        if row is None:
            return None
        latest = await self.latest_version(plan_id)
        assert latest is not None, "a plan is always stored with its first version"
        return Plan(id=row.id, code=row.code, name=row.name, latest_version=latest, created_at=row.created_at)

    async def list_plans(self, *, limit: int, after: str | None) -> list[Plan]:
        query = sa.select(plans.c.id).order_by(plans.c.id).limit(limit)
        if after:
            query = query.where(plans.c.id > after)
        ids = (await self._conn.execute(query)).scalars().all()
        return [plan for plan_id in ids if (plan := await self.get_plan(plan_id)) is not None]
