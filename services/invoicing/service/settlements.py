"""Applying the payments service's events to invoices, and reading what settlement recorded.

One payments event is one transaction: lock the invoice row, record the event (its id is the key: a redelivery,
or the same event on another replica, records nothing and changes nothing), recompute the invoice from all of
its recorded events with ``domain/settlement.py``, store the new amounts and status, append the status change
and review items, take a refunded top-up's credit back (``credits.claw_back_refunds``), and, when the invoice
has just become paid, record ``invoice.paid`` in the outbox. Two replicas handling events of the same invoice
queue on the row lock, so each recomputation sees the other's committed event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum

from billing_runtime import paging
from billing_runtime.database import UnitOfWork
from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.outbox import Outbox
from services.invoicing.adapters import messages
from services.invoicing.adapters.credit_note_repository import CreditNoteRepository
from services.invoicing.adapters.credit_repository import CreditRepository
from services.invoicing.adapters.invoice_repository import InvoiceRepository
from services.invoicing.adapters.settlement_repository import SettlementRepository
from services.invoicing.adapters.subscription_repository import SubscriptionRepository
from services.invoicing.domain.invoice import Invoice, InvoiceStatus
from services.invoicing.domain.settlement import (
    RECOMPUTED_REVIEW_KINDS,
    REFUND_KINDS,
    Balance,
    InvoiceTerms,
    PaymentsEvent,
    RecordedSettlement,
    Review,
    ReviewItem,
    ReviewKind,
    Settlement,
    SettlementKind,
    StatusChange,
    settle,
)
from services.invoicing.service.credits import claw_back_refunds

MAX_RESOLUTION_LENGTH = 1000


class InvoiceNotIssuedYet(Exception):
    """The invoice is still a draft (its run is between storing and issuing it): try the event again shortly.
    Applying it now would be overwritten by the issue."""


class Outcome(StrEnum):
    APPLIED = "applied"  # recorded and the invoice recomputed (whether or not anything changed)
    DUPLICATE = "duplicate"  # already recorded: nothing changed
    UNKNOWN_INVOICE = "unknown_invoice"  # no such invoice: on the review list


class Settlements:
    def __init__(
        self, uow: Callable[[], UnitOfWork], outbox: Outbox, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._clock = clock

    async def apply(self, event: PaymentsEvent) -> Outcome:
        """Apply one payments event in one transaction (see the module docstring)."""
        settlement = event.settlement
        now = self._clock()
        async with self._uow() as uow:
            invoices = InvoiceRepository(uow.connection)
            store = SettlementRepository(uow.connection)
            invoice = await invoices.get(event.invoice_id, for_update=True)
            if invoice is None:
                detail = f"unknown invoice {event.invoice_id or '(none given)'}: {settlement.describe()}"
                review = Review(
                    ReviewKind.UNKNOWN_INVOICE, settlement.event_id, detail, settlement.amount_minor,
                    settlement.currency,
                )
                await store.add_reviews(None, event.organisation_id, [review])
                return Outcome.UNKNOWN_INVOICE
            if invoice.status is InvoiceStatus.DRAFT:
                raise InvoiceNotIssuedYet(f"invoice {invoice.id} is still a draft")
            if not await store.add(invoice.id, settlement):
                return Outcome.DUPLICATE
            recorded = await store.for_invoice(invoice.id)
            credited = invoice.amount_credited_minor
            notes = await CreditNoteRepository(uow.connection).of_invoice(invoice.id) if credited else []
            terms = InvoiceTerms(
                invoice.currency, invoice.payable_minor, void=invoice.status is InvoiceStatus.VOID,
                credited_minor=invoice.amount_credited_minor,
                credited_against_due_minor=sum(n.applied_to_due_minor for n in notes),
            )
            result = settle(terms, [r.settlement for r in recorded])
            await store.mark_applied(invoice.id, result.applied)
            await store.add_reviews(invoice.id, invoice.organisation_id, result.reviews)
            if settlement.kind in REFUND_KINDS:
                await self._claw_back(uow, invoice, [r.settlement for r in recorded], result.applied, now)
            await store.resolve_moot(
                invoice.id,
                RECOMPUTED_REVIEW_KINDS,
                [(r.kind, r.event_id) for r in result.reviews],
                now,
                f"no longer holds once event {settlement.event_id} was recorded",
            )
            balance = result.balance
            if balance != _balance_of(invoice):
                await invoices.set_balance(invoice.id, balance)
            if balance.status is not invoice.status:
                await self._status_changed(uow, store, invoice, balance, settlement, now)
        return Outcome.APPLIED

    async def _claw_back(
        self, uow: UnitOfWork, invoice: Invoice, recorded: list[Settlement], applied: frozenset[str], now: datetime
    ) -> None:
        """A top-up's refunds take back the credit it bought (``credits.claw_back_refunds``); the refunds that count
        are the ones settlement applied, by when they happened, and a refund.failed gives its refund's back."""
        refunds = sorted(
            (s for s in recorded if s.kind is SettlementKind.REFUND_PROCESSED and s.event_id in applied),
            key=lambda s: (s.occurred_at, s.event_id),
        )
        failed = [s.refund_id or s.event_id for s in recorded if s.kind is SettlementKind.REFUND_FAILED]
        reviews = await claw_back_refunds(CreditRepository(uow.connection), invoice.id, refunds, failed, now)
        await SettlementRepository(uow.connection).add_reviews(invoice.id, invoice.organisation_id, reviews)

    async def _status_changed(
        self, uow: UnitOfWork, store: SettlementRepository, invoice: Invoice, balance: Balance,
        settlement: Settlement, now: datetime,
    ) -> None:
        await store.add_status_change(
            invoice.id, invoice.status, balance.status, now, reason=settlement.describe(), cause=settlement.event_id
        )
        subscriptions = SubscriptionRepository(uow.connection)
        if balance.status is InvoiceStatus.UNCOLLECTIBLE:
            await subscriptions.mark_past_due(invoice.organisation_id, now)
        elif invoice.status is InvoiceStatus.UNCOLLECTIBLE:
            await subscriptions.clear_past_due(invoice.organisation_id)
        if balance.status is InvoiceStatus.PAID:
            # A top-up's credit becomes spendable when its invoice is paid, once (only a pending grant moves).
            await CreditRepository(uow.connection).make_purchase_available(invoice.id)
            # Numbered by how often this invoice has become paid (this time included): the same transition
            # redelivered can never make a second id, and a later re-payment after a refund makes a new one.
            event_id = f"invoice.paid:{invoice.id}:{await store.times_became(invoice.id, InvoiceStatus.PAID)}"
            paid = replace(
                invoice,
                status=balance.status,
                amount_paid_minor=balance.amount_paid_minor,
                amount_refunded_minor=balance.amount_refunded_minor,
                amount_due_minor=balance.amount_due_minor,
            )
            await self._outbox.record(uow, messages.INVOICE_PAID, event_id, messages.invoice_paid(event_id, paid))

    async def record_unprocessable(self, event_id: str, organisation_id: str, detail: str) -> None:
        """Put an event that cannot be applied (unreadable, invalid, failing every time) on the review list, once
        per event id, so that dropping it from the stream loses nothing a person cannot find."""
        async with self._uow() as uow:
            await SettlementRepository(uow.connection).add_reviews(
                None, organisation_id, [Review(ReviewKind.UNPROCESSABLE_EVENT, event_id, detail, 0, "")]
            )


def _balance_of(invoice: Invoice) -> Balance:
    assert invoice.amount_due_minor is not None
    return Balance(invoice.status, invoice.amount_paid_minor, invoice.amount_refunded_minor, invoice.amount_due_minor)


# Reading ---------------------------------------------------------------------------------------------------


async def _existing_invoice(uow: UnitOfWork, invoice_id: str) -> None:
    if not invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    if await InvoiceRepository(uow.connection).get(invoice_id) is None:
        raise NotFound(f"no invoice with id {invoice_id!r}")


async def list_status_changes(uow: UnitOfWork, invoice_id: str) -> list[StatusChange]:
    """An invoice's status history, oldest first."""
    async with uow:
        await _existing_invoice(uow, invoice_id)
        return await SettlementRepository(uow.connection).status_changes(invoice_id)


async def list_settlements(uow: UnitOfWork, invoice_id: str) -> list[RecordedSettlement]:
    """The payments events recorded against an invoice, by when they happened."""
    async with uow:
        await _existing_invoice(uow, invoice_id)
        return await SettlementRepository(uow.connection).for_invoice(invoice_id)


async def list_review_items(
    uow: UnitOfWork, *, open_only: bool = False, resolved_only: bool = False, organisation_id: str = "",
    page_size: int = 0, page_token: str = "",
) -> tuple[list[ReviewItem], str]:
    """Newest first."""
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        found = await SettlementRepository(uow.connection).review_items(
            open_only=open_only, resolved_only=resolved_only, organisation_id=organisation_id, limit=size + 1,
            before=before,
        )
    return paging.split_page(found, size)


async def resolve_review_item(
    uow: UnitOfWork, review_item_id: str, resolution: str, resolved_by: str = "", now: datetime | None = None
) -> ReviewItem:
    """Close a review item with what was done about it; an item already resolved is returned as it is."""
    resolution = resolution.strip()
    if not review_item_id:
        raise InvalidArgument("is required", field="review_item_id")
    if not resolution:
        raise InvalidArgument("is required: say what was done about it", field="resolution")
    if len(resolution) > MAX_RESOLUTION_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_RESOLUTION_LENGTH} characters", field="resolution")
    async with uow:
        store = SettlementRepository(uow.connection)
        item = await store.review_item(review_item_id, for_update=True)
        if item is None:
            raise NotFound(f"no review item with id {review_item_id!r}")
        if not item.is_open:
            return item
        await store.resolve(review_item_id, now or datetime.now(UTC), resolution, resolved_by.strip() or "operator")
        resolved = await store.review_item(review_item_id)
    assert resolved is not None
    return resolved

