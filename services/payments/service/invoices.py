"""Invoices to collect, from invoicing's events: each issued invoice gets an order at the organisation's
provider (made in the background by :mod:`services.payments.service.orders`), unless there is nothing to pay
online. The provider is fixed on the order when the invoice is taken on: an organisation changing provider later
changes the invoices issued after, never one already being collected."""

from __future__ import annotations

from datetime import datetime

from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.payments.adapters import messages
from services.payments.domain import money, stripe_money
from services.payments.domain.entities import Invoice, InvoiceState, Order, OrderStatus, Payment
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.service import autodebit, dunning
from services.payments.service.ports import UnitFactory

log = get_logger(__name__)

# Razorpay's limit on an order's receipt (kept for every provider: Stripe's metadata values take 500).
MAX_RECEIPT = 40


def collectable(provider: Provider, total_minor: int, currency: str) -> money.Collectable:
    """Whether ``provider`` can take the total: Razorpay's rules (:mod:`..domain.money`) or Stripe's
    (:mod:`..domain.stripe_money`)."""
    if provider is Provider.STRIPE:
        return stripe_money.collectable(total_minor, currency)
    return money.collectable(total_minor, currency)


async def register_issued(uow: UnitFactory, invoice: Invoice, now: datetime, rules: dunning.DunningRules,
                          default_provider: Provider = Provider.RAZORPAY,
                          debits: autodebit.AutoDebitRules | None = None) -> bool:
    """Take an issued invoice on for collection; False when it was already (a redelivered event).

    A zero total is settled at once (a PaymentCaptured of nothing, so invoicing marks it paid); a total the
    provider cannot take (below its minimum) is left payable offline with the reason on its order; anything
    else gets a pending order, which the order creator makes at the provider."""
    async with uow() as unit:
        if not await unit.invoices.add(invoice):
            return False
        provider = await unit.choices.get(invoice.organisation_id) or default_provider
        able = collectable(provider, invoice.total_minor, invoice.currency)
        receipt = invoice.number[:MAX_RECEIPT]
        if invoice.total_minor > 0:
            await dunning.start(unit, invoice, rules)
            if debits is not None and provider is Provider.RAZORPAY:
                # Charged on the organisation's mandate before it is due (the order below stays payable too).
                await autodebit.schedule(unit, invoice, now, debits)
        if able.online:
            await unit.orders.add(Order(invoice.invoice_id, OrderStatus.PENDING, invoice.total_minor,
                                        invoice.currency, receipt, next_attempt_at=now, provider=provider))
            return True
        await unit.orders.add(Order(invoice.invoice_id, OrderStatus.NOT_NEEDED, invoice.total_minor,
                                    invoice.currency, receipt, status_reason=able.reason, provider=provider))
        if invoice.total_minor == 0:
            payment = Payment(id=new_id("pmt"), invoice_id=invoice.invoice_id,
                              organisation_id=invoice.organisation_id, provider=Provider.NONE,
                              status=PaymentStatus.CAPTURED, currency=invoice.currency, amount_minor=0,
                              method="none", captured_at=now, note=able.reason)
            await unit.payments.add(payment)
            await unit.invoices.update(invoice.invoice_id, state=InvoiceState.SETTLED)
            await unit.publish(messages.PAYMENT_CAPTURED, messages.captured_event_id(payment),
                               messages.payment_captured(payment, invoice))
        else:
            log.warning("invoice not collectable online", invoice_id=invoice.invoice_id, reason=able.reason)
    return True


async def void(uow: UnitFactory, invoice_id: str) -> bool:
    """Stop collecting a voided invoice: its order is cancelled (a payment that still arrives is recorded and
    goes to invoicing's review list). False if payments never knew the invoice."""
    async with uow() as unit:
        invoice = await unit.invoices.get(invoice_id, lock=True)
        if invoice is None:
            return False
        await unit.invoices.update(invoice_id, state=InvoiceState.VOID)
        await dunning.stop(unit, invoice_id, "the invoice was voided")
        order = await unit.orders.get(invoice_id, lock=True)
        if order is not None and order.status in (OrderStatus.PENDING, OrderStatus.CREATED):
            await unit.orders.update(invoice_id, status=OrderStatus.CANCELLED, status_reason="the invoice was voided")
    return True


async def credited(uow: UnitFactory, invoice_id: str, amount_due_minor: int, credit_note_number: str) -> bool:
    """A credit note was issued against an invoice (invoicing's ``credit_note.issued``): once it owes nothing
    (``amount_due_minor`` 0, as invoicing's settlement computed it), it is no longer collected: dunning stops and
    an order not yet paid is cancelled, as for a void invoice. True when that happened; False for an invoice
    payments does not know, one no longer open, or one that still owes something (a partial credit: its order
    keeps the original total, see docs/credit-notes.md)."""
    if amount_due_minor > 0:
        return False
    reason = f"credited in full by credit note {credit_note_number}"[:200]
    async with uow() as unit:
        invoice = await unit.invoices.get(invoice_id, lock=True)
        if invoice is None or invoice.state is not InvoiceState.OPEN:
            return False
        await unit.invoices.update(invoice_id, state=InvoiceState.SETTLED)
        await dunning.stop(unit, invoice_id, reason)
        order = await unit.orders.get(invoice_id, lock=True)
        if order is not None and order.status in (OrderStatus.PENDING, OrderStatus.CREATED):
            await unit.orders.update(invoice_id, status=OrderStatus.CANCELLED, status_reason=reason)
    return True
