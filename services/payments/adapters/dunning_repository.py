"""SQL of dunning: each invoice's schedule, and organisations' own policies."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payments.adapters import tables as t
from services.payments.adapters.repository import for_update
from services.payments.domain.dunning import Dunning, DunningPolicy, DunningState


class DunningRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, dunning: Dunning) -> None:
        await self._conn.execute(insert(t.dunning).values(**_dunning_values(dunning)).on_conflict_do_nothing())

    async def get(self, invoice_id: str, *, lock: bool = False) -> Dunning | None:
        row = (await self._conn.execute(
            for_update(sa.select(t.dunning).where(t.dunning.c.invoice_id == invoice_id), lock))).first()
        return _dunning(row) if row else None

    async def save(self, dunning: Dunning, errors: int = 0) -> None:
        values = _dunning_values(dunning)
        values.pop("invoice_id")
        await self._conn.execute(sa.update(t.dunning).where(t.dunning.c.invoice_id == dunning.invoice_id)
                                 .values(**values, errors=errors, updated_at=sa.func.now()))

    async def stop(self, invoice_id: str, reason: str) -> None:
        """Nothing more happens (paid, or voided), unless it had already ended."""
        await self._conn.execute(sa.update(t.dunning).where(
            t.dunning.c.invoice_id == invoice_id,
            t.dunning.c.state.in_([DunningState.SCHEDULED.value, DunningState.RETRYING.value]),
        ).values(state=DunningState.STOPPED.value, next_at=None, reason=reason[:500], updated_at=sa.func.now()))

    async def postpone(self, invoice_id: str, until: datetime, reason: str) -> None:
        """Try the same step again later (after a provider error), counting the error."""
        await self._conn.execute(sa.update(t.dunning).where(t.dunning.c.invoice_id == invoice_id)
                                 .values(next_at=until, reason=reason[:500], errors=t.dunning.c.errors + 1,
                                         updated_at=sa.func.now()))

    async def errors(self, invoice_id: str) -> int:
        return int((await self._conn.execute(
            sa.select(t.dunning.c.errors).where(t.dunning.c.invoice_id == invoice_id))).scalar() or 0)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Dunning]:
        due = (
            sa.select(t.dunning.c.invoice_id)
            .where(t.dunning.c.state.in_([DunningState.SCHEDULED.value, DunningState.RETRYING.value]),
                   t.dunning.c.next_at <= now)
            .order_by(t.dunning.c.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.dunning).where(t.dunning.c.invoice_id.in_(due))
            .values(next_at=t.dunning.c.next_at + lease).returning(t.dunning))).all()
        # The claimed row's own next_at is the step's due time, not the lease.
        return [_dunning(row, next_at=row.next_at - lease) for row in rows]

    async def policy_for(self, organisation_id: str) -> DunningPolicy | None:
        record = (await self._conn.execute(sa.select(t.dunning_policies.c.policy).where(
            t.dunning_policies.c.organisation_id == organisation_id))).scalar()
        return DunningPolicy.from_record(record) if record else None

    async def set_policy(self, organisation_id: str, policy: DunningPolicy | None) -> None:
        if policy is None:
            await self._conn.execute(sa.delete(t.dunning_policies).where(
                t.dunning_policies.c.organisation_id == organisation_id))
            return
        statement = insert(t.dunning_policies).values(organisation_id=organisation_id, policy=policy.record())
        await self._conn.execute(statement.on_conflict_do_update(
            index_elements=[t.dunning_policies.c.organisation_id],
            set_={"policy": statement.excluded.policy, "updated_at": sa.func.now()}))


def _dunning_values(dunning: Dunning) -> dict[str, Any]:
    return {"invoice_id": dunning.invoice_id, "policy": dunning.policy.record(), "due_at": dunning.due_at,
            "state": dunning.state.value, "attempts": dunning.attempts, "next_at": dunning.next_at,
            "reason": dunning.reason}


def _dunning(row: sa.Row[Any], **override: Any) -> Dunning:
    values = {"invoice_id": row.invoice_id, "policy": DunningPolicy.from_record(row.policy), "due_at": row.due_at,
              "state": DunningState(row.state), "attempts": row.attempts, "next_at": row.next_at,
              "reason": row.reason}
    return Dunning(**{**values, **override})
