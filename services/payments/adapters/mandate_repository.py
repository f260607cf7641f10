"""SQL of auto-debit: organisations' mandates, and the debit of each invoice on one."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payments.adapters import tables as t
from services.payments.adapters.repository import for_update
from services.payments.domain.mandate import Debit, DebitState, Mandate, MandateMethod, MandateState

_WORKING = [DebitState.SCHEDULED.value, DebitState.ORDERED.value, DebitState.REQUESTED.value]


class MandateRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, mandate: Mandate, idempotency_key: str) -> bool:
        """Store a new mandate; False when the organisation has a live one already (or the key was used)."""
        values = {**_values(mandate), "idempotency_key": idempotency_key or None}
        done = await self._conn.execute(insert(t.mandates).values(**values).on_conflict_do_nothing())
        return bool(done.rowcount)

    async def get(self, mandate_id: str, *, lock: bool = False) -> Mandate | None:
        row = (await self._conn.execute(for_update(sa.select(t.mandates).where(t.mandates.c.id == mandate_id),
                                                   lock))).first()
        return _mandate(row) if row else None

    async def by_key(self, idempotency_key: str) -> Mandate | None:
        row = (await self._conn.execute(sa.select(t.mandates).where(
            t.mandates.c.idempotency_key == idempotency_key))).first()
        return _mandate(row) if row else None

    async def live(self, organisation_id: str, *, lock: bool = False) -> Mandate | None:
        row = (await self._conn.execute(for_update(sa.select(t.mandates).where(
            t.mandates.c.organisation_id == organisation_id,
            t.mandates.c.state.in_([s.value for s in MandateState if s.live])), lock))).first()
        return _mandate(row) if row else None

    async def by_provider(self, token_id: str, customer_id: str, order_id: str, *,
                          lock: bool = False) -> Mandate | None:
        """The mandate a token report is about: by token id, else by its authorisation order, else the live (or
        latest) one of its customer."""
        conditions = [(t.mandates.c.token_id, token_id), (t.mandates.c.auth_order_id, order_id)]
        for column, value in conditions:
            if value:
                row = (await self._conn.execute(for_update(sa.select(t.mandates).where(column == value),
                                                           lock))).first()
                if row:
                    return _mandate(row)
        if customer_id:
            row = (await self._conn.execute(for_update(
                sa.select(t.mandates).where(t.mandates.c.customer_id == customer_id)
                .order_by(t.mandates.c.created_at.desc()).limit(1), lock))).first()
            if row:
                return _mandate(row)
        return None

    async def update(self, mandate_id: str, **changes: Any) -> None:
        values = {key: (value.value if hasattr(value, "value") else value) for key, value in changes.items()}
        await self._conn.execute(sa.update(t.mandates).where(t.mandates.c.id == mandate_id)
                                 .values(**values, updated_at=sa.func.now()))

    async def list(self, organisation_id: str, include_finished: bool) -> list[Mandate]:
        query = sa.select(t.mandates).order_by(t.mandates.c.created_at.desc(), t.mandates.c.id)
        if organisation_id:
            query = query.where(t.mandates.c.organisation_id == organisation_id)
        if not include_finished:
            query = query.where(t.mandates.c.state.in_([s.value for s in MandateState if s.live]))
        return [_mandate(row) for row in (await self._conn.execute(query.limit(500))).all()]

    # ---- debits
    async def add_debit(self, debit: Debit) -> bool:
        done = await self._conn.execute(insert(t.debits).values(**_debit_values(debit)).on_conflict_do_nothing())
        return bool(done.rowcount)

    async def debit(self, invoice_id: str, *, lock: bool = False) -> Debit | None:
        row = (await self._conn.execute(for_update(sa.select(t.debits).where(t.debits.c.invoice_id == invoice_id),
                                                   lock))).first()
        return _debit(row) if row else None

    async def debit_by_order(self, provider_order_id: str, *, lock: bool = False) -> Debit | None:
        if not provider_order_id:
            return None
        row = (await self._conn.execute(for_update(
            sa.select(t.debits).where(t.debits.c.provider_order_id == provider_order_id), lock))).first()
        return _debit(row) if row else None

    async def debits_of(self, mandate_id: str, limit: int) -> list[Debit]:
        """The mandate's debits, the latest due first."""
        rows = (await self._conn.execute(sa.select(t.debits).where(t.debits.c.mandate_id == mandate_id)
                                         .order_by(t.debits.c.due_at.desc(), t.debits.c.invoice_id)
                                         .limit(limit))).all()
        return [_debit(row) for row in rows]

    async def debits_in_cycle(self, mandate_id: str, cycle: str, invoice_id: str) -> int:
        """The mandate's debits in ``cycle`` other than the invoice's own that were started (ordered, requested or
        captured): the first invoice of a cycle to reach its debit has it."""
        started = [DebitState.ORDERED.value, DebitState.REQUESTED.value, DebitState.CAPTURED.value]
        return int((await self._conn.execute(sa.select(sa.func.count()).select_from(t.debits).where(
            t.debits.c.mandate_id == mandate_id, t.debits.c.cycle == cycle, t.debits.c.invoice_id != invoice_id,
            t.debits.c.state.in_(started)))).scalar() or 0)

    async def update_debit(self, invoice_id: str, **changes: Any) -> None:
        values = {key: (value.value if hasattr(value, "value") else value) for key, value in changes.items()}
        if "reason" in values:
            values["reason"] = str(values["reason"])[:500]
        await self._conn.execute(sa.update(t.debits).where(t.debits.c.invoice_id == invoice_id)
                                 .values(**values, updated_at=sa.func.now()))

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Debit]:
        """Debits whose time has come, leased for ``lease`` (another worker leaves them alone until it ends; a
        worker that died mid-step has its debit taken up again once it has). Each claim counts an attempt."""
        due = (
            sa.select(t.debits.c.invoice_id)
            .where(t.debits.c.state.in_(_WORKING), t.debits.c.next_at <= now)
            .order_by(t.debits.c.next_at).limit(limit).with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.debits).where(t.debits.c.invoice_id.in_(due))
            .values(next_at=now + lease, attempts=t.debits.c.attempts + 1, updated_at=sa.func.now())
            .returning(t.debits))).all()
        return [_debit(row) for row in rows]


def _values(mandate: Mandate) -> dict[str, Any]:
    values = asdict(mandate)
    values.pop("created_at")
    values.pop("updated_at")
    values.update(method=mandate.method.value, state=mandate.state.value,
                  auth_order_id=mandate.auth_order_id or None, token_id=mandate.token_id or None)
    return values


def _mandate(row: sa.Row[Any]) -> Mandate:
    return Mandate(id=row.id, organisation_id=row.organisation_id, method=MandateMethod(row.method),
                   state=MandateState(row.state), max_amount_minor=row.max_amount_minor, expire_at=row.expire_at,
                   customer_id=row.customer_id, auth_order_id=row.auth_order_id or "", token_id=row.token_id or "",
                   checkout_url=row.checkout_url, reason=row.reason, created_at=row.created_at,
                   updated_at=row.updated_at, auth_amount_minor=row.auth_amount_minor,
                   auth_currency=row.auth_currency)


def _debit_values(debit: Debit) -> dict[str, Any]:
    values = asdict(debit)
    values.update(method=debit.method.value, state=debit.state.value)
    return values


def _debit(row: sa.Row[Any]) -> Debit:
    return Debit(invoice_id=row.invoice_id, organisation_id=row.organisation_id, mandate_id=row.mandate_id,
                 method=MandateMethod(row.method), state=DebitState(row.state), amount_minor=row.amount_minor,
                 currency=row.currency, cycle=row.cycle, due_at=row.due_at, debit_at=row.debit_at,
                 receipt=row.receipt, provider_order_id=row.provider_order_id,
                 provider_payment_id=row.provider_payment_id, attempts=row.attempts, next_at=row.next_at,
                 notified_at=row.notified_at, reason=row.reason, link_url=row.link_url)
