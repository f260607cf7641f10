"""Prepaid credit grants in memory, keeping the PostgreSQL repository's contracts: idempotency keys, one grant per
(source, source id), one consumption per (grant, invoice), released when the invoice is voided, one claw-back per
(grant, refund id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.invoicing.domain.credit import CreditGrant, GrantSource, GrantStatus, GrantTerms, LedgerKind
from services.invoicing.domain.invoice import InvoiceStatus
from tests.unit.services.invoicing.service.fakes import Tables, insert_once


@dataclass
class ConsumptionRow:
    grant_id: str
    invoice_id: str
    amount_minor: int
    consumed_at: datetime
    released_at: datetime | None = None
    kind: LedgerKind = LedgerKind.INVOICE
    refund_id: str = ""


class FakeCredits:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def _read(self, grant: CreditGrant) -> CreditGrant:
        counted = [c for c in self._tables.consumptions.values() if c.grant_id == grant.id and c.released_at is None]
        return replace(grant, consumed_minor=sum(c.amount_minor for c in counted if c.kind is LedgerKind.INVOICE),
                       clawed_back_minor=sum(c.amount_minor for c in counted if c.kind is LedgerKind.CLAWBACK))

    async def add(self, grant_id: str, organisation_id: str, terms: GrantTerms, status: GrantStatus,
                  created_at: datetime, *, idempotency_key: str, fingerprint: str,
                  purchase_invoice_id: str = "") -> tuple[str, bool]:
        grant = CreditGrant(grant_id, organisation_id, terms.currency, terms.amount_minor, terms.priority,
                            terms.source, created_at, status, terms.expires_at, terms.source_id, terms.description)
        value, created = insert_once(self._tables.grants, grant_id, grant, idempotency_key, fingerprint)
        if created and purchase_invoice_id:
            self._tables.purchases[grant_id] = purchase_invoice_id
        return value.id, created

    async def id_for_source(self, source: GrantSource, source_id: str) -> str | None:
        return next((k.value.id for k in self._tables.grants.values()
                     if k.value.source is source and k.value.source_id == source_id), None)

    async def made_with_key(self, idempotency_key: str) -> tuple[str, str] | None:
        return next(((k.value.id, k.fingerprint) for k in self._tables.grants.values()
                     if idempotency_key and k.idempotency_key == idempotency_key), None)

    async def purchase_invoice_of(self, grant_id: str) -> str | None:
        return self._tables.purchases.get(grant_id)

    async def lock_source(self, source: GrantSource, source_id: str) -> None:
        self._tables.locks.append(f"credit:{source}:{source_id}")

    async def get(self, grant_id: str, *, for_update: bool = False) -> CreditGrant | None:
        row = self._tables.grants.get(grant_id)
        return self._read(row.value) if row else None

    async def of_organisations(self, organisation_ids: Sequence[str], *, for_update: bool = False
                               ) -> dict[str, list[CreditGrant]]:
        found: dict[str, list[CreditGrant]] = {}
        for row in sorted(self._tables.grants.values(), key=lambda k: (k.value.created_at, k.value.id)):
            if row.value.organisation_id in organisation_ids:
                found.setdefault(row.value.organisation_id, []).append(self._read(row.value))
        return found

    async def record_consumptions(self, uses: Sequence[tuple[str, str, int]], at: datetime) -> None:
        for grant_id, invoice_id, amount in uses:
            self._tables.consumptions.setdefault((grant_id, invoice_id, ""),
                                                 ConsumptionRow(grant_id, invoice_id, amount, at))

    async def forget_drafts(self, invoice_ids: Sequence[str]) -> None:
        drafts = {i for i in invoice_ids
                  if i in self._tables.invoices and self._tables.invoices[i].status is InvoiceStatus.DRAFT}
        for key in [key for key, row in self._tables.consumptions.items()
                    if row.invoice_id in drafts and row.kind is LedgerKind.INVOICE]:
            del self._tables.consumptions[key]

    async def release_invoice(self, invoice_id: str, at: datetime) -> int:
        released = 0
        for row in self._tables.consumptions.values():
            if row.invoice_id == invoice_id and row.released_at is None and row.kind is LedgerKind.INVOICE:
                row.released_at = at
                released += 1
        return released

    def _set_status(self, grant_id: str, status: GrantStatus, at: datetime | None) -> None:
        row = self._tables.grants[grant_id]
        row.value = replace(row.value, status=status, voided_at=at)

    async def void(self, grant_id: str, reason: str, at: datetime) -> None:
        if self._tables.grants[grant_id].value.status is not GrantStatus.VOIDED:
            self._set_status(grant_id, GrantStatus.VOIDED, at)

    async def void_purchase(self, invoice_id: str, reason: str, at: datetime) -> None:
        for grant_id, bought_by in self._tables.purchases.items():
            if bought_by == invoice_id and self._tables.grants[grant_id].value.status is GrantStatus.PENDING:
                self._set_status(grant_id, GrantStatus.VOIDED, at)

    async def make_purchase_available(self, invoice_id: str) -> str | None:
        for grant_id, bought_by in self._tables.purchases.items():
            if bought_by == invoice_id and self._tables.grants[grant_id].value.status is GrantStatus.PENDING:
                self._set_status(grant_id, GrantStatus.AVAILABLE, None)
                return grant_id
        return None

    async def purchase_grant_of(self, invoice_id: str) -> str | None:
        return next((g for g, bought_by in self._tables.purchases.items() if bought_by == invoice_id), None)

    async def record_clawback(self, grant_id: str, invoice_id: str, refund_id: str, amount_minor: int,
                              at: datetime) -> bool:
        assert amount_minor >= 0 and refund_id
        key = (grant_id, invoice_id, refund_id)
        if key in self._tables.consumptions:
            return False
        self._tables.consumptions[key] = ConsumptionRow(grant_id, invoice_id, amount_minor, at,
                                                        kind=LedgerKind.CLAWBACK, refund_id=refund_id)
        return True

    async def release_clawbacks(self, grant_id: str, refund_ids: Sequence[str], at: datetime) -> int:
        released = 0
        for row in self._tables.consumptions.values():
            if (row.grant_id == grant_id and row.refund_id in refund_ids and row.kind is LedgerKind.CLAWBACK
                    and row.released_at is None):
                row.released_at = at
                released += 1
        return released

    async def spent_on(self, grant_id: str) -> list[str]:
        rows = [c for c in self._tables.consumptions.values()
                if c.grant_id == grant_id and c.released_at is None and c.kind is LedgerKind.INVOICE]
        return [c.invoice_id for c in sorted(rows, key=lambda c: (c.consumed_at, c.invoice_id))]

    async def consumptions_of(self, organisation_id: str, *, limit: int = 200) -> list[ConsumptionRow]:
        mine = [c for c in self._tables.consumptions.values()
                if self._tables.grants[c.grant_id].value.organisation_id == organisation_id]
        return sorted(mine, key=lambda c: c.consumed_at, reverse=True)[:limit]
