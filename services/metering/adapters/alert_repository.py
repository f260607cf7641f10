"""SQL of alert rules and fired alerts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.metering.adapters.tables import alert_rules, fired_alerts
from services.metering.domain.alert_evaluation import FiredAlert
from services.metering.domain.alerts import AlertKind, AlertRule, CostBasis, RuleDefinition, ThresholdBasis


def _to_rule(row: sa.Row[Any]) -> AlertRule:
    return AlertRule(
        id=row.id,
        organisation_id=row.organisation_id,
        project_id=row.project_id,
        kind=AlertKind(row.kind),
        name=row.name,
        metric_code=row.metric_code,
        basis=ThresholdBasis(row.basis) if row.basis else None,
        levels=tuple(row.levels),
        window_seconds=row.window_seconds,
        baseline_seconds=row.baseline_seconds,
        factor=row.factor,
        min_volume=row.min_volume,
        budget=row.budget,
        currency=row.currency,
        cost_basis=CostBasis(row.cost_basis) if row.cost_basis else None,
        credit_threshold_minor=row.credit_threshold_minor,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
    )


def _to_fired(row: sa.Row[Any]) -> FiredAlert:
    return FiredAlert(
        id=row.id,
        rule_id=row.rule_id,
        organisation_id=row.organisation_id,
        project_id=row.project_id,
        kind=AlertKind(row.kind),
        metric_code=row.metric_code,
        level=row.level,
        threshold=row.threshold,
        value=row.value,
        baseline=row.baseline,
        currency=row.currency,
        event_id=row.event_id,
        event_project_id=row.event_project_id,
        event_time=row.event_time,
        period_start=row.period_start,
        period_end=row.period_end,
        fired_at=row.fired_at,
        rule_name=row.rule_name,
    )


def pair_lock_key(organisation_id: str, metric_code: str) -> str:
    return f"metering.alerts:{organisation_id}/{metric_code}"


class AlertRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # -- rules ----------------------------------------------------------------------------------------------

    async def lock_organisation(self, organisation_id: str) -> None:
        """Serialise rule creation per organisation, so the live-rule limit holds under concurrent requests."""
        await self._conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"metering.alert_rules:{organisation_id}"},
        )

    async def count_live(self, organisation_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(alert_rules).where(
            alert_rules.c.organisation_id == organisation_id, alert_rules.c.deleted_at.is_(None)
        )
        return (await self._conn.execute(query)).scalar_one()

    async def add(self, rule_id: str, definition: RuleDefinition, idempotency_key: str) -> tuple[AlertRule, bool]:
        values = {
            "id": rule_id,
            "organisation_id": definition.organisation_id,
            "project_id": definition.project_id,
            "kind": definition.kind.value,
            "name": definition.name,
            "metric_code": definition.metric_code,
            "basis": definition.basis.value if definition.basis else "",
            "levels": list(definition.levels),
            "window_seconds": definition.window_seconds,
            "baseline_seconds": definition.baseline_seconds,
            "factor": definition.factor,
            "min_volume": definition.min_volume,
            "budget": definition.budget,
            "currency": definition.currency,
            "cost_basis": definition.cost_basis.value if definition.cost_basis else "",
            "credit_threshold_minor": definition.credit_threshold_minor,
        }
        row, created = await insert_once(
            self._conn, alert_rules, values, idempotency_key=idempotency_key, fingerprint=definition.fingerprint()
        )
        return _to_rule(row), created

    async def get(self, rule_id: str) -> AlertRule | None:
        row = (await self._conn.execute(sa.select(alert_rules).where(alert_rules.c.id == rule_id))).one_or_none()
        return _to_rule(row) if row else None

    async def list(
        self, *, organisation_id: str, include_deleted: bool, limit: int, after: str | None
    ) -> list[AlertRule]:
        query = sa.select(alert_rules).where(alert_rules.c.organisation_id == organisation_id)
        if not include_deleted:
            query = query.where(alert_rules.c.deleted_at.is_(None))
        if after:
            query = query.where(alert_rules.c.id > after)
        rows = (await self._conn.execute(query.order_by(alert_rules.c.id).limit(limit))).all()
        return [_to_rule(row) for row in rows]

    async def delete(self, rule_id: str) -> AlertRule | None:
        """Delete once: deleting again keeps the first time."""
        row = (
            await self._conn.execute(
                sa.update(alert_rules)
                .where(alert_rules.c.id == rule_id, alert_rules.c.deleted_at.is_(None))
                .values(deleted_at=sa.func.now())
                .returning(alert_rules)
            )
        ).one_or_none()
        return _to_rule(row) if row is not None else await self.get(rule_id)

    async def live_rules(
        self, *, kinds: Iterable[AlertKind] | None = None, organisation_ids: Iterable[str] | None = None,
        rule_ids: Iterable[str] | None = None,
    ) -> list[AlertRule]:
        query = sa.select(alert_rules).where(alert_rules.c.deleted_at.is_(None))
        if kinds is not None:
            query = query.where(alert_rules.c.kind.in_([k.value for k in kinds]))
        if organisation_ids is not None:
            query = query.where(alert_rules.c.organisation_id.in_(sorted(set(organisation_ids))))
        if rule_ids is not None:
            query = query.where(alert_rules.c.id.in_(sorted(set(rule_ids))))
        rows = (await self._conn.execute(query.order_by(alert_rules.c.id))).all()
        return [_to_rule(row) for row in rows]

    async def live_threshold_rules(self, pairs: Iterable[tuple[str, str]]) -> list[AlertRule]:
        """Live THRESHOLD rules on the given (organisation, metric code) pairs, read inside the transaction that
        evaluates them (a rule deleted a moment ago fires nothing)."""
        pairs = sorted(set(pairs))
        if not pairs:
            return []
        wanted = sa.text(
            "SELECT * FROM unnest(CAST(:organisation_ids AS text[]), CAST(:codes AS text[])) AS w(o, c)"
        ).columns(o=sa.Text, c=sa.Text).subquery("w")
        query = (
            sa.select(alert_rules)
            .join(wanted, sa.and_(alert_rules.c.organisation_id == wanted.c.o, alert_rules.c.metric_code == wanted.c.c))
            .where(alert_rules.c.deleted_at.is_(None), alert_rules.c.kind == AlertKind.THRESHOLD.value)
            .order_by(alert_rules.c.id)
        )
        params = {"organisation_ids": [o for o, _ in pairs], "codes": [c for _, c in pairs]}
        return [_to_rule(row) for row in (await self._conn.execute(query, params)).all()]

    # -- evaluation -----------------------------------------------------------------------------------------

    async def lock_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Take the transaction-scoped advisory lock of each (organisation, metric code), in sorted order: replicas
        evaluating the same pair queue up behind each other (each then reads usage including what the one before
        committed), and the fixed order means they never deadlock."""
        for organisation_id, code in sorted(set(pairs)):
            await self._conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": pair_lock_key(organisation_id, code)},
            )

    async def insert_fired(self, alert: FiredAlert) -> FiredAlert | None:
        """Record a fired level unless (rule, period start, level) already fired; returns it (with the database's
        fire time) when this call recorded it, None when it had fired before."""
        values = {
            "id": alert.id,
            "rule_id": alert.rule_id,
            "organisation_id": alert.organisation_id,
            "project_id": alert.project_id,
            "kind": alert.kind.value,
            "metric_code": alert.metric_code,
            "level": alert.level,
            "threshold": alert.threshold,
            "value": alert.value,
            "baseline": alert.baseline,
            "currency": alert.currency,
            "event_id": alert.event_id,
            "event_project_id": alert.event_project_id,
            "event_time": alert.event_time,
            "period_start": alert.period_start,
            "period_end": alert.period_end,
            "rule_name": alert.rule_name,
        }
        statement = (
            insert(fired_alerts)
            .values(**values)
            .on_conflict_do_nothing(constraint="fired_alerts_once_key")
            .returning(fired_alerts)
        )
        row = (await self._conn.execute(statement)).one_or_none()
        return _to_fired(row) if row is not None else None

    async def fired_levels(self, rule_id: str, period_start: datetime) -> set[str]:
        query = sa.select(fired_alerts.c.level).where(
            fired_alerts.c.rule_id == rule_id, fired_alerts.c.period_start == period_start
        )
        return set((await self._conn.execute(query)).scalars())

    async def list_fired(
        self, *, organisation_id: str, rule_id: str, limit: int, before: str | None
    ) -> list[FiredAlert]:
        """Newest first: ids are time-ordered, so the page token is the last id and the next page is below it."""
        query = sa.select(fired_alerts).where(fired_alerts.c.organisation_id == organisation_id)
        if rule_id:
            query = query.where(fired_alerts.c.rule_id == rule_id)
        if before:
            query = query.where(fired_alerts.c.id < before)
        rows = (await self._conn.execute(query.order_by(fired_alerts.c.id.desc()).limit(limit))).all()
        return [_to_fired(row) for row in rows]
