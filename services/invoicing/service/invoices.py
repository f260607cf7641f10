"""Reading, voiding and rendering invoices."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.invoicing.adapters import messages
from services.invoicing.domain.billing_period import parse_period_key
from services.invoicing.domain.credit import GrantSource
from services.invoicing.domain.invoice import Invoice, InvoiceStatus
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction

MAX_VOID_REASON_LENGTH = 500
# Unpaid invoices, however late: money received must be refunded, not voided away.
VOIDABLE = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.OVERDUE, InvoiceStatus.UNCOLLECTIBLE})


async def get_invoice(uow: InvoicingTransaction, invoice_id: str) -> Invoice:
    if not invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    async with uow:
        invoice = await uow.invoices.get(invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice with id {invoice_id!r}")
    return invoice


async def list_invoices(
    uow: InvoicingTransaction, *, organisation_id: str = "", status: str = "", period_key: str = "", page_size: int = 0,
    page_token: str = "",
) -> tuple[list[Invoice], str]:
    """Newest first, filtered by organisation, status and period."""
    if status and status not in {s.value for s in InvoiceStatus}:
        raise InvalidArgument(
            f"{status!r} is not one of {', '.join(s.value for s in InvoiceStatus)}", field="status"
        )
    if period_key:
        try:
            parse_period_key(period_key)
        except InvalidArgument as error:
            raise InvalidArgument(error.message, field="period_key") from None
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        found = await uow.invoices.list(
            organisation_id=organisation_id, status=status, period_key=period_key, limit=size + 1, before=before
        )
    return paging.split_page(found, size)


def _void_reason(invoice_id: str, reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidArgument("is required: say why the invoice is void", field="reason")
    if len(reason) > MAX_VOID_REASON_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_VOID_REASON_LENGTH} characters", field="reason")
    if not invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    return reason


def _refuse_unvoidable(invoice: Invoice) -> None:
    if invoice.status not in VOIDABLE or invoice.amount_paid_minor or invoice.amount_refunded_minor:
        raise FailedPrecondition(
            f"invoice {invoice.id} is {invoice.status.value}; only an issued, unpaid invoice can be voided"
        )


async def check_voidable(uow: InvoicingTransaction, invoice_id: str, reason: str) -> None:
    """What :func:`void_invoice` would refuse, refused without changing anything (a void of a void passes): asked
    before an e-invoiced invoice's IRN is cancelled."""
    _void_reason(invoice_id, reason)
    async with uow:
        invoice = await uow.invoices.get(invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice with id {invoice_id!r}")
    if invoice.status is not InvoiceStatus.VOID:
        _refuse_unvoidable(invoice)


async def void_invoice(
    uow: InvoicingTransaction, outbox: EventOutbox, *, invoice_id: str, reason: str, now: datetime | None = None
) -> Invoice:
    """Void an issued invoice with a reason; its number stays used. Voiding a voided invoice again returns it."""
    reason = _void_reason(invoice_id, reason)
    now = now or datetime.now(UTC)
    async with uow:
        repository = uow.invoices
        invoice = await repository.get(invoice_id, for_update=True)
        if invoice is None:
            raise NotFound(f"no invoice with id {invoice_id!r}")
        if invoice.status is InvoiceStatus.VOID:
            return invoice
        _refuse_unvoidable(invoice)
        await repository.void(invoice_id, reason, now, from_status=invoice.status)
        # The prepaid credit it spent goes back to its grants (a reissue spends it again); a top-up not paid
        # will never make its credit available.
        await uow.credits.release_invoice(invoice_id, now)
        await uow.credits.void_purchase(invoice_id, f"its purchase invoice was voided: {reason}", now)
        if invoice.total_minor < 0:  # what it owed back, as credit: what is left of it goes (spent stays spent)
            owed_back = await uow.credits.id_for_source(GrantSource.INVOICE, invoice_id)
            if owed_back is not None:
                await uow.credits.void(owed_back, f"its invoice was voided: {reason}", now)
        if invoice.status is InvoiceStatus.UNCOLLECTIBLE:
            # Written off by voiding: it no longer makes the subscription past due.
            await uow.subscriptions.clear_past_due(invoice.organisation_id)
        voided = await repository.get(invoice_id)
        assert voided is not None
        event_id = new_id("evt")
        await outbox.record(uow, messages.INVOICE_VOIDED, event_id, messages.invoice_voided(event_id, voided))
    return voided
