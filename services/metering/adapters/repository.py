"""SQL of metric definitions and the observed-metrics report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.errors import AlreadyExists
from billing_runtime.idempotency import insert_once
from services.metering.adapters.tables import metrics, usage_buckets
from services.metering.domain.metric import Aggregation, Metric, MetricDefinition


def _to_metric(row: sa.Row[Any]) -> Metric:
    return Metric(
        id=row.id,
        organisation_id=row.organisation_id,
        code=row.code,
        name=row.name,
        unit=row.unit,
        aggregation=Aggregation(row.aggregation),
        unique_dimension=row.unique_dimension,
        filters={key: tuple(values) for key, values in (row.filters or {}).items()},
        created_at=row.created_at,
        archived_at=row.archived_at,
    )


class MetricRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, metric_id: str, definition: MetricDefinition, idempotency_key: str) -> tuple[Metric, bool]:
        values = {
            "id": metric_id,
            "organisation_id": definition.organisation_id,
            "code": definition.code,
            "name": definition.name,
            "unit": definition.unit,
            "aggregation": definition.aggregation.value,
            "unique_dimension": definition.unique_dimension,
            "filters": {key: list(values) for key, values in definition.filters.items()},
        }
        try:
            row, created = await insert_once(
                self._conn,
                metrics,
                values,
                idempotency_key=idempotency_key,
                fingerprint=definition.fingerprint(),
            )
        except IntegrityError as error:
            if "metrics_active_code_key" in str(error):
                raise AlreadyExists(
                    f"organisation {definition.organisation_id} already has an active metric {definition.code!r}",
                    field="code",
                ) from None
            raise
        return _to_metric(row), created

    async def get(self, metric_id: str) -> Metric | None:
        row = (await self._conn.execute(sa.select(metrics).where(metrics.c.id == metric_id))).one_or_none()
        return _to_metric(row) if row else None

    async def get_active_by_code(self, organisation_id: str, code: str) -> Metric | None:
        row = (
            await self._conn.execute(
                sa.select(metrics).where(
                    metrics.c.organisation_id == organisation_id,
                    metrics.c.code == code,
                    metrics.c.archived_at.is_(None),
                )
            )
        ).one_or_none()
        return _to_metric(row) if row else None

    async def active_by_codes(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Metric]:
        """The active metric of each (organisation_id, code) that has one, in one statement."""
        distinct = sorted(set(keys))
        if not distinct:
            return {}
        wanted = sa.text(
            "SELECT * FROM unnest(CAST(:organisation_ids AS text[]), CAST(:codes AS text[])) AS w(o, c)"
        ).columns(o=sa.Text, c=sa.Text).subquery("w")
        query = sa.select(metrics).join(
            wanted, sa.and_(metrics.c.organisation_id == wanted.c.o, metrics.c.code == wanted.c.c)
        ).where(metrics.c.archived_at.is_(None))
        params = {"organisation_ids": [o for o, _ in distinct], "codes": [c for _, c in distinct]}
        rows = (await self._conn.execute(query, params)).all()
        return {(row.organisation_id, row.code): _to_metric(row) for row in rows}

    async def list(
        self, *, organisation_id: str, include_archived: bool, limit: int, after: str | None
    ) -> list[Metric]:
        query = sa.select(metrics).where(metrics.c.organisation_id == organisation_id)
        if not include_archived:
            query = query.where(metrics.c.archived_at.is_(None))
        if after:
            query = query.where(metrics.c.id > after)
        rows = (await self._conn.execute(query.order_by(metrics.c.id).limit(limit))).all()
        return [_to_metric(row) for row in rows]

    async def archive(self, metric_id: str) -> Metric | None:
        """Archive once: archiving again keeps the first time."""
        row = (
            await self._conn.execute(
                sa.update(metrics)
                .where(metrics.c.id == metric_id, metrics.c.archived_at.is_(None))
                .values(archived_at=sa.func.now())
                .returning(metrics)
            )
        ).one_or_none()
        if row is not None:
            return _to_metric(row)
        return await self.get(metric_id)


async def observed_metrics(conn: AsyncConnection, organisation_id: str) -> list[dict[str, Any]]:
    """Per metric code the organisation's events carry: count, first and last event time, defining metric."""
    b = usage_buckets
    totals = (
        sa.select(
            b.c.metric.label("code"),
            sa.cast(sa.func.sum(b.c.event_count), sa.BigInteger).label("event_count"),
            sa.func.min(b.c.first_time).label("first_event_time"),
            sa.func.max(b.c.latest_time).label("last_event_time"),
        )
        .where(b.c.organisation_id == organisation_id)
        .group_by(b.c.metric)
        .subquery()
    )
    query = (
        sa.select(totals, sa.func.coalesce(metrics.c.id, "").label("metric_id"))
        .select_from(
            totals.outerjoin(
                metrics,
                sa.and_(
                    metrics.c.organisation_id == organisation_id,
                    metrics.c.code == totals.c.code,
                    metrics.c.archived_at.is_(None),
                ),
            )
        )
        .order_by(totals.c.code)
    )
    return [dict(row._mapping) for row in (await conn.execute(query)).all()]


