"""SQL of credit notes. A credit note's lines, reversed tax lines and parties are its ``document`` (JSON, decimals
as text); the header columns carry what is searched and summed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.invoicing.adapters.tables import credit_notes, invoices
from services.invoicing.domain.credit_note import (
    CreditNote,
    CreditNoteLine,
    CreditNoteOutcome,
    CreditNoteReason,
    RefundState,
)
from services.invoicing.domain.invoice import Party, TaxKind, TaxLine, TaxRegime


def _line_to_dict(line: CreditNoteLine) -> dict[str, Any]:
    return {
        "invoice_line_number": line.invoice_line_number,
        "description": line.description,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "amount_minor": line.amount_minor,
        "gst_rate": str(line.gst_rate),
        "sac_code": line.sac_code,
    }


def _line_from_dict(raw: dict[str, Any]) -> CreditNoteLine:
    return CreditNoteLine(
        invoice_line_number=raw["invoice_line_number"],
        description=raw["description"],
        quantity=Decimal(raw["quantity"]),
        unit_price=Decimal(raw["unit_price"]),
        amount_minor=raw["amount_minor"],
        gst_rate=Decimal(raw["gst_rate"]),
        sac_code=raw["sac_code"],
    )


def _party(party: Party) -> dict[str, str]:
    return {
        "name": party.name, "email": party.email, "address": party.address, "country": party.country,
        "state_code": party.state_code, "gstin": party.gstin,
    }


def to_document(note: CreditNote) -> dict[str, Any]:
    return {
        "lines": [_line_to_dict(line) for line in note.lines],
        "tax_lines": [
            {"kind": t.kind.value, "rate": str(t.rate), "taxable_minor": t.taxable_minor,
             "amount_minor": t.amount_minor}
            for t in note.tax_lines
        ],
        "invoice_number": note.invoice_number,
        "invoice_issue_date": note.invoice_issue_date.isoformat() if note.invoice_issue_date else None,
        "tax_regime": note.tax_regime.value,
        "place_of_supply": note.place_of_supply,
        "supplier": _party(note.supplier),
        "customer": _party(note.customer),
        "whole": note.whole,
        "time_zone": note.time_zone,
        "notes": list(note.notes),
    }


def from_row(row: Any) -> CreditNote:
    document = row.document
    issued = document.get("invoice_issue_date")
    return CreditNote(
        id=row.id,
        invoice_id=row.invoice_id,
        organisation_id=row.organisation_id,
        number=row.number,
        currency=row.currency,
        issue_date=row.issue_date,
        reason_code=CreditNoteReason(row.reason_code),
        reason=row.reason,
        outcome=CreditNoteOutcome(row.outcome),
        lines=tuple(_line_from_dict(line) for line in document["lines"]),
        tax_lines=tuple(
            TaxLine(TaxKind(t["kind"]), Decimal(t["rate"]), t["taxable_minor"], t["amount_minor"])
            for t in document["tax_lines"]
        ),
        subtotal_minor=row.subtotal_minor,
        tax_minor=row.tax_minor,
        total_minor=row.total_minor,
        invoice_number=document["invoice_number"],
        invoice_issue_date=date.fromisoformat(issued) if issued else None,
        tax_regime=TaxRegime(document["tax_regime"]),
        place_of_supply=document["place_of_supply"],
        supplier=Party(**document["supplier"]),
        customer=Party(**document["customer"]),
        applied_to_due_minor=row.applied_to_due_minor,
        refund_minor=row.refund_minor,
        credit_minor=row.credit_minor,
        refund_state=RefundState(row.refund_state),
        refund_ids=tuple(row.refund_ids or ()),
        refund_error=row.refund_error,
        whole=document.get("whole", False),
        created_at=row.created_at,
        time_zone=document.get("time_zone", ""),
        notes=tuple(document.get("notes", ())),
    )


class CreditNoteRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def made_with_key(self, idempotency_key: str) -> tuple[CreditNote, str] | None:
        """The credit note made with this idempotency key and the fingerprint of its request, if any."""
        if not idempotency_key:
            return None
        row = (
            await self._conn.execute(sa.select(credit_notes).where(credit_notes.c.idempotency_key == idempotency_key))
        ).one_or_none()
        return (from_row(row), row.request_fingerprint or "") if row else None

    async def add(self, note: CreditNote, *, idempotency_key: str, fingerprint: str) -> None:
        """Store a credit note and add its total to its invoice's credited amount (in the same transaction, with
        the invoice row already locked by the caller)."""
        await self._conn.execute(
            sa.insert(credit_notes).values(
                id=note.id, invoice_id=note.invoice_id, organisation_id=note.organisation_id, number=note.number,
                currency=note.currency, issue_date=note.issue_date, reason_code=note.reason_code.value,
                reason=note.reason, outcome=note.outcome.value, subtotal_minor=note.subtotal_minor,
                tax_minor=note.tax_minor, total_minor=note.total_minor,
                applied_to_due_minor=note.applied_to_due_minor, refund_minor=note.refund_minor,
                credit_minor=note.credit_minor, refund_state=note.refund_state.value,
                refund_ids=list(note.refund_ids), refund_error=note.refund_error, document=to_document(note),
                idempotency_key=idempotency_key or None, request_fingerprint=fingerprint,
                **({"created_at": note.created_at} if note.created_at is not None else {}),
            )
        )
        await self._conn.execute(
            sa.update(invoices)
            .where(invoices.c.id == note.invoice_id)
            .values(amount_credited_minor=invoices.c.amount_credited_minor + note.total_minor)
        )

    async def get(self, credit_note_id: str, *, for_update: bool = False) -> CreditNote | None:
        query = sa.select(credit_notes).where(credit_notes.c.id == credit_note_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).one_or_none()
        return from_row(row) if row else None

    async def of_invoice(self, invoice_id: str) -> list[CreditNote]:
        """Every credit note of an invoice, oldest first."""
        rows = await self._conn.execute(
            sa.select(credit_notes).where(credit_notes.c.invoice_id == invoice_id).order_by(credit_notes.c.id)
        )
        return [from_row(row) for row in rows.all()]

    async def list(
        self, *, invoice_id: str, organisation_id: str, limit: int, before: str | None
    ) -> list[CreditNote]:
        """Newest first (descending id); each filter applied when not ""."""
        query = sa.select(credit_notes).order_by(credit_notes.c.id.desc()).limit(limit)
        if invoice_id:
            query = query.where(credit_notes.c.invoice_id == invoice_id)
        if organisation_id:
            query = query.where(credit_notes.c.organisation_id == organisation_id)
        if before:
            query = query.where(credit_notes.c.id < before)
        return [from_row(row) for row in (await self._conn.execute(query)).all()]

    async def set_refund(
        self, credit_note_id: str, state: RefundState, refund_ids: Sequence[str], error: str = ""
    ) -> None:
        await self._conn.execute(
            sa.update(credit_notes)
            .where(credit_notes.c.id == credit_note_id)
            .values(refund_state=state.value, refund_ids=list(refund_ids), refund_error=error)
        )
