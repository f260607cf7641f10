"""SQL of usage reconciliation: the accepted events of a window (a session temp table), what of them is stored,
aggregates recomputed from stored events, and the reports.

The only statement that looks events up by (project_id, event_id) is ``AcceptedEvents.stored_per_hour``: a change
to how events are keyed or partitioned changes that one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing_runtime.ids import new_id
from services.metering.adapters.tables import usage_reconciliation_discrepancies as discrepancies_table
from services.metering.adapters.tables import usage_reconciliations as reports_table
from services.metering.domain.usage_reconciliation import (
    MISSING_SAMPLE,
    Aggregate,
    AggregateKey,
    Discrepancy,
    DiscrepancyKind,
    Findings,
    HourCount,
    ReconciliationStatus,
    Report,
    Totals,
    Trigger,
    Window,
)

_CREATE_ACCEPTED = """
CREATE TEMP TABLE IF NOT EXISTS usage_reconciliation_accepted (
    project_id text NOT NULL, event_id text NOT NULL, organisation_id text NOT NULL, hour timestamptz NOT NULL,
    PRIMARY KEY (project_id, event_id)
)"""

_ADD_ACCEPTED = """
INSERT INTO usage_reconciliation_accepted
SELECT p, id, o, TIMESTAMPTZ 'epoch' + h * INTERVAL '1 microsecond'
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS t(p, id, o, h)
ON CONFLICT DO NOTHING"""

# Per (project, hour of the event's timestamp): distinct events accepted, how many metering stores, and a few of
# the missing ids. The events are looked up by their key, nothing else.
_STORED_PER_HOUR = f"""
SELECT a.organisation_id, a.project_id, a.hour, count(*) AS accepted, count(e.event_id) AS stored,
    (array_agg(a.event_id ORDER BY a.event_id) FILTER (WHERE e.event_id IS NULL))[1:{MISSING_SAMPLE}] AS sample
FROM usage_reconciliation_accepted a
LEFT JOIN metering.events e ON e.project_id = a.project_id AND e.event_id = a.event_id
GROUP BY a.organisation_id, a.project_id, a.hour
ORDER BY a.project_id, a.hour"""

# Buckets of the given hours: recomputed from events, and as stored; only rows that differ (or exist on one side).
_BUCKETS = """
WITH hours AS (SELECT DISTINCT unnest($1::timestamptz[]) AS h),
recomputed AS (
    SELECT e.organisation_id, e.metric,
        date_bin('15 minutes', e.timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS period_start, e.project_id,
        count(*) AS n, sum(e.value) AS s, min(e.value) AS lo, max(e.value) AS hi
    FROM metering.events e JOIN hours ON e.timestamp >= hours.h AND e.timestamp < hours.h + INTERVAL '1 hour'
    GROUP BY 1, 2, 3, 4
), stored AS (
    SELECT b.organisation_id, b.metric, b.bucket_start AS period_start, b.project_id,
        b.event_count AS n, b.value_sum AS s, b.value_min AS lo, b.value_max AS hi
    FROM metering.usage_buckets b
    JOIN hours ON b.bucket_start >= hours.h AND b.bucket_start < hours.h + INTERVAL '1 hour'
)
SELECT organisation_id, metric, period_start, project_id, r.n AS rn, r.s AS rs, r.lo AS rlo, r.hi AS rhi,
    s.n AS sn, s.s AS ss, s.lo AS slo, s.hi AS shi
FROM recomputed r FULL JOIN stored s USING (organisation_id, metric, period_start, project_id)
WHERE (r.n, r.s, r.lo, r.hi) IS DISTINCT FROM (s.n, s.s, s.lo, s.hi)"""

# Days touching the given hours: recomputed from the day's buckets, and as stored; only rows that differ.
_DAYS = """
WITH days AS (
    SELECT DISTINCT date_bin('1 day', h, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS d FROM unnest($1::timestamptz[]) h
), recomputed AS (
    SELECT b.organisation_id, b.metric, days.d AS period_start, b.project_id,
        sum(b.event_count) AS n, sum(b.value_sum) AS s, min(b.value_min) AS lo, max(b.value_max) AS hi
    FROM metering.usage_buckets b
    JOIN days ON b.bucket_start >= days.d AND b.bucket_start < days.d + INTERVAL '1 day'
    GROUP BY 1, 2, 3, 4
), stored AS (
    SELECT u.organisation_id, u.metric, u.day_start AS period_start, u.project_id,
        u.event_count AS n, u.value_sum AS s, u.value_min AS lo, u.value_max AS hi
    FROM metering.usage_days u JOIN days ON u.day_start = days.d
)
SELECT organisation_id, metric, period_start, project_id, r.n AS rn, r.s AS rs, r.lo AS rlo, r.hi AS rhi,
    s.n AS sn, s.s AS ss, s.lo AS slo, s.hi AS shi
FROM recomputed r FULL JOIN stored s USING (organisation_id, metric, period_start, project_id)
WHERE (r.n, r.s, r.lo, r.hi) IS DISTINCT FROM (s.n, s.s, s.lo, s.hi)"""


def _sides(rows: Sequence[Any]) -> tuple[dict[AggregateKey, Aggregate], dict[AggregateKey, Aggregate]]:
    expected: dict[AggregateKey, Aggregate] = {}
    found: dict[AggregateKey, Aggregate] = {}
    for row in rows:
        key = (row.organisation_id, row.metric, row.period_start, row.project_id)
        if row.rn is not None:
            expected[key] = Aggregate(int(row.rn), Decimal(row.rs), Decimal(row.rlo), Decimal(row.rhi))
        if row.sn is not None:
            found[key] = Aggregate(int(row.sn), Decimal(row.ss), Decimal(row.slo), Decimal(row.shi))
    return expected, found


class AcceptedEvents:
    """The distinct accepted events of one run, in a temp table of the connection (PostgreSQL holds them, not
    Python), and what metering stores of them."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _raw(self):  # noqa: ANN202 - asyncpg's connection
        return (await self._conn.get_raw_connection()).driver_connection

    async def open(self) -> None:
        raw = await self._raw()
        await raw.execute(_CREATE_ACCEPTED)
        await raw.execute("TRUNCATE usage_reconciliation_accepted")

    async def add(self, organisation_ids: list[str], project_ids: list[str], event_ids: list[str],
                  hours_us: list[int]) -> None:
        raw = await self._raw()
        await raw.execute(_ADD_ACCEPTED, project_ids, event_ids, organisation_ids, hours_us)

    async def stored_per_hour(self) -> list[HourCount]:
        raw = await self._raw()
        rows = await raw.fetch(_STORED_PER_HOUR)
        return [
            HourCount(r["organisation_id"], r["project_id"], r["hour"], r["accepted"], r["stored"],
                      tuple(r["sample"] or ()))
            for r in rows
        ]

    async def close(self) -> None:
        raw = await self._raw()
        await raw.execute("DROP TABLE IF EXISTS usage_reconciliation_accepted")


class ReconciliationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def connection(self) -> AsyncConnection:
        """A connection of its own for one run (its temp table lives as long as the connection is held)."""
        return self._engine.connect()

    # -- aggregates -----------------------------------------------------------------------------------------

    async def bucket_sides(self, hours: list[datetime]):  # noqa: ANN201 - the two sides, see _sides
        """Recomputed and stored 15-minute buckets of these hours (start times), only where they differ."""
        async with self._engine.connect() as conn:
            rows = (await conn.exec_driver_sql(_BUCKETS, (hours,))).all()
        return _sides(rows)

    async def day_sides(self, hours: list[datetime]):  # noqa: ANN201
        """Recomputed-from-buckets and stored days of the days these hours fall in, only where they differ."""
        async with self._engine.connect() as conn:
            rows = (await conn.exec_driver_sql(_DAYS, (hours,))).all()
        return _sides(rows)

    # -- reports --------------------------------------------------------------------------------------------

    async def claim_scheduled(self, window: Window, now: datetime, stale_after: timedelta) -> str | None:
        """The id of a new scheduled report of the window for this process to run, or None when another run has
        it: finished, or running and not stale. A report left running longer than ``stale_after`` (its process
        died) or that found metering behind is taken over, under the same id."""
        new = new_id("urec")
        statement = insert(reports_table).values(
            id=new, trigger=Trigger.SCHEDULED.value, window_start=window.start, window_end=window.end,
            status=ReconciliationStatus.RUNNING.value, started_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["window_start", "window_end"],
            index_where=sa.text("trigger = 'scheduled'"),
            set_={"status": ReconciliationStatus.RUNNING.value, "started_at": now, "finished_at": None, "error": ""},
            where=sa.or_(
                reports_table.c.status == ReconciliationStatus.METERING_BEHIND.value,
                sa.and_(reports_table.c.status == ReconciliationStatus.RUNNING.value,
                        reports_table.c.started_at < now - stale_after),
            ),
        ).returning(reports_table.c.id)
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).scalar()

    async def start_on_demand(self, window: Window, now: datetime) -> str:
        new = new_id("urec")
        async with self._engine.begin() as conn:
            await conn.execute(reports_table.insert().values(
                id=new, trigger=Trigger.ON_DEMAND.value, window_start=window.start, window_end=window.end,
                status=ReconciliationStatus.RUNNING.value, started_at=now,
            ))
        return new

    async def finish(self, report_id: str, status: ReconciliationStatus, findings: Findings, now: datetime,
                     error: str = "") -> None:
        totals = findings.totals
        async with self._engine.begin() as conn:
            await conn.execute(discrepancies_table.delete().where(
                discrepancies_table.c.reconciliation_id == report_id))
            await conn.execute(reports_table.update().where(reports_table.c.id == report_id).values(
                status=status.value, finished_at=now, messages_read=totals.messages,
                accepted_events=totals.accepted, stored_events=totals.stored, missing_events=totals.missing,
                aggregate_mismatches=totals.aggregate_mismatches, discrepancy_count=totals.discrepancies,
                error=error[:2000],
            ))
            if findings.discrepancies:
                await conn.execute(discrepancies_table.insert(), [
                    {"reconciliation_id": report_id, "position": n, "kind": d.kind.value,
                     "organisation_id": d.organisation_id, "project_id": d.project_id, "metric": d.metric,
                     "period_start": d.period_start, "expected": d.expected, "found": d.found, "detail": d.detail}
                    for n, d in enumerate(findings.discrepancies)
                ])

    async def get(self, report_id: str) -> Report | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(reports_table.select().where(reports_table.c.id == report_id))).first()
            if row is None:
                return None
            found = (await conn.execute(
                discrepancies_table.select()
                .where(discrepancies_table.c.reconciliation_id == report_id)
                .order_by(discrepancies_table.c.position)
            )).all()
        return _to_report(row, [
            Discrepancy(DiscrepancyKind(d.kind), d.organisation_id, d.project_id, d.metric, d.period_start,
                        d.expected, d.found, d.detail)
            for d in found
        ])

    async def list(self, limit: int, before: str | None) -> list[Report]:
        """Newest first (ids are time-ordered), without their discrepancy rows; ``limit`` rows."""
        query = reports_table.select().order_by(reports_table.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(reports_table.c.id < before)
        async with self._engine.connect() as conn:
            return [_to_report(row, []) for row in (await conn.execute(query)).all()]

    async def latest_finished_discrepancies(self) -> int | None:
        """Discrepancies of the latest finished report (clean or not), or None when there is none yet."""
        query = (
            sa.select(reports_table.c.discrepancy_count)
            .where(reports_table.c.status.in_([ReconciliationStatus.CLEAN.value,
                                               ReconciliationStatus.DISCREPANCIES.value]))
            .order_by(reports_table.c.finished_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar()


def _to_report(row: Any, found: list[Discrepancy]) -> Report:
    return Report(
        id=row.id, trigger=Trigger(row.trigger), window=Window(row.window_start, row.window_end),
        status=ReconciliationStatus(row.status), started_at=row.started_at, finished_at=row.finished_at,
        totals=Totals(row.messages_read, row.accepted_events, row.stored_events, row.missing_events,
                      row.aggregate_mismatches, row.discrepancy_count),
        error=row.error, discrepancies=tuple(found),
    )
