"""The SQL of payments' orders: each invoice's provider order, the orders a lower amount replaced, and the credit
notes that lowered it (see :mod:`.repository` for the conventions: locks by the use cases that change rows,
leased claims for background work)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payments.adapters import tables as t
from services.payments.adapters.repository import among, for_update, row_fields
from services.payments.domain.entities import Cancellation, CreditNote, Order, OrderStatus, SupersededOrder
from services.payments.domain.payment import Provider
from services.payments.domain.provider import ProviderFailure


class OrderRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, order: Order) -> None:
        await self._conn.execute(sa.insert(t.orders).values(**_order_values(order)))

    async def get(self, invoice_id: str, *, lock: bool = False) -> Order | None:
        row = (await self._conn.execute(
            for_update(sa.select(t.orders).where(t.orders.c.invoice_id == invoice_id), lock))).first()
        return _order(row) if row else None

    async def by_provider_id(self, provider_order_id: str) -> Order | None:
        row = (await self._conn.execute(
            sa.select(t.orders).where(t.orders.c.provider_order_id == provider_order_id))).first()
        return _order(row) if row else None

    async def invoice_of(self, provider_order_id: str) -> str | None:
        """The invoice a provider order is for: its current order's, or one its order replaced."""
        if not provider_order_id:
            return None
        current = sa.select(t.orders.c.invoice_id).where(t.orders.c.provider_order_id == provider_order_id)
        replaced = sa.select(t.superseded_orders.c.invoice_id).where(
            t.superseded_orders.c.provider_order_id == provider_order_id)
        return (await self._conn.execute(current.union_all(replaced).limit(1))).scalar()

    async def supersede(self, old: SupersededOrder) -> None:
        """Keep a provider order its invoice's order no longer offers (once: a repeat changes nothing)."""
        values = {k: v for k, v in old.__dict__.items() if k != "created_at"}
        values.update(provider=old.provider.value, cancel_state=old.cancel_state.value,
                      error=old.error.record() if old.error is not None else None)
        await self._conn.execute(insert(t.superseded_orders).values(**values).on_conflict_do_nothing())

    async def superseded(self, provider_order_id: str, *, lock: bool = False) -> SupersededOrder | None:
        row = (await self._conn.execute(for_update(sa.select(t.superseded_orders).where(
            t.superseded_orders.c.provider_order_id == provider_order_id), lock))).first()
        return _superseded(row) if row else None

    async def superseded_of(self, invoice_id: str) -> list[SupersededOrder]:
        rows = (await self._conn.execute(
            sa.select(t.superseded_orders).where(t.superseded_orders.c.invoice_id == invoice_id)
            .order_by(t.superseded_orders.c.revision))).all()
        return [_superseded(row) for row in rows]

    async def claim_superseded(self, now: datetime, lease: timedelta, limit: int,
                               providers: Sequence[Provider] | None = None) -> list[SupersededOrder]:
        """Superseded orders still to be cancelled at their provider, due now, each counted and leased."""
        c = t.superseded_orders.c
        due = (
            sa.select(c.provider_order_id)
            .where(c.cancel_state == Cancellation.PENDING.value, c.next_attempt_at <= now,
                   among(c.provider, providers))
            .order_by(c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.superseded_orders).where(c.provider_order_id.in_(due))
            .values(next_attempt_at=now + lease, cancel_attempts=c.cancel_attempts + 1, updated_at=sa.func.now())
            .returning(t.superseded_orders)
        )).all()
        return [_superseded(row) for row in rows]

    async def update_superseded(self, provider_order_id: str, **values: Any) -> None:
        if "cancel_state" in values:
            values["cancel_state"] = Cancellation(values["cancel_state"]).value
        if "error" in values:
            values["error"] = values["error"].record() if values["error"] is not None else None
        await self._conn.execute(
            sa.update(t.superseded_orders).where(t.superseded_orders.c.provider_order_id == provider_order_id)
            .values(**values, updated_at=sa.func.now())
        )

    async def claim_due(self, now: datetime, lease: timedelta, limit: int,
                        providers: Sequence[Provider] | None = None) -> list[Order]:
        """Pending orders whose next attempt is due (at one of ``providers``, when given), each counted as
        attempted and leased to the caller."""
        due = (
            sa.select(t.orders.c.invoice_id)
            .where(t.orders.c.status == OrderStatus.PENDING.value, t.orders.c.next_attempt_at <= now,
                   among(t.orders.c.provider, providers))
            .order_by(t.orders.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.orders).where(t.orders.c.invoice_id.in_(due))
            .values(next_attempt_at=now + lease, create_attempts=t.orders.c.create_attempts + 1,
                    updated_at=sa.func.now())
            .returning(t.orders)
        )).all()
        return [_order(row) for row in rows]

    async def mark_paid(self, invoice_id: str) -> None:
        """The invoice is covered: its order (if still open) is paid."""
        await self._conn.execute(
            sa.update(t.orders)
            .where(t.orders.c.invoice_id == invoice_id,
                   t.orders.c.status.in_([OrderStatus.PENDING.value, OrderStatus.CREATED.value]))
            .values(status=OrderStatus.PAID.value, updated_at=sa.func.now())
        )

    async def update(self, invoice_id: str, **values: Any) -> None:
        await self._conn.execute(
            sa.update(t.orders).where(t.orders.c.invoice_id == invoice_id)
            .values(**_order_values_partial(values), updated_at=sa.func.now())
        )


def _order_values(order: Order) -> dict[str, Any]:
    values = dict(order.__dict__)
    values.pop("created_at")
    values["provider_order_id"] = order.provider_order_id or None
    return _order_values_partial(values)


def _order_values_partial(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    if "provider_order_id" in values and not values["provider_order_id"]:
        values["provider_order_id"] = None  # unique: an order not made yet has none
    if "provider" in values:
        values["provider"] = Provider(values["provider"]).value
    if "status" in values:
        values["status"] = OrderStatus(values["status"]).value
    if "error" in values:
        values["error"] = values["error"].record() if values["error"] is not None else None
    return values


def _order(row: sa.Row[Any]) -> Order:
    return Order(**{**row_fields(row, Order), "status": OrderStatus(row.status), "provider": Provider(row.provider),
                    "provider_order_id": row.provider_order_id or "",
                    "error": ProviderFailure.from_record(row.error)})


def _superseded(row: sa.Row[Any]) -> SupersededOrder:
    return SupersededOrder(**{**row_fields(row, SupersededOrder), "provider": Provider(row.provider),
                              "cancel_state": Cancellation(row.cancel_state),
                              "error": ProviderFailure.from_record(row.error)})


class CreditNoteRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, note: CreditNote) -> bool:
        """Record a credit note as applied; False if it was before (a redelivered credit_note.issued)."""
        statement = (insert(t.credit_notes).values(**note.__dict__).on_conflict_do_nothing()
                     .returning(t.credit_notes.c.credit_note_id))
        return (await self._conn.execute(statement)).first() is not None

    async def for_invoice(self, invoice_id: str) -> list[CreditNote]:
        rows = (await self._conn.execute(
            sa.select(t.credit_notes).where(t.credit_notes.c.invoice_id == invoice_id)
            .order_by(t.credit_notes.c.created_at, t.credit_notes.c.credit_note_id))).all()
        return [CreditNote(**row_fields(row, CreditNote)) for row in rows]
