"""SQL of settlement: the payments events recorded against invoices, their status history and the review list."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.ids import new_id
from services.invoicing.adapters.tables import invoice_status_changes, review_items, settlements
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.settlement import (
    RecordedSettlement,
    Review,
    ReviewItem,
    ReviewKind,
    Settlement,
    SettlementKind,
    StatusChange,
)

# Who resolves a review item that a later event made moot.
SETTLEMENT_ACTOR = "settlement"


def _to_settlement(row: sa.Row[Any]) -> Settlement:
    return Settlement(
        event_id=row.event_id,
        kind=SettlementKind(row.kind),
        occurred_at=row.occurred_at,
        amount_minor=row.amount_minor,
        currency=row.currency,
        payment_id=row.payment_id,
        refund_id=row.refund_id,
        provider=row.provider,
    )


def _to_review_item(row: sa.Row[Any]) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        invoice_id=row.invoice_id or "",
        organisation_id=row.organisation_id,
        kind=ReviewKind(row.kind),
        detail=row.detail,
        event_id=row.event_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolution=row.resolution,
        resolved_by=row.resolved_by,
    )


class SettlementRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # Settlements -----------------------------------------------------------------------------------------

    async def add(self, invoice_id: str, settlement: Settlement) -> bool:
        """Record a payments event against an invoice; False when its event id is already recorded (a
        redelivery, or another replica got there first)."""
        statement = (
            insert(settlements)
            .values(
                event_id=settlement.event_id,
                invoice_id=invoice_id,
                kind=settlement.kind.value,
                payment_id=settlement.payment_id,
                refund_id=settlement.refund_id,
                provider=settlement.provider,
                amount_minor=settlement.amount_minor,
                currency=settlement.currency,
                occurred_at=settlement.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(settlements.c.event_id)
        )
        return (await self._conn.execute(statement)).scalar_one_or_none() is not None

    async def for_invoice(self, invoice_id: str) -> list[RecordedSettlement]:
        rows = (
            await self._conn.execute(
                sa.select(settlements)
                .where(settlements.c.invoice_id == invoice_id)
                .order_by(settlements.c.occurred_at, settlements.c.event_id)
            )
        ).all()
        return [RecordedSettlement(row.invoice_id, _to_settlement(row), row.recorded_at, row.applied) for row in rows]

    async def mark_applied(self, invoice_id: str, applied: Collection[str]) -> None:
        """Flag exactly ``applied`` of the invoice's settlements as counting towards its amounts."""
        await self._conn.execute(
            sa.update(settlements)
            .where(settlements.c.invoice_id == invoice_id)
            .values(applied=settlements.c.event_id.in_(list(applied)) if applied else sa.false())
        )

    # Status history ----------------------------------------------------------------------------------------

    async def add_status_change(
        self, invoice_id: str, from_status: InvoiceStatus, to_status: InvoiceStatus, changed_at: datetime, *,
        reason: str, cause: str,
    ) -> None:
        await self._conn.execute(
            sa.insert(invoice_status_changes).values(
                invoice_id=invoice_id, from_status=from_status.value, to_status=to_status.value,
                changed_at=changed_at, reason=reason, cause=cause,
            )
        )

    async def times_became(self, invoice_id: str, status: InvoiceStatus) -> int:
        """How many times the invoice's history shows it entering ``status``."""
        return (
            await self._conn.execute(
                sa.select(sa.func.count()).where(
                    invoice_status_changes.c.invoice_id == invoice_id,
                    invoice_status_changes.c.to_status == status.value,
                )
            )
        ).scalar_one()

    async def status_changes(self, invoice_id: str) -> list[StatusChange]:
        rows = (
            await self._conn.execute(
                sa.select(invoice_status_changes)
                .where(invoice_status_changes.c.invoice_id == invoice_id)
                .order_by(invoice_status_changes.c.id)
            )
        ).all()
        return [
            StatusChange(
                row.invoice_id, InvoiceStatus(row.from_status), InvoiceStatus(row.to_status), row.changed_at,
                row.reason, row.cause,
            )
            for row in rows
        ]

    # Review list -------------------------------------------------------------------------------------------

    async def add_reviews(self, invoice_id: str | None, organisation_id: str, reviews: Sequence[Review]) -> None:
        """Put reviews on the list, once per (kind, event id). One that settlement itself resolved earlier (a
        later event made it moot) and that holds again is reopened; one a person resolved stays resolved."""
        if not reviews:
            return
        statement = insert(review_items)
        statement = statement.on_conflict_do_update(
            constraint="review_items_kind_event_key",
            set_={
                "detail": statement.excluded.detail,
                "amount_minor": statement.excluded.amount_minor,
                "resolved_at": None,
                "resolution": "",
                "resolved_by": "",
            },
            where=sa.and_(review_items.c.resolved_at.is_not(None), review_items.c.resolved_by == SETTLEMENT_ACTOR),
        )
        await self._conn.execute(
            statement,
            [
                {
                    "id": new_id("rvw"), "invoice_id": invoice_id, "organisation_id": organisation_id,
                    "kind": review.kind.value, "detail": review.detail, "event_id": review.event_id,
                    "amount_minor": review.amount_minor, "currency": review.currency,
                }
                for review in reviews
            ],
        )

    async def resolve_moot(
        self, invoice_id: str, kinds: Collection[ReviewKind], still_holding: Collection[tuple[ReviewKind, str]],
        resolved_at: datetime, resolution: str,
    ) -> None:
        """Resolve the invoice's open reviews of ``kinds`` that no longer hold (not in ``still_holding``)."""
        rows = (
            await self._conn.execute(
                sa.select(review_items.c.id, review_items.c.kind, review_items.c.event_id).where(
                    review_items.c.invoice_id == invoice_id,
                    review_items.c.kind.in_([kind.value for kind in kinds]),
                    review_items.c.resolved_at.is_(None),
                )
            )
        ).all()
        holding = {(kind.value, event_id) for kind, event_id in still_holding}
        moot = [row.id for row in rows if (row.kind, row.event_id) not in holding]
        if moot:
            await self._conn.execute(
                sa.update(review_items)
                .where(review_items.c.id.in_(moot))
                .values(resolved_at=resolved_at, resolution=resolution, resolved_by=SETTLEMENT_ACTOR)
            )

    async def review_items(
        self, *, open_only: bool, resolved_only: bool, organisation_id: str, limit: int, before: str | None
    ) -> list[ReviewItem]:
        """Newest first; ``before`` is the last id of the previous page."""
        query = sa.select(review_items).order_by(review_items.c.id.desc()).limit(limit)
        if open_only:
            query = query.where(review_items.c.resolved_at.is_(None))
        if resolved_only:
            query = query.where(review_items.c.resolved_at.is_not(None))
        if organisation_id:
            query = query.where(review_items.c.organisation_id == organisation_id)
        if before:
            query = query.where(review_items.c.id < before)
        return [_to_review_item(row) for row in (await self._conn.execute(query)).all()]

    async def review_item(self, review_item_id: str, *, for_update: bool = False) -> ReviewItem | None:
        query = sa.select(review_items).where(review_items.c.id == review_item_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).one_or_none()
        return _to_review_item(row) if row else None

    async def resolve(self, review_item_id: str, resolved_at: datetime, resolution: str, resolved_by: str) -> None:
        await self._conn.execute(
            sa.update(review_items)
            .where(review_items.c.id == review_item_id, review_items.c.resolved_at.is_(None))
            .values(resolved_at=resolved_at, resolution=resolution, resolved_by=resolved_by)
        )
