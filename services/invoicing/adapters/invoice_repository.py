"""SQL of invoices and their number series.

Numbers come from ``invoice_number_series``: one row per (series, financial year), incremented in the issuing
transaction. The row stays locked until that transaction ends, so numbers are handed out in order, and a
rollback hands its numbers back: no gaps, no reuse."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.invoicing.adapters.invoice_json import from_row, header_values, to_document
from services.invoicing.adapters.tables import invoice_number_series, invoice_status_changes, invoices
from services.invoicing.domain.invoice import Invoice, InvoiceStatus
from services.invoicing.domain.settlement import Balance


class InvoiceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert_drafts(
        self, drafts: Sequence[Invoice], run_id: str = "", documents: Mapping[str, dict[str, Any]] | None = None
    ) -> dict[str, datetime]:
        """Store drafts; one whose (organisation, period) already has a live invoice, or that reissues an invoice
        already reissued, is skipped. Returns the ids stored, each with its stored creation time. Two runs
        inserting the same period at once: the second waits on the unique index, then skips. ``documents``
        (invoice id -> ``to_document``) saves building the ones the caller already has."""
        if not drafts:
            return {}
        # One statement with a row of parameters per draft (executemany): SQLAlchemy compiles it once and sends
        # the rows as multi-row VALUES, where a .values([...]) of a whole batch would compile thousands of
        # parameters anew every batch.
        statement = (
            insert(invoices)
            # Any unique index: one live invoice per (organisation, period), and one reissue per voided invoice.
            .on_conflict_do_nothing()
            .returning(invoices.c.id, invoices.c.created_at)
        )
        documents = documents or {}
        rows = [
            {**header_values(d), "document": documents.get(d.id) or to_document(d), "run_id": run_id or None}
            for d in drafts
        ]
        return {row.id: row.created_at for row in (await self._conn.execute(statement, rows)).all()}

    async def update_drafts(
        self, drafts: Sequence[Invoice], documents: Mapping[str, dict[str, Any]] | None = None
    ) -> dict[str, datetime]:
        """Replace the content of drafts priced again (same id, organisation and period), locking them; one that
        is no longer a draft (issued meanwhile) is left alone. Returns the ids updated with their creation time."""
        if not drafts:
            return {}
        documents = documents or {}
        # The drafts still drafts, locked in id order (like every other lock on invoices), then one UPDATE with a
        # row of parameters each (executemany), as mark_issued does: a run in a grace period prices every draft.
        rows = await self._conn.execute(
            sa.select(invoices.c.id, invoices.c.created_at)
            .where(invoices.c.id.in_([d.id for d in drafts]), invoices.c.status == InvoiceStatus.DRAFT.value)
            .order_by(invoices.c.id)
            .with_for_update()
        )
        updated = {row.id: row.created_at for row in rows}
        if updated:
            await self._conn.execute(
                sa.update(invoices)
                .where(invoices.c.id == sa.bindparam("b_id"))
                .values(document=sa.bindparam("b_document"), subtotal_minor=sa.bindparam("b_subtotal"),
                        tax_minor=sa.bindparam("b_tax"), total_minor=sa.bindparam("b_total"),
                        amount_due_minor=sa.bindparam("b_due")),
                [
                    {"b_id": d.id, "b_document": documents.get(d.id) or to_document(d),
                     "b_subtotal": d.subtotal_minor, "b_tax": d.tax_minor, "b_total": d.total_minor,
                     "b_due": d.amount_due_minor}
                    for d in drafts if d.id in updated
                ],
            )
        return updated

    async def recent_live(self, organisation_ids: Sequence[str], ending_after: datetime) -> dict[str, list[Invoice]]:
        """Every invoice but the void ones, drafts included, of these organisations whose period ends after
        ``ending_after``, oldest period first, by organisation."""
        if not organisation_ids:
            return {}
        rows = (
            await self._conn.execute(
                sa.select(invoices)
                .where(
                    invoices.c.organisation_id.in_(list(organisation_ids)),
                    invoices.c.period_end > ending_after,
                    invoices.c.status != InvoiceStatus.VOID.value,
                )
                .order_by(invoices.c.organisation_id, invoices.c.period_start, invoices.c.id)
            )
        ).all()
        found: dict[str, list[Invoice]] = {}
        for row in rows:
            found.setdefault(row.organisation_id, []).append(from_row(row))
        return found

    async def lock(self, invoice_ids: Sequence[str]) -> None:
        """Lock these invoices until the transaction ends, in id order."""
        if invoice_ids:
            await self._conn.execute(
                sa.select(invoices.c.id).where(invoices.c.id.in_(sorted(set(invoice_ids))))
                .order_by(invoices.c.id).with_for_update()
            )

    async def draft_period_keys(self) -> list[str]:
        """The periods that have a draft invoice, oldest first."""
        rows = await self._conn.execute(
            sa.select(invoices.c.period_key).where(invoices.c.status == InvoiceStatus.DRAFT.value)
            .distinct().order_by(invoices.c.period_key)
        )
        return list(rows.scalars().all())

    async def period_invoices(self, organisation_ids: Sequence[str], period_key: str) -> dict[str, list[sa.Row[Any]]]:
        """(id, status) of every invoice, void ones included, of these organisations for one period."""
        if not organisation_ids:
            return {}
        rows = (
            await self._conn.execute(
                sa.select(invoices.c.id, invoices.c.organisation_id, invoices.c.status).where(
                    invoices.c.period_key == period_key, invoices.c.organisation_id.in_(list(organisation_ids))
                )
            )
        ).all()
        result: dict[str, list[sa.Row[Any]]] = {}
        for row in rows:
            result.setdefault(row.organisation_id, []).append(row)
        return result

    async def lock_draft_ids(self, invoice_ids: Sequence[str]) -> list[str]:
        """The ids of the drafts among ``invoice_ids``, locked in id order (so concurrent issuers never
        deadlock); the caller reads the ones it does not already hold."""
        if not invoice_ids:
            return []
        rows = await self._conn.execute(
            sa.select(invoices.c.id)
            .where(invoices.c.id.in_(list(invoice_ids)), invoices.c.status == InvoiceStatus.DRAFT.value)
            .order_by(invoices.c.id)
            .with_for_update()
        )
        return list(rows.scalars().all())

    async def take_numbers(self, series: str, financial_year: str, count: int) -> range:
        """The next ``count`` sequence numbers of a series in a financial year; the row stays locked until the
        transaction ends."""
        statement = (
            insert(invoice_number_series)
            .values(series=series, financial_year=financial_year, last_sequence=count)
            .on_conflict_do_update(
                index_elements=["series", "financial_year"],
                set_={"last_sequence": invoice_number_series.c.last_sequence + count},
            )
            .returning(invoice_number_series.c.last_sequence)
        )
        last = (await self._conn.execute(statement)).scalar_one()
        return range(last - count + 1, last + 1)

    async def mark_issued(self, issued: Sequence[tuple[str, str, date, date]], issued_at: datetime) -> None:
        """Set (id, number, issue date, due date) on drafts and make them issued."""
        if not issued:
            return
        await self._conn.execute(
            sa.update(invoices)
            .where(invoices.c.id == sa.bindparam("b_id"))
            .values(
                status=InvoiceStatus.ISSUED.value,
                number=sa.bindparam("b_number"),
                issue_date=sa.bindparam("b_issue_date"),
                due_date=sa.bindparam("b_due_date"),
                issued_at=issued_at,
            ),
            [
                {"b_id": i, "b_number": n, "b_issue_date": issue, "b_due_date": due}
                for i, n, issue, due in issued
            ],
        )
        # The start of each invoice's status history, for the whole batch in one INSERT ... SELECT (the numbers
        # and run ids are already in the rows just updated): an invoice run issues thousands per second, and a
        # row per invoice sent from here would cost it a round of parameters per invoice.
        ids = [i for i, _, _, _ in issued]
        await self._conn.execute(
            sa.insert(invoice_status_changes).from_select(
                ["invoice_id", "from_status", "to_status", "changed_at", "reason", "cause"],
                sa.select(
                    invoices.c.id,
                    sa.literal(InvoiceStatus.DRAFT.value),
                    sa.literal(InvoiceStatus.ISSUED.value),
                    sa.literal(issued_at, sa.DateTime(timezone=True)),
                    sa.literal("issued as ") + invoices.c.number,
                    sa.func.coalesce(sa.literal("invoice run ") + invoices.c.run_id, sa.literal("reissue")),
                ).where(invoices.c.id == sa.func.any(sa.literal(ids, sa.ARRAY(sa.Text)))),
            )
        )

    async def get(self, invoice_id: str, *, for_update: bool = False) -> Invoice | None:
        query = sa.select(invoices).where(invoices.c.id == invoice_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).one_or_none()
        return from_row(row) if row else None

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        if not invoice_ids:
            return []
        rows = (
            await self._conn.execute(
                sa.select(invoices).where(invoices.c.id.in_(list(invoice_ids))).order_by(invoices.c.id)
            )
        ).all()
        return [from_row(row) for row in rows]

    async def list(
        self, *, organisation_id: str, status: str, period_key: str, limit: int, before: str | None
    ) -> list[Invoice]:
        """Newest first; ``before`` is the last id of the previous page."""
        query = sa.select(invoices).order_by(invoices.c.id.desc()).limit(limit)
        if organisation_id:
            query = query.where(invoices.c.organisation_id == organisation_id)
        if status:
            query = query.where(invoices.c.status == status)
        if period_key:
            query = query.where(invoices.c.period_key == period_key)
        if before:
            query = query.where(invoices.c.id < before)
        return [from_row(row) for row in (await self._conn.execute(query)).all()]

    async def void(self, invoice_id: str, reason: str, voided_at: datetime, *, from_status: InvoiceStatus) -> None:
        """Void the invoice (it owes nothing any more) and record why in its status history."""
        await self._conn.execute(
            sa.update(invoices)
            .where(invoices.c.id == invoice_id)
            .values(status=InvoiceStatus.VOID.value, void_reason=reason, voided_at=voided_at, amount_due_minor=0)
        )
        await self._conn.execute(
            sa.insert(invoice_status_changes).values(
                invoice_id=invoice_id, from_status=from_status.value, to_status=InvoiceStatus.VOID.value,
                changed_at=voided_at, reason=f"voided: {reason}", cause="VoidInvoice",
            )
        )

    async def set_balance(self, invoice_id: str, balance: Balance) -> None:
        """Store what settlement computed: status and amounts."""
        await self._conn.execute(
            sa.update(invoices)
            .where(invoices.c.id == invoice_id)
            .values(
                status=balance.status.value,
                amount_paid_minor=balance.amount_paid_minor,
                amount_refunded_minor=balance.amount_refunded_minor,
                amount_due_minor=balance.amount_due_minor,
            )
        )

    async def reissue_of(self, voided_invoice_id: str) -> Invoice | None:
        row = (
            await self._conn.execute(sa.select(invoices).where(invoices.c.replaces_invoice_id == voided_invoice_id))
        ).one_or_none()
        return from_row(row) if row else None
