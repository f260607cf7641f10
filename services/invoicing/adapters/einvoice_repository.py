"""SQL of e-invoice registrations: the queue of documents to register with the IRP and what it acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.invoicing.adapters.tables import einvoice_registrations as t
from services.invoicing.adapters.tables import invoices
from services.invoicing.domain.einvoice_registration import ListedRegistration, Registration, RegistrationStatus

_MUTABLE = (
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "ack_no",
    "ack_at",
    "signed_invoice",
    "signed_qr_code",
    "cancelled_at",
    "cancel_reason",
)


def _registration(row: Any) -> Registration:
    values = {k: row._mapping[k] for k in Registration.__dataclass_fields__}
    values["status"] = RegistrationStatus(values["status"])
    return Registration(**values)


class EinvoiceRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_pending(self, registrations: Sequence[Registration]) -> None:
        """Queue documents for registration (a document already queued is left as it is)."""
        if not registrations:
            return
        rows = [
            {k: v.value if isinstance(v, RegistrationStatus) else v for k, v in asdict(r).items()}
            for r in registrations
        ]
        await self._connection.execute(insert(t).values(rows).on_conflict_do_nothing(index_elements=["document_id"]))

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Registration]:
        """Up to ``limit`` pending registrations due at ``now``, each counted as an attempt and pushed ``lease``
        into the future so no other worker takes it while this one talks to the IRP (skipping rows locked)."""
        due = (
            sa.select(t.c.document_id)
            .where(t.c.status == RegistrationStatus.PENDING.value, t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self._connection.execute(
            sa.update(t)
            .where(t.c.document_id.in_(due.scalar_subquery()))
            .values(attempts=t.c.attempts + 1, next_attempt_at=now + lease, updated_at=now)
            .returning(*t.c)
        )
        return sorted((_registration(row) for row in result), key=lambda r: r.document_id)

    async def save(self, registration: Registration, now: datetime) -> None:
        values = {k: getattr(registration, k) for k in _MUTABLE}
        values["status"] = registration.status.value
        await self._connection.execute(
            sa.update(t).where(t.c.document_id == registration.document_id).values(**values, updated_at=now)
        )

    async def get(self, document_id: str, *, for_update: bool = False) -> Registration | None:
        query = sa.select(t).where(t.c.document_id == document_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._connection.execute(query)).first()
        return None if row is None else _registration(row)

    async def list(
        self, *, status: str = "", organisation_id: str = "", invoice_id: str = "", limit: int, after: str | None
    ) -> list[ListedRegistration]:
        query = (
            sa.select(t, invoices.c.organisation_id)
            .join(invoices, invoices.c.id == t.c.invoice_id)
            .order_by(t.c.document_id)
            .limit(limit)
        )
        if status:
            query = query.where(t.c.status == status)
        if organisation_id:
            query = query.where(invoices.c.organisation_id == organisation_id)
        if invoice_id:
            query = query.where(t.c.invoice_id == invoice_id)
        if after:
            query = query.where(t.c.document_id > after)
        return [
            ListedRegistration(_registration(row), row._mapping["organisation_id"])
            for row in await self._connection.execute(query)
        ]
