"""Invoices to collect, from invoicing's events: each issued invoice gets an order at the organisation's
provider (made in the background by :mod:`services.payments.service.orders`), unless there is nothing to pay
online. The provider is fixed on the order when the invoice is taken on: an organisation changing provider later
changes the invoices issued after, never one already being collected.

A credit note (``credit_note.issued``) lowers what is collected: credited in full, the invoice is no longer
collected; credited in part, payments collects the amount due from then on (:func:`credited`)."""

from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime

from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.payments.adapters import messages
from services.payments.domain.entities import CreditNote, Invoice, InvoiceState, Order, OrderStatus, Payment
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.service import autodebit, dunning, links, orders
from services.payments.service.orders import collectable
from services.payments.service.ports import Unit, UnitFactory

log = get_logger(__name__)


async def register_issued(uow: UnitFactory, invoice: Invoice, now: datetime, rules: dunning.DunningRules,
                          default_provider: Provider = Provider.RAZORPAY,
                          debits: autodebit.AutoDebitRules | None = None) -> bool:
    """Take an issued invoice on for collection; False when it was already (a redelivered event).

    A zero total is settled at once (a PaymentCaptured of nothing, so invoicing marks it paid); an amount the
    provider cannot take (below its minimum) is left payable offline with the reason on its order; anything
    else gets a pending order, which the order creator makes at the provider. Credit notes delivered before the
    invoice (events redelivered out of order) are counted first: the order asks for what is due."""
    async with uow() as unit:
        notes: list[CreditNote] = await unit.credit_notes.for_invoice(invoice.invoice_id)
        for note in notes:
            invoice = invoice.with_credit(note)
        if notes and invoice.total_minor > 0 and invoice.due_minor == 0:
            invoice = replace(invoice, state=InvoiceState.SETTLED)
        if not await unit.invoices.add(invoice):
            return False
        provider = await unit.choices.get(invoice.organisation_id) or default_provider
        amount = invoice.due_minor
        receipt = orders.receipt(invoice.number)
        if invoice.state is InvoiceState.SETTLED:
            await unit.orders.add(Order(invoice.invoice_id, OrderStatus.NOT_NEEDED, amount, invoice.currency, receipt,
                                        status_reason=_in_full(notes[-1].number), provider=provider))
            return True
        able = collectable(provider, amount, invoice.currency)
        if amount > 0:
            await dunning.start(unit, invoice, rules)
            if debits is not None and provider is Provider.RAZORPAY:
                # Charged on the organisation's mandate before it is due (the order below stays payable too).
                await autodebit.schedule(unit, invoice, now, debits)
        if able.online:
            await unit.orders.add(Order(invoice.invoice_id, OrderStatus.PENDING, amount, invoice.currency, receipt,
                                        next_attempt_at=now, provider=provider))
            return True
        await unit.orders.add(Order(invoice.invoice_id, OrderStatus.NOT_NEEDED, amount, invoice.currency, receipt,
                                    status_reason=able.reason, provider=provider))
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


def _in_full(credit_note_number: str) -> str:
    return f"credited in full by credit note {credit_note_number}"[:200]


async def void(uow: UnitFactory, invoice_id: str, now: datetime) -> bool:
    """Stop collecting a voided invoice (:func:`_no_longer_collected`). False if payments never knew the
    invoice."""
    async with uow() as unit:
        invoice = await unit.invoices.get(invoice_id, lock=True)
        if invoice is None:
            return False
        await _no_longer_collected(unit, invoice_id, InvoiceState.VOID, "the invoice was voided", now)
    return True


class CreditOutcome(enum.StrEnum):
    """What a ``credit_note.issued`` did to collection."""

    # Applied before: a redelivery changes nothing.
    DUPLICATE = "duplicate"
    # Payments has not taken the invoice on yet: kept, and counted when it is.
    KEPT_FOR_INVOICE = "kept_for_invoice"
    # Paid or void already: nothing to collect.
    NOT_OPEN = "not_open"
    # Owes nothing now: no longer collected.
    CREDITED_IN_FULL = "credited_in_full"
    # Owes less than was being collected: collected from now on.
    COLLECTING_LESS = "collecting_less"
    # Owes no less than is being collected (a credit note delivered after a later one already counted it).
    UNCHANGED = "unchanged"


async def credited(uow: UnitFactory, note: CreditNote, now: datetime,
                   link_policy: links.LinkPolicy) -> CreditOutcome:
    """A credit note was issued against an invoice (invoicing's ``credit_note.issued``). Each is counted once
    (by its id) into what payments collects (:attr:`Invoice.due_minor`), whatever order they are delivered in, so
    a redelivered or older one never moves the amount back up.

    Once the invoice owes nothing it is no longer collected: dunning stops and an order not yet paid is
    cancelled, as for a void invoice. If it still owes something, but less than its order asks for, payments
    collects the amount due from then on, in this transaction: the order is remade for it
    (:func:`orders.collect_less`; the provider order it had is kept, so a payment still made on it is the
    invoice's and an over-payment goes to invoicing's review list), a debit on a mandate not yet sent will charge
    it, and open payment links for the old amount are to be cancelled and one made for the new amount (only if
    there was one: :func:`links.replace_outdated`); dunning names what is due as it goes."""
    async with uow() as unit:
        # The invoice's lock first: serialises deliveries of this and of other credit notes of the invoice, and
        # captures (which lock it too).
        invoice: Invoice | None = await unit.invoices.get(note.invoice_id, lock=True)
        if not await unit.credit_notes.add(note):
            return CreditOutcome.DUPLICATE
        if invoice is None:
            return CreditOutcome.KEPT_FOR_INVOICE
        if invoice.state is not InvoiceState.OPEN:
            return CreditOutcome.NOT_OPEN
        invoice = invoice.with_credit(note)
        await unit.invoices.update(invoice.invoice_id, credited_minor=invoice.credited_minor,
                                   reported_due_minor=invoice.reported_due_minor)
        if invoice.due_minor == 0:
            await _no_longer_collected(unit, invoice.invoice_id, InvoiceState.SETTLED, _in_full(note.number), now)
            return CreditOutcome.CREDITED_IN_FULL
        return await _collect_less(unit, invoice, note, now, link_policy)


async def _no_longer_collected(unit: Unit, invoice_id: str, state: InvoiceState, reason: str,
                               now: datetime) -> None:
    """Inside the caller's transaction (the invoice locked): dunning stops, the order not yet paid is cancelled
    (at the provider too where it can be: :func:`orders.withdraw`) and payment links still payable are cancelled at
    the provider. A payment that still arrives is recorded and goes to invoicing's review list."""
    await unit.invoices.update(invoice_id, state=state)
    await dunning.stop(unit, invoice_id, reason)
    order = await unit.orders.get(invoice_id, lock=True)
    if order is not None:
        await orders.withdraw(unit, order, reason, now)
    await links.withdraw(unit, invoice_id, now)


async def _collect_less(unit: Unit, invoice: Invoice, note: CreditNote, now: datetime,
                        link_policy: links.LinkPolicy) -> CreditOutcome:
    due = invoice.due_minor
    reason = f"credit note {note.number} left {due} {invoice.currency} minor units due"
    order: Order | None = await unit.orders.get(invoice.invoice_id, lock=True)
    changed = order is not None and await orders.collect_less(unit, order, invoice, due, reason, now)
    changed |= await autodebit.collect_less(unit, invoice)
    changed |= await links.replace_outdated(unit, invoice, link_policy, now)
    if changed:
        log.info("collecting less after a credit note", invoice_id=invoice.invoice_id, credit_note=note.number,
                 amount_due_minor=due)
    return CreditOutcome.COLLECTING_LESS if changed else CreditOutcome.UNCHANGED
