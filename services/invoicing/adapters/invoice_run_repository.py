"""SQL of invoice runs and their progress counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import invoice_runs
from services.invoicing.domain.invoice_run import RunProgress

MAX_FAILURES_KEPT = 100
_FIRST_FAILURES = sa.literal_column(f"'$[0 to {MAX_FAILURES_KEPT - 1}]'::jsonpath")
COUNTERS = ("organisations_done", "invoiced", "already_invoiced", "not_due", "no_subscription", "failed")

# Progress of invoice runs as they write it (each write is its own short transaction): organisations planned,
# what each organisation came to, and runs finished by state.
RUN_PLANNED = Counter("billing_invoicing_run_organisations_planned_total",
                      "Organisations invoice runs set out to close (a resumed run counts its organisations again).")
RUN_ORGANISATIONS = Counter(
    "billing_invoicing_run_organisations_total",
    "Organisations closed by invoice runs, by result: invoiced, already_invoiced, not_due, no_subscription, failed.",
    ["result"],
)
RUNS_FINISHED = Counter("billing_invoicing_runs_finished_total", "Invoice runs finished, by state.", ["state"])


class InvoiceRunRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, run_id: str, period_key: str, organisation_id: str, trigger: str, *, idempotency_key: str,
        fingerprint: str,
    ) -> tuple[sa.Row[Any], bool]:
        return await insert_once(
            self._conn,
            invoice_runs,
            {"id": run_id, "period_key": period_key, "organisation_id": organisation_id, "state": "running",
             "trigger": trigger},
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )

    async def get(self, run_id: str) -> sa.Row[Any] | None:
        return (await self._conn.execute(sa.select(invoice_runs).where(invoice_runs.c.id == run_id))).one_or_none()

    async def list(self, *, limit: int, before: str | None) -> list[sa.Row[Any]]:
        query = sa.select(invoice_runs).order_by(invoice_runs.c.id.desc()).limit(limit)
        if before:
            query = query.where(invoice_runs.c.id < before)
        return list((await self._conn.execute(query)).all())

    async def running(self) -> list[sa.Row[Any]]:
        return list(
            (await self._conn.execute(sa.select(invoice_runs).where(invoice_runs.c.state == "running"))).all()
        )

    async def latest_for(self, period_key: str, trigger: str) -> sa.Row[Any] | None:
        return (
            await self._conn.execute(
                sa.select(invoice_runs)
                .where(invoice_runs.c.period_key == period_key, invoice_runs.c.trigger == trigger)
                .order_by(invoice_runs.c.id.desc())
                .limit(1)
            )
        ).one_or_none()

    async def set_total(self, run_id: str, total: int) -> None:
        await self._conn.execute(
            sa.update(invoice_runs).where(invoice_runs.c.id == run_id).values(organisations_total=total)
        )
        RUN_PLANNED.inc(total)

    async def reset_counts(self, run_id: str) -> None:
        """A resumed run counts again from zero (what it already did now counts as already invoiced)."""
        await self._conn.execute(
            sa.update(invoice_runs)
            .where(invoice_runs.c.id == run_id)
            .values(**{name: 0 for name in COUNTERS}, failures=sa.text("'[]'::jsonb"))
        )

    async def add_progress(self, run_id: str, progress: RunProgress) -> None:
        t = invoice_runs
        new_failures = sa.cast(sa.literal(progress.failures, JSONB), JSONB)
        await self._conn.execute(
            sa.update(t)
            .where(t.c.id == run_id)
            .values(
                **{name: t.c[name] + getattr(progress, name) for name in COUNTERS},
                failures=sa.func.jsonb_path_query_array(t.c.failures.op("||")(new_failures), _FIRST_FAILURES),
            )
        )
        for name in COUNTERS[1:]:
            if value := getattr(progress, name):
                RUN_ORGANISATIONS.labels(name).inc(value)

    async def finish(self, run_id: str, state: str, finished_at: datetime) -> None:
        await self._conn.execute(
            sa.update(invoice_runs).where(invoice_runs.c.id == run_id).values(state=state, finished_at=finished_at)
        )
        RUNS_FINISHED.labels(state).inc()


def failures_of(row: sa.Row[Any]) -> Sequence[dict[str, str]]:
    return row.failures or []
