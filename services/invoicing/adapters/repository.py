"""All SQL of the invoicing service."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import organisations
from services.invoicing.domain.organisation import Organisation, OrganisationDetails

_DETAIL_COLUMNS = (
    "name",
    "billing_email",
    "billing_currency",
    "country",
    "state_code",
    "gstin",
    "timezone",
    "billing_address",
)


def organisation_from_row(row: sa.Row[Any]) -> Organisation:
    details = OrganisationDetails(**{column: getattr(row, column) for column in _DETAIL_COLUMNS})
    return Organisation(id=row.id, details=details, created_at=row.created_at)


class OrganisationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, organisation_id: str, details: OrganisationDetails, idempotency_key: str = ""
    ) -> tuple[Organisation, bool]:
        """Insert; with an idempotency key, return the earlier organisation instead. (organisation, created)"""
        values = {"id": organisation_id, **{column: getattr(details, column) for column in _DETAIL_COLUMNS}}
        row, created = await insert_once(
            self._conn, organisations, values, idempotency_key=idempotency_key, fingerprint=details.fingerprint()
        )
        return organisation_from_row(row), created

    async def get(self, organisation_id: str, *, for_update: bool = False) -> Organisation | None:
        """With ``for_update``, the row stays locked until the transaction ends (one subscription change of an
        organisation at a time)."""
        query = sa.select(organisations).where(organisations.c.id == organisation_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).one_or_none()
        return organisation_from_row(row) if row else None

    async def count(self) -> int:
        return (await self._conn.execute(sa.select(sa.func.count()).select_from(organisations))).scalar_one()

    async def list(self, *, limit: int, after: str | None) -> list[Organisation]:
        query = sa.select(organisations).order_by(organisations.c.id).limit(limit)
        if after:
            query = query.where(organisations.c.id > after)
        return [organisation_from_row(row) for row in (await self._conn.execute(query)).all()]
