"""SQL of reconciliation: runs, discrepancies, and the slice of our records a run compares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.ids import new_id
from services.payments.adapters import tables as t
from services.payments.domain.payment import Provider
from services.payments.domain.reconciliation import DiscrepancyKind, Finding, Record


@dataclass(frozen=True)
class Run:
    id: str
    state: str
    start_at: datetime
    end_at: datetime
    trigger: str
    payments_checked: int = 0
    refunds_checked: int = 0
    discrepancies: int = 0
    error: str = ""
    created_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Discrepancy:
    id: str
    run_id: str
    kind: DiscrepancyKind
    object_type: str
    provider_id: str
    our_id: str
    detail: str
    ours: str
    theirs: str
    resolution: str = ""
    created_at: datetime | None = None
    resolved_at: datetime | None = None


def _run(row: sa.Row[Any]) -> Run:
    return Run(**{k: v for k, v in row._mapping.items() if k in Run.__dataclass_fields__})


def _discrepancy(row: sa.Row[Any]) -> Discrepancy:
    values = {k: v for k, v in row._mapping.items() if k in Discrepancy.__dataclass_fields__}
    return Discrepancy(**{**values, "kind": DiscrepancyKind(row.kind)})


class ReconciliationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def start(self, start_at: datetime, end_at: datetime, trigger: str) -> Run | None:
        """A new running run; None when the scheduled run of this window exists already."""
        statement = (insert(t.reconciliation_runs)
                     .values(id=new_id("rec"), state="running", start_at=start_at, end_at=end_at, trigger=trigger)
                     .on_conflict_do_nothing().returning(t.reconciliation_runs))
        row = (await self._conn.execute(statement)).first()
        return _run(row) if row else None

    async def finish(self, run_id: str, state: str, *, payments: int = 0, refunds: int = 0, found: int = 0,
                     error: str = "") -> None:
        await self._conn.execute(sa.update(t.reconciliation_runs).where(t.reconciliation_runs.c.id == run_id).values(
            state=state, payments_checked=payments, refunds_checked=refunds, discrepancies=found, error=error[:1000],
            finished_at=sa.func.now()))

    async def record(self, run_id: str, findings: Iterable[Finding]) -> None:
        """Store findings; one already open stays one discrepancy, now marked as found by this run too."""
        for finding in findings:
            statement = insert(t.discrepancies).values(
                id=new_id("dsc"), run_id=run_id, last_run_id=run_id, kind=finding.kind.value,
                object_type=finding.object_type, provider_id=finding.provider_id, our_id=finding.our_id,
                detail=finding.detail[:1000], ours=finding.ours, theirs=finding.theirs)
            await self._conn.execute(statement.on_conflict_do_update(
                index_elements=["kind", "object_type", "provider_id"], index_where=sa.text("resolved_at IS NULL"),
                set_={"last_run_id": run_id, "detail": statement.excluded.detail, "ours": statement.excluded.ours,
                      "theirs": statement.excluded.theirs}))

    async def get(self, run_id: str) -> Run | None:
        row = (await self._conn.execute(
            sa.select(t.reconciliation_runs).where(t.reconciliation_runs.c.id == run_id))).first()
        return _run(row) if row else None

    async def page(self, limit: int, before: str | None) -> list[Run]:
        statement = sa.select(t.reconciliation_runs).order_by(t.reconciliation_runs.c.id.desc()).limit(limit)
        if before:
            statement = statement.where(t.reconciliation_runs.c.id < before)
        return [_run(row) for row in (await self._conn.execute(statement)).all()]

    async def found_by(self, run_id: str) -> list[Discrepancy]:
        rows = (await self._conn.execute(sa.select(t.discrepancies).where(t.discrepancies.c.last_run_id == run_id)
                                         .order_by(t.discrepancies.c.id))).all()
        return [_discrepancy(row) for row in rows]

    async def discrepancies(self, include_resolved: bool, limit: int, before: str | None) -> list[Discrepancy]:
        statement = sa.select(t.discrepancies).order_by(t.discrepancies.c.id.desc()).limit(limit)
        if not include_resolved:
            statement = statement.where(t.discrepancies.c.resolved_at.is_(None))
        if before:
            statement = statement.where(t.discrepancies.c.id < before)
        return [_discrepancy(row) for row in (await self._conn.execute(statement)).all()]

    async def resolve(self, discrepancy_id: str, resolution: str) -> Discrepancy | None:
        await self._conn.execute(sa.update(t.discrepancies).where(
            t.discrepancies.c.id == discrepancy_id, t.discrepancies.c.resolved_at.is_(None)).values(
            resolution=resolution, resolved_at=sa.func.now()))
        row = (await self._conn.execute(
            sa.select(t.discrepancies).where(t.discrepancies.c.id == discrepancy_id))).first()
        return _discrepancy(row) if row else None

    async def count_open(self) -> int:
        return int((await self._conn.execute(
            sa.select(sa.func.count()).select_from(t.discrepancies).where(t.discrepancies.c.resolved_at.is_(None))
        )).scalar_one())

    async def our_records(self, start_at: datetime, end_at: datetime, payment_ids: Iterable[str],
                          refund_ids: Iterable[str],
                          providers: Sequence[Provider] = (Provider.RAZORPAY,)) -> list[Record]:
        """Our payments and refunds at ``providers`` made in the window, or known by the given provider ids."""
        p, r = t.payments, t.refunds
        names = [provider.value for provider in providers]
        payment_rows = (await self._conn.execute(sa.select(p).where(
            p.c.provider.in_(names), p.c.provider_payment_id.is_not(None),
            sa.or_(sa.and_(p.c.created_at >= start_at, p.c.created_at < end_at),
                   p.c.provider_payment_id.in_(list(payment_ids)))))).all()
        refund_rows = (await self._conn.execute(
            sa.select(r, p.c.provider.label("payment_provider")).join(p, p.c.id == r.c.payment_id).where(
                p.c.provider.in_(names), r.c.provider_refund_id.is_not(None),
                sa.or_(sa.and_(r.c.created_at >= start_at, r.c.created_at < end_at),
                       r.c.provider_refund_id.in_(list(refund_ids)))))).all()
        return [Record("payment", row.provider_payment_id, row.status, row.currency, row.amount_minor, row.id,
                       row.provider) for row in payment_rows] + [
            Record("refund", row.provider_refund_id, row.status, row.currency, row.amount_minor, row.id,
                   row.payment_provider) for row in refund_rows]
