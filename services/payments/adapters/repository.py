"""All SQL of the payments service: one repository per kind of row, each over the unit of work's connection.

Rows that several deliveries or replicas may touch at once are read ``FOR UPDATE`` by the use cases that
change them; background work claims due rows with ``FOR UPDATE SKIP LOCKED`` and pushes their next attempt
out by a lease, so two replicas never call the provider for the same thing at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.payments.adapters import tables as t
from services.payments.domain.entities import (
    Invoice,
    InvoiceState,
    Payment,
    PaymentLink,
    Refund,
    WebhookEvent,
)
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import ProviderFailure
from services.payments.domain.refund import RefundStatus


def row_fields(row: sa.Row[Any], cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in row._mapping.items() if k in names and k not in skip}


def for_update(statement: sa.Select, lock: bool) -> sa.Select:
    return statement.with_for_update() if lock else statement


class InvoiceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, invoice: Invoice) -> bool:
        """Store an invoice to collect; False if it was already stored (a redelivered invoice.issued)."""
        values = {k: v for k, v in invoice.__dict__.items()}
        values["state"] = invoice.state.value
        statement = insert(t.invoices).values(**values).on_conflict_do_nothing().returning(t.invoices.c.invoice_id)
        return (await self._conn.execute(statement)).first() is not None

    async def get(self, invoice_id: str, *, lock: bool = False) -> Invoice | None:
        row = (await self._conn.execute(
            for_update(sa.select(t.invoices).where(t.invoices.c.invoice_id == invoice_id), lock))).first()
        return _invoice(row) if row else None

    async def update(self, invoice_id: str, **values: Any) -> None:
        if "state" in values:
            values["state"] = InvoiceState(values["state"]).value
        await self._conn.execute(
            sa.update(t.invoices).where(t.invoices.c.invoice_id == invoice_id)
            .values(**values, updated_at=sa.func.now())
        )


def _invoice(row: sa.Row[Any]) -> Invoice:
    return Invoice(**{**row_fields(row, Invoice), "state": InvoiceState(row.state)})


def among(column: sa.ColumnElement[Any], providers: Sequence[Provider] | None) -> sa.ColumnElement[bool]:
    return sa.true() if providers is None else column.in_([p.value for p in providers])


class PaymentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, payment: Payment) -> bool:
        """Store a payment; False when one with the same provider id (or offline reference) exists."""
        values = {k: v for k, v in payment.__dict__.items() if k not in ("created_at", "refunded_minor")}
        values.update(provider=payment.provider.value, status=payment.status.value)
        statement = insert(t.payments).values(**values).on_conflict_do_nothing().returning(t.payments.c.id)
        return (await self._conn.execute(statement)).first() is not None

    async def get(self, payment_id: str, *, lock: bool = False) -> Payment | None:
        return await self._one(t.payments.c.id == payment_id, lock)

    async def by_provider_id(
        self, provider: Provider, provider_payment_id: str, *, lock: bool = False
    ) -> Payment | None:
        return await self._one(sa.and_(t.payments.c.provider == provider.value,
                                       t.payments.c.provider_payment_id == provider_payment_id), lock)

    async def offline_by_reference(self, invoice_id: str, reference: str) -> Payment | None:
        return await self._one(sa.and_(t.payments.c.provider == Provider.OFFLINE.value,
                                       t.payments.c.invoice_id == invoice_id, t.payments.c.reference == reference),
                               False)

    async def _one(self, where: sa.ColumnElement[bool], lock: bool) -> Payment | None:
        if lock:
            # Lock first, read after: a statement reads with the snapshot it started with, so the refunded sum of
            # a SELECT ... FOR UPDATE that waited for the lock would miss the refunds the holder just committed.
            await self._conn.execute(sa.select(t.payments.c.id).where(where).with_for_update())
        row = (await self._conn.execute(_with_refunded(sa.select(t.payments)).where(where))).first()
        return _payment(row) if row else None

    async def update(self, payment_id: str, **values: Any) -> None:
        if "status" in values:
            values["status"] = PaymentStatus(values["status"]).value
        await self._conn.execute(
            sa.update(t.payments).where(t.payments.c.id == payment_id).values(**values, updated_at=sa.func.now())
        )

    async def for_invoice(self, invoice_id: str) -> list[Payment]:
        rows = (await self._conn.execute(
            _with_refunded(sa.select(t.payments)).where(t.payments.c.invoice_id == invoice_id)
            .order_by(t.payments.c.id))).all()
        return [_payment(row) for row in rows]

    async def page(self, *, organisation_id: str, invoice_id: str, limit: int, before: str | None) -> list[Payment]:
        """Newest first; ``before`` is the last id of the previous page."""
        statement = _with_refunded(sa.select(t.payments)).order_by(t.payments.c.id.desc()).limit(limit)
        if organisation_id:
            statement = statement.where(t.payments.c.organisation_id == organisation_id)
        if invoice_id:
            statement = statement.where(t.payments.c.invoice_id == invoice_id)
        if before:
            statement = statement.where(t.payments.c.id < before)
        return [_payment(row) for row in (await self._conn.execute(statement)).all()]

    async def claim_due_checks(self, now: datetime, lease: timedelta, limit: int,
                               providers: Sequence[Provider] | None = None) -> list[Payment]:
        """Created or authorized payments due for a fetch (and capture), at one of ``providers`` when given,
        leased to the caller."""
        due = (
            sa.select(t.payments.c.id)
            .where(t.payments.c.status.in_([PaymentStatus.CREATED.value, PaymentStatus.AUTHORIZED.value]),
                   t.payments.c.check_due_at <= now, among(t.payments.c.provider, providers))
            .order_by(t.payments.c.check_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        ids = (await self._conn.execute(
            sa.update(t.payments).where(t.payments.c.id.in_(due))
            .values(check_due_at=now + lease, check_attempts=t.payments.c.check_attempts + 1)
            .returning(t.payments.c.id)
        )).scalars().all()
        return [p for p in [await self.get(i) for i in ids] if p is not None]


def _with_refunded(statement: sa.Select) -> sa.Select:
    held = [s.value for s in RefundStatus if s.holds_money]
    refunded = (
        sa.select(sa.func.coalesce(sa.func.sum(t.refunds.c.amount_minor), 0))
        .where(t.refunds.c.payment_id == t.payments.c.id, t.refunds.c.status.in_(held))
        .scalar_subquery()
        .label("refunded_minor")
    )
    return statement.add_columns(refunded)


def _payment(row: sa.Row[Any]) -> Payment:
    return Payment(**{**row_fields(row, Payment), "provider": Provider(row.provider),
                      "status": PaymentStatus(row.status), "refunded_minor": int(row.refunded_minor)})


class RefundRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_once(self, refund: Refund, fingerprint: str) -> tuple[Refund, bool]:
        """Store a refund unless its idempotency key was used before: then return that one (or Conflict if
        the key came with another request)."""
        values = {k: v for k, v in refund.__dict__.items()
                  if k not in ("created_at", "idempotency_key", "error", "processed_at")}
        values["status"] = refund.status.value
        row, created = await insert_once(self._conn, t.refunds, values,
                                         idempotency_key=refund.idempotency_key or "", fingerprint=fingerprint)
        return _refund(row), created

    async def get(self, refund_id: str, *, lock: bool = False) -> Refund | None:
        statement = for_update(sa.select(t.refunds).where(t.refunds.c.id == refund_id), lock)
        row = (await self._conn.execute(statement)).first()
        return _refund(row) if row else None

    async def by_idempotency_key(self, key: str) -> tuple[Refund, str] | None:
        """The refund first made with this key, and the fingerprint of the request that made it."""
        row = (await self._conn.execute(sa.select(t.refunds).where(t.refunds.c.idempotency_key == key))).first()
        return (_refund(row), row.request_fingerprint or "") if row else None

    async def by_provider_id(self, provider_refund_id: str, *, lock: bool = False) -> Refund | None:
        row = (await self._conn.execute(for_update(
            sa.select(t.refunds).where(t.refunds.c.provider_refund_id == provider_refund_id), lock))).first()
        return _refund(row) if row else None

    async def for_payment(self, payment_id: str) -> list[Refund]:
        rows = (await self._conn.execute(
            sa.select(t.refunds).where(t.refunds.c.payment_id == payment_id).order_by(t.refunds.c.id))).all()
        return [_refund(row) for row in rows]

    async def for_invoice(self, invoice_id: str) -> list[Refund]:
        rows = (await self._conn.execute(
            sa.select(t.refunds).where(t.refunds.c.invoice_id == invoice_id).order_by(t.refunds.c.id))).all()
        return [_refund(row) for row in rows]

    async def page(self, *, payment_id: str, invoice_id: str, limit: int, before: str | None) -> list[Refund]:
        statement = sa.select(t.refunds).order_by(t.refunds.c.id.desc()).limit(limit)
        if payment_id:
            statement = statement.where(t.refunds.c.payment_id == payment_id)
        if invoice_id:
            statement = statement.where(t.refunds.c.invoice_id == invoice_id)
        if before:
            statement = statement.where(t.refunds.c.id < before)
        return [_refund(row) for row in (await self._conn.execute(statement)).all()]

    async def update(self, refund_id: str, **values: Any) -> None:
        if "status" in values:
            values["status"] = RefundStatus(values["status"]).value
        if "error" in values:
            values["error"] = values["error"].record() if values["error"] is not None else None
        await self._conn.execute(
            sa.update(t.refunds).where(t.refunds.c.id == refund_id).values(**values, updated_at=sa.func.now())
        )

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Refund]:
        """Requested refunds the provider has not accepted yet, due for another attempt, leased."""
        due = (
            sa.select(t.refunds.c.id)
            .where(t.refunds.c.status == RefundStatus.REQUESTED.value, t.refunds.c.next_attempt_at <= now)
            .order_by(t.refunds.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.refunds).where(t.refunds.c.id.in_(due))
            .values(next_attempt_at=now + lease, send_attempts=t.refunds.c.send_attempts + 1)
            .returning(t.refunds)
        )).all()
        return [_refund(row) for row in rows]


def _refund(row: sa.Row[Any]) -> Refund:
    return Refund(**{**row_fields(row, Refund), "status": RefundStatus(row.status),
                     "error": ProviderFailure.from_record(row.error)})


class PaymentLinkRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def for_invoice(self, invoice_id: str) -> list[PaymentLink]:
        rows = (await self._conn.execute(
            sa.select(t.payment_links).where(t.payment_links.c.invoice_id == invoice_id)
            .order_by(t.payment_links.c.id))).all()
        return [PaymentLink(**row_fields(row, PaymentLink)) for row in rows]

    async def by_reference(self, reference_id: str) -> PaymentLink | None:
        row = (await self._conn.execute(
            sa.select(t.payment_links).where(t.payment_links.c.reference_id == reference_id))).first()
        return PaymentLink(**row_fields(row, PaymentLink)) if row else None

    async def by_provider_id(self, provider_link_id: str) -> PaymentLink | None:
        row = (await self._conn.execute(
            sa.select(t.payment_links).where(t.payment_links.c.provider_link_id == provider_link_id))).first()
        return PaymentLink(**row_fields(row, PaymentLink)) if row else None

    async def add(self, link: PaymentLink) -> bool:
        """False when a link with this reference exists already."""
        values = {k: v for k, v in link.__dict__.items() if k != "created_at"}
        statement = insert(t.payment_links).values(**values).on_conflict_do_nothing().returning(t.payment_links.c.id)
        return (await self._conn.execute(statement)).first() is not None

    async def update(self, link_id: str, **values: Any) -> None:
        await self._conn.execute(
            sa.update(t.payment_links).where(t.payment_links.c.id == link_id).values(**values, updated_at=sa.func.now())
        )

    async def made(self, link_id: str, provider_link_id: str, short_url: str, now: datetime) -> str:
        """The provider made the link: it is open, unless a credit note outdated it while it was being made (then
        it is left for the worker to cancel). Returns its status."""
        c = t.payment_links.c
        outdated = c.status != "creating"
        return (await self._conn.execute(
            sa.update(t.payment_links).where(c.id == link_id)
            .values(provider_link_id=provider_link_id, short_url=short_url,
                    status=sa.case((outdated, c.status), else_="created"),
                    next_attempt_at=sa.case((outdated, now), else_=None), updated_at=sa.func.now())
            .returning(c.status)
        )).scalar_one()

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[PaymentLink]:
        """Links the worker has to cancel or make at the provider, due now, each counted and leased."""
        c = t.payment_links.c
        due = (
            sa.select(c.id)
            .where(c.status.in_(["creating", "cancelling"]), c.next_attempt_at <= now)
            .order_by(c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(t.payment_links).where(c.id.in_(due))
            .values(next_attempt_at=now + lease, attempts=c.attempts + 1, updated_at=sa.func.now())
            .returning(t.payment_links)
        )).all()
        return [PaymentLink(**row_fields(row, PaymentLink)) for row in rows]


class WebhookRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(self, provider: str, event_id: str, event_type: str, body: bytes, received_at: datetime) -> bool:
        """Log a delivery; False if this (provider, event id) was logged before (a duplicate delivery). A
        concurrent duplicate waits here for the first one's transaction, then sees it."""
        statement = (
            insert(t.webhook_events)
            .values(provider=provider, event_id=event_id, event_type=event_type, body=body, received_at=received_at,
                    outcome="processing")
            .on_conflict_do_nothing()
            .returning(t.webhook_events.c.event_id)
        )
        return (await self._conn.execute(statement)).first() is not None

    async def set_outcome(self, provider: str, event_id: str, outcome: str) -> None:
        await self._conn.execute(
            sa.update(t.webhook_events)
            .where(t.webhook_events.c.provider == provider, t.webhook_events.c.event_id == event_id)
            .values(outcome=outcome[:500], processed_at=sa.func.now())
        )

    async def page(self, *, event_type: str, limit: int, before_seq: int | None) -> list[WebhookEvent]:
        statement = sa.select(t.webhook_events).order_by(t.webhook_events.c.seq.desc()).limit(limit)
        if event_type:
            statement = statement.where(t.webhook_events.c.event_type == event_type)
        if before_seq is not None:
            statement = statement.where(t.webhook_events.c.seq < before_seq)
        rows = (await self._conn.execute(statement)).all()
        return [WebhookEvent(**row_fields(row, WebhookEvent)) for row in rows]

