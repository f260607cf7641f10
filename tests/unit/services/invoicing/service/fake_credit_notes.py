"""Credit notes and settlement records in memory, keeping the PostgreSQL repositories' contracts: a credit note
adds its total to its invoice's credited amount as it is stored; idempotency keys keep the request's fingerprint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from services.invoicing.domain.credit_note import CreditNote, RefundState
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.settlement import RecordedSettlement
from tests.unit.services.invoicing.service.fakes import Keyed, Tables


class FakeCreditNotes:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def made_with_key(self, idempotency_key: str) -> tuple[CreditNote, str] | None:
        for row in self._tables.credit_notes.values():
            if idempotency_key and row.idempotency_key == idempotency_key:
                return row.value, row.fingerprint
        return None

    async def add(self, note: CreditNote, *, idempotency_key: str, fingerprint: str) -> None:
        assert all(n.value.number != note.number for n in self._tables.credit_notes.values()), "number reused"
        self._tables.credit_notes[note.id] = Keyed(note, idempotency_key, fingerprint)
        invoice = self._tables.invoices[note.invoice_id]
        self._tables.invoices[invoice.id] = replace(
            invoice, amount_credited_minor=invoice.amount_credited_minor + note.total_minor)

    async def get(self, credit_note_id: str, *, for_update: bool = False) -> CreditNote | None:
        row = self._tables.credit_notes.get(credit_note_id)
        return row.value if row else None

    async def of_invoice(self, invoice_id: str) -> list[CreditNote]:
        return sorted((r.value for r in self._tables.credit_notes.values() if r.value.invoice_id == invoice_id),
                      key=lambda n: n.id)

    async def list(self, *, invoice_id: str, organisation_id: str, limit: int, before: str | None) -> list[CreditNote]:
        chosen = [n for n in sorted((r.value for r in self._tables.credit_notes.values()), key=lambda n: n.id,
                                    reverse=True)
                  if (not invoice_id or n.invoice_id == invoice_id)
                  and (not organisation_id or n.organisation_id == organisation_id)
                  and (before is None or n.id < before)]
        return chosen[:limit]

    async def set_refund(self, credit_note_id: str, state: RefundState, refund_ids: Sequence[str],
                         error: str = "") -> None:
        row = self._tables.credit_notes[credit_note_id]
        row.value = replace(row.value, refund_state=state, refund_ids=tuple(refund_ids), refund_error=error)


class FakeSettlementRecords:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def for_invoice(self, invoice_id: str) -> list[RecordedSettlement]:
        return list(self._tables.settlements.get(invoice_id, []))

    async def add_status_change(self, invoice_id: str, from_status: InvoiceStatus, to_status: InvoiceStatus,
                                changed_at: datetime, *, reason: str, cause: str) -> None:
        self._tables.status_changes.append((invoice_id, from_status.value, to_status.value, cause))
