"""SQL of prepaid credit grants and what invoices consumed from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import credit_consumptions, credit_grants, invoices
from services.invoicing.domain.credit import CreditGrant, GrantSource, GrantStatus, GrantTerms, LedgerKind
from services.invoicing.domain.invoice import InvoiceStatus


@dataclass(frozen=True)
class Consumption:
    """One entry of the credit ledger: what one invoice consumed from one grant (``released_at`` when the invoice
    was voided), or, of kind clawback, what a refund (``refund_id``) of the top-up invoice ``invoice_id`` took back
    (``released_at`` when the refund failed)."""

    grant_id: str
    invoice_id: str
    amount_minor: int
    consumed_at: datetime
    released_at: datetime | None
    kind: LedgerKind = LedgerKind.INVOICE
    refund_id: str = ""


def _summed(kind: LedgerKind, label: str) -> sa.Label[Any]:
    return (
        sa.select(sa.func.coalesce(sa.func.sum(credit_consumptions.c.amount_minor), 0))
        .where(credit_consumptions.c.grant_id == credit_grants.c.id, credit_consumptions.c.released_at.is_(None),
               credit_consumptions.c.kind == kind.value)
        .correlate(credit_grants)
        .scalar_subquery()
        .label(label)
    )


def _query() -> sa.Select[Any]:
    return sa.select(
        credit_grants, _summed(LedgerKind.INVOICE, "consumed_minor"), _summed(LedgerKind.CLAWBACK, "clawed_back_minor")
    )


def _grant_from_row(row: Any) -> CreditGrant:
    return CreditGrant(
        id=row.id,
        organisation_id=row.organisation_id,
        currency=row.currency,
        amount_minor=row.amount_minor,
        priority=row.priority,
        source=GrantSource(row.source),
        created_at=row.created_at,
        status=GrantStatus(row.status),
        expires_at=row.expires_at,
        source_id=row.source_id,
        description=row.description,
        consumed_minor=int(row.consumed_minor),
        voided_at=row.voided_at,
        clawed_back_minor=int(row.clawed_back_minor),
    )


class CreditRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, grant_id: str, organisation_id: str, terms: GrantTerms, status: GrantStatus, created_at: datetime,
        *, idempotency_key: str, fingerprint: str, purchase_invoice_id: str = "",
    ) -> tuple[str, bool]:
        """Insert a grant, or find the one made with this idempotency key; (grant id, created)."""
        values = {
            "id": grant_id, "organisation_id": organisation_id, "currency": terms.currency,
            "amount_minor": terms.amount_minor, "priority": terms.priority, "source": terms.source.value,
            "source_id": terms.source_id, "status": status.value, "expires_at": terms.expires_at,
            "description": terms.description, "purchase_invoice_id": purchase_invoice_id or None,
            "created_at": created_at,
        }
        row, created = await insert_once(
            self._conn, credit_grants, values, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        return row.id, created

    async def id_for_source(self, source: GrantSource, source_id: str) -> str | None:
        return (
            await self._conn.execute(
                sa.select(credit_grants.c.id).where(
                    credit_grants.c.source == source.value, credit_grants.c.source_id == source_id
                )
            )
        ).scalar_one_or_none()

    async def made_with_key(self, idempotency_key: str) -> tuple[str, str] | None:
        """(grant id, request fingerprint) of the grant made with this idempotency key."""
        row = (
            await self._conn.execute(
                sa.select(credit_grants.c.id, credit_grants.c.request_fingerprint)
                .where(credit_grants.c.idempotency_key == idempotency_key)
            )
        ).one_or_none()
        return (row.id, row.request_fingerprint or "") if row else None

    async def purchase_invoice_of(self, grant_id: str) -> str | None:
        return (
            await self._conn.execute(
                sa.select(credit_grants.c.purchase_invoice_id).where(credit_grants.c.id == grant_id)
            )
        ).scalar_one_or_none()

    async def lock_source(self, source: GrantSource, source_id: str) -> None:
        """Serialise grants for one (source, source id) until the transaction ends."""
        await self._conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"credit:{source}:{source_id}", 0)))
        )

    async def get(self, grant_id: str, *, for_update: bool = False) -> CreditGrant | None:
        if for_update:
            await self._conn.execute(sa.select(credit_grants.c.id).where(credit_grants.c.id == grant_id)
                                     .with_for_update())
        row = (await self._conn.execute(_query().where(credit_grants.c.id == grant_id))).one_or_none()
        return _grant_from_row(row) if row else None

    async def of_organisations(
        self, organisation_ids: Sequence[str], *, for_update: bool = False
    ) -> dict[str, list[CreditGrant]]:
        """Every grant of these organisations, oldest first, by organisation. ``for_update`` locks them (in id
        order, so concurrent runs never deadlock) until the transaction ends, then reads what they hold now."""
        if not organisation_ids:
            return {}
        where = credit_grants.c.organisation_id.in_(sorted(set(organisation_ids)))
        if for_update:
            await self._conn.execute(
                sa.select(credit_grants.c.id).where(where).order_by(credit_grants.c.id).with_for_update()
            )
        rows = (
            await self._conn.execute(_query().where(where).order_by(credit_grants.c.created_at, credit_grants.c.id))
        ).all()
        found: dict[str, list[CreditGrant]] = {}
        for row in rows:
            found.setdefault(row.organisation_id, []).append(_grant_from_row(row))
        return found

    async def record_consumptions(self, uses: Sequence[tuple[str, str, int]], at: datetime) -> None:
        """(grant id, invoice id, amount): consumed, unless already recorded for that (grant, invoice)."""
        if not uses:
            return
        await self._conn.execute(
            insert(credit_consumptions).on_conflict_do_nothing(),
            [{"grant_id": g, "invoice_id": i, "amount_minor": a, "consumed_at": at} for g, i, a in uses],
        )

    async def forget_drafts(self, invoice_ids: Sequence[str]) -> None:
        """Delete what these invoices consumed while they are drafts: a draft priced again (in its grace period)
        spends afresh. The caller holds the drafts' row locks."""
        if invoice_ids:
            await self._conn.execute(
                sa.delete(credit_consumptions).where(
                    credit_consumptions.c.invoice_id.in_(list(invoice_ids)),
                    credit_consumptions.c.kind == LedgerKind.INVOICE.value,
                    credit_consumptions.c.invoice_id.in_(
                        sa.select(invoices.c.id).where(invoices.c.status == InvoiceStatus.DRAFT.value)
                    ),
                )
            )

    async def release_invoice(self, invoice_id: str, at: datetime) -> int:
        """Give back what a (voided) invoice consumed; returns how many consumptions were released."""
        result = await self._conn.execute(
            sa.update(credit_consumptions)
            .where(credit_consumptions.c.invoice_id == invoice_id, credit_consumptions.c.released_at.is_(None),
                   credit_consumptions.c.kind == LedgerKind.INVOICE.value)
            .values(released_at=at)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def void(self, grant_id: str, reason: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(credit_grants)
            .where(credit_grants.c.id == grant_id, credit_grants.c.status != GrantStatus.VOIDED.value)
            .values(status=GrantStatus.VOIDED.value, voided_at=at, void_reason=reason)
        )

    async def void_purchase(self, invoice_id: str, reason: str, at: datetime) -> None:
        """The grant a voided top-up invoice would have bought, if still pending, is voided."""
        await self._conn.execute(
            sa.update(credit_grants)
            .where(credit_grants.c.purchase_invoice_id == invoice_id,
                   credit_grants.c.status == GrantStatus.PENDING.value)
            .values(status=GrantStatus.VOIDED.value, voided_at=at, void_reason=reason[:200])
        )

    async def make_purchase_available(self, invoice_id: str) -> str | None:
        """The pending grant bought by this invoice becomes available; its id, or None when there is none
        pending (already available: a second payment event changes nothing)."""
        return (
            await self._conn.execute(
                sa.update(credit_grants)
                .where(credit_grants.c.purchase_invoice_id == invoice_id,
                       credit_grants.c.status == GrantStatus.PENDING.value)
                .values(status=GrantStatus.AVAILABLE.value)
                .returning(credit_grants.c.id)
            )
        ).scalar_one_or_none()

    async def purchase_grant_of(self, invoice_id: str) -> str | None:
        """The grant this (top-up) invoice bought; None for any other invoice."""
        return (
            await self._conn.execute(
                sa.select(credit_grants.c.id).where(credit_grants.c.purchase_invoice_id == invoice_id)
            )
        ).scalar_one_or_none()

    async def record_clawback(self, grant_id: str, invoice_id: str, refund_id: str, amount_minor: int,
                              at: datetime) -> bool:
        """A claw-back of ``amount_minor`` (0 or more) by this refund of the top-up invoice; False when this refund
        already has one (a redelivery)."""
        result = await self._conn.execute(
            insert(credit_consumptions).on_conflict_do_nothing().values(
                grant_id=grant_id, invoice_id=invoice_id, refund_id=refund_id, kind=LedgerKind.CLAWBACK.value,
                amount_minor=amount_minor, consumed_at=at,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release_clawbacks(self, grant_id: str, refund_ids: Sequence[str], at: datetime) -> int:
        """Give back what these (failed) refunds took; how many claw-backs were released."""
        if not refund_ids:
            return 0
        result = await self._conn.execute(
            sa.update(credit_consumptions)
            .where(credit_consumptions.c.grant_id == grant_id, credit_consumptions.c.refund_id.in_(list(refund_ids)),
                   credit_consumptions.c.kind == LedgerKind.CLAWBACK.value, credit_consumptions.c.released_at.is_(None))
            .values(released_at=at)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def spent_on(self, grant_id: str) -> list[str]:
        """The invoices that spent credit of this grant (not given back), oldest first."""
        return list(
            (
                await self._conn.execute(
                    sa.select(credit_consumptions.c.invoice_id)
                    .where(credit_consumptions.c.grant_id == grant_id, credit_consumptions.c.released_at.is_(None),
                           credit_consumptions.c.kind == LedgerKind.INVOICE.value)
                    .order_by(credit_consumptions.c.consumed_at, credit_consumptions.c.invoice_id)
                )
            ).scalars()
        )

    async def consumptions_of(self, organisation_id: str, *, limit: int = 200) -> list[Consumption]:
        """The organisation's ledger of consumption, newest first."""
        rows = (
            await self._conn.execute(
                sa.select(credit_consumptions)
                .join(credit_grants, credit_grants.c.id == credit_consumptions.c.grant_id)
                .where(credit_grants.c.organisation_id == organisation_id)
                .order_by(credit_consumptions.c.consumed_at.desc(), credit_consumptions.c.invoice_id)
                .limit(limit)
            )
        ).all()
        return [
            Consumption(r.grant_id, r.invoice_id, r.amount_minor, r.consumed_at, r.released_at, LedgerKind(r.kind),
                        r.refund_id)
            for r in rows
        ]
