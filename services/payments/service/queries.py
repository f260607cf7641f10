"""Reading payments' records: an invoice's collection, payments, refunds and the webhook log."""

from __future__ import annotations

from dataclasses import dataclass

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument, NotFound
from services.payments.domain.entities import Invoice, Order, Payment, PaymentLink, Refund, WebhookEvent
from services.payments.service.ports import UnitFactory


@dataclass(frozen=True)
class InvoiceCollection:
    invoice: Invoice
    order: Order | None
    payments: list[Payment]
    refunds: list[Refund]
    links: list[PaymentLink]

    @property
    def refunded_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds if r.status.holds_money)


async def invoice_collection(uow: UnitFactory, invoice_id: str) -> InvoiceCollection:
    if not invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    async with uow() as unit:
        invoice = await unit.invoices.get(invoice_id)
        if invoice is None:
            raise NotFound(f"payments has no invoice with id {invoice_id!r} (it may not be issued yet)")
        return InvoiceCollection(
            invoice, await unit.orders.get(invoice_id), await unit.payments.for_invoice(invoice_id),
            await unit.refunds.for_invoice(invoice_id), await unit.links.for_invoice(invoice_id),
        )


async def get_payment(uow: UnitFactory, payment_id: str) -> tuple[Payment, list[Refund]]:
    if not payment_id:
        raise InvalidArgument("is required", field="payment_id")
    async with uow() as unit:
        payment = await unit.payments.get(payment_id)
        if payment is None:
            raise NotFound(f"no payment with id {payment_id!r}")
        return payment, await unit.refunds.for_payment(payment_id)


async def list_payments(uow: UnitFactory, organisation_id: str, invoice_id: str, page_size: int,
                        page_token: str) -> tuple[list[Payment], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.payments.page(organisation_id=organisation_id, invoice_id=invoice_id, limit=size + 1,
                                        before=before)
    return paging.split_page(rows, size)


async def list_refunds(uow: UnitFactory, payment_id: str, invoice_id: str, page_size: int,
                       page_token: str) -> tuple[list[Refund], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.refunds.page(payment_id=payment_id, invoice_id=invoice_id, limit=size + 1, before=before)
    return paging.split_page(rows, size)


async def list_webhook_events(uow: UnitFactory, event_type: str, page_size: int,
                              page_token: str) -> tuple[list[WebhookEvent], str]:
    size = paging.page_size(page_size)
    if page_token and not page_token.isdigit():
        raise InvalidArgument("is not a token returned by a previous page", field="page_token")
    async with uow() as unit:
        rows = await unit.webhooks.page(event_type=event_type[:100], limit=size + 1,
                                        before_seq=int(page_token) if page_token else None)
    page = rows[:size]
    return page, (str(page[-1].seq) if len(rows) > size else "")
