"""SQL of price overrides: an organisation's override versions per plan, terms in their JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import invoices, plans, price_overrides
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.price_override import PriceOverride, override_terms_to_dict, validate_override_terms

_COLUMNS = (price_overrides, plans.c.code.label("plan_code"))


def _from_row(row: sa.Row[Any]) -> PriceOverride:
    return PriceOverride(
        id=row.id,
        organisation_id=row.organisation_id,
        plan_id=row.plan_id,
        plan_code=row.plan_code,
        version=row.version,
        effective_from=row.effective_from,
        terms=validate_override_terms(row.terms, None),
        created_at=row.created_at,
    )


def _select() -> sa.Select[Any]:
    return (
        sa.select(*_COLUMNS)
        .join(plans, plans.c.id == price_overrides.c.plan_id)
        .order_by(price_overrides.c.organisation_id, plans.c.code, price_overrides.c.version)
    )


class PriceOverrideRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def of(self, organisation_id: str, plan_id: str = "") -> list[PriceOverride]:
        """Every version of the organisation's overrides (of one plan when ``plan_id``), by plan code and version."""
        query = _select().where(price_overrides.c.organisation_id == organisation_id)
        if plan_id:
            query = query.where(price_overrides.c.plan_id == plan_id)
        return [_from_row(row) for row in (await self._conn.execute(query)).all()]

    async def for_organisations(self, organisation_ids: Sequence[str]) -> dict[str, list[PriceOverride]]:
        if not organisation_ids:
            return {}
        found: dict[str, list[PriceOverride]] = {}
        rows = await self._conn.execute(_select().where(price_overrides.c.organisation_id.in_(organisation_ids)))
        for row in rows.all():
            found.setdefault(row.organisation_id, []).append(_from_row(row))
        return found

    async def made_with_key(self, idempotency_key: str) -> tuple[PriceOverride, str] | None:
        """The version made with this key, and the fingerprint of the request that made it."""
        if not idempotency_key:
            return None
        row = (
            await self._conn.execute(_select().where(price_overrides.c.idempotency_key == idempotency_key))
        ).one_or_none()
        return (_from_row(row), row.request_fingerprint or "") if row else None

    async def add(self, override: PriceOverride, *, idempotency_key: str, fingerprint: str) -> tuple[str, bool]:
        """Insert a version, or find the one made with this idempotency key; (its id, created). Conflict when
        the key was used for another request."""
        values = {
            "id": override.id,
            "organisation_id": override.organisation_id,
            "plan_id": override.plan_id,
            "version": override.version,
            "effective_from": override.effective_from,
            "terms": override_terms_to_dict(override.terms),
            "created_at": override.created_at,
        }
        row, created = await insert_once(
            self._conn, price_overrides, values, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        return row.id, created

    async def invoiced_until(self, organisation_id: str) -> datetime | None:
        """The end of the organisation's latest period with a live (not void) invoice; None when it has none."""
        query = sa.select(sa.func.max(invoices.c.period_end)).where(
            invoices.c.organisation_id == organisation_id, invoices.c.status != InvoiceStatus.VOID.value
        )
        return (await self._conn.execute(query)).scalar_one_or_none()
