"""In-memory price overrides (``services.invoicing.service.ports.PriceOverrides``) over :class:`fakes.Tables`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.price_override import PriceOverride
from tests.unit.services.invoicing.service.fakes import Tables, insert_once


class FakePriceOverrides:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def _all(self) -> list[PriceOverride]:
        return sorted((row.value for row in self._tables.price_overrides.values()),
                      key=lambda o: (o.organisation_id, o.plan_code, o.version))

    async def of(self, organisation_id: str, plan_id: str = "") -> list[PriceOverride]:
        return [o for o in self._all()
                if o.organisation_id == organisation_id and (not plan_id or o.plan_id == plan_id)]

    async def for_organisations(self, organisation_ids: Sequence[str]) -> dict[str, list[PriceOverride]]:
        found: dict[str, list[PriceOverride]] = {}
        for override in self._all():
            if override.organisation_id in organisation_ids:
                found.setdefault(override.organisation_id, []).append(override)
        return found

    async def made_with_key(self, idempotency_key: str) -> tuple[PriceOverride, str] | None:
        if not idempotency_key:
            return None
        for row in self._tables.price_overrides.values():
            if row.idempotency_key == idempotency_key:
                return row.value, row.fingerprint
        return None

    async def add(self, override: PriceOverride, *, idempotency_key: str, fingerprint: str) -> tuple[str, bool]:
        assert override.organisation_id in self._tables.organisations, "the foreign key to organisations"
        assert override.plan_id in self._tables.plans, "the foreign key to plans"
        assert all((o.organisation_id, o.plan_id, o.version) != (override.organisation_id, override.plan_id,
                                                                  override.version) for o in self._all()), "unique"
        value, created = insert_once(self._tables.price_overrides, override.id, override, idempotency_key, fingerprint)
        return value.id, created

    async def invoiced_until(self, organisation_id: str) -> datetime | None:
        ends = [invoice.period_end for invoice in self._tables.invoices.values()
                if invoice.organisation_id == organisation_id and invoice.status is not InvoiceStatus.VOID]
        return max(ends, default=None)
