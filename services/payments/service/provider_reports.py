"""Applying what the provider reports about a payment or a refund, from a webhook or from a fetch.

Reports arrive late, repeated and out of order. Each is applied inside the caller's unit of work, under a
row lock on the payment (and then on the refund: always in that order, so a webhook and our own request about
the same refund cannot deadlock), and only moves state forward (:mod:`services.payments.domain.payment`,
:mod:`services.payments.domain.refund`). A move that matters is announced once through the outbox with an
event id derived from the provider's id. Each function returns a short outcome for the webhook log.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from billing_runtime.ids import new_id
from services.payments.adapters import messages
from services.payments.domain import payment as payment_rules
from services.payments.domain import refund as refund_rules
from services.payments.domain.entities import Invoice, InvoiceState, Payment, PaymentLink, Refund
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.refund import RefundStatus
from services.payments.domain.reports import ProviderPayment, ProviderRefund, ReportTooEarly
from services.payments.service import dunning, links
from services.payments.service.ports import Unit

# A payment moving past failed (a declined card, then another that went through; a retried UPI collect) is no longer
# failed: the earlier attempt's error is its history, not its state, so it is cleared and no reader can show a paid
# payment as declined. The decline stays where it was recorded: the provider's webhook in the log (its body and
# outcome) and the ``payment.failed`` announced then. Forward-only states keep a late failure from setting it again.
NO_FAILURE: dict[str, object] = {"failed_at": None, "error_code": "", "error_description": "", "error_reason": ""}


async def apply_payment(
    unit: Unit, reported: ProviderPayment, now: datetime, capture_after: timedelta, link_id: str = "",
    provider: Provider = Provider.RAZORPAY,
) -> str:
    """Apply a report of ``provider``'s about one of its payments (payments are matched by (provider, id))."""
    status = payment_rules.from_provider_status(reported.status, reported.captured)
    if status is None:
        return f"ignored: payment status {reported.status!r} is not one payments acts on"
    payment: Payment | None = await unit.payments.by_provider_id(provider, reported.id, lock=True)
    invoice = await _invoice_of(unit, payment, reported, link_id)
    if invoice is None:
        return f"unmatched: no invoice of ours for payment {reported.id}"
    new = payment is None
    if payment is None:
        payment = Payment(
            id=new_id("pmt"), invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id,
            provider=provider, status=PaymentStatus.CREATED, provider_payment_id=reported.id,
            provider_order_id=reported.order_id, currency=reported.currency or invoice.currency,
            amount_minor=reported.amount_minor,
        )
    moved = payment_rules.advance(None if new else payment.status, status)
    if not moved.moved:
        return f"no change: payment {reported.id} is already {payment.status}"
    changes: dict[str, object] = {
        "status": moved.status, "method": reported.method or payment.method, "email": reported.email or payment.email,
        "contact": reported.contact or payment.contact, "amount_minor": reported.amount_minor,
        "currency": reported.currency or payment.currency,
        "provider_order_id": reported.order_id or payment.provider_order_id,
    }
    if moved.status is PaymentStatus.AUTHORIZED:
        changes.update(authorized_at=payment.authorized_at or now, check_due_at=now + capture_after, **NO_FAILURE)
    elif moved.status is PaymentStatus.CAPTURED:
        changes.update(captured_at=now, authorized_at=payment.authorized_at or now, check_due_at=None, **NO_FAILURE)
    elif moved.status is PaymentStatus.FAILED:
        changes.update(failed_at=now, error_code=reported.error_code, error_description=reported.error_description,
                       error_reason=reported.error_reason, check_due_at=None)
    if new and await unit.payments.add(replace(payment, **changes)):  # type: ignore[arg-type]
        payment = replace(payment, **changes)  # type: ignore[arg-type]
    elif new:
        # Stored meanwhile by another transaction (Checkout's callback): apply the report to that one instead.
        return await apply_payment(unit, reported, now, capture_after, link_id, provider)
    else:
        await unit.payments.update(payment.id, **changes)
        payment = replace(payment, **changes)  # type: ignore[arg-type]
    if moved.status is PaymentStatus.CAPTURED:
        await _captured(unit, payment, invoice)
        if link_id:
            await _link_paid(unit, link_id)
    elif moved.status is PaymentStatus.FAILED:
        await unit.publish(messages.PAYMENT_FAILED, f"payment.failed:{reported.id}",
                           messages.payment_failed(payment, invoice))
        # The log keeps why, after the payment itself no longer does (paid later: NO_FAILURE).
        why = ", ".join(part for part in (reported.error_code, reported.error_reason) if part)
        return f"applied: payment {reported.id} failed" + (f" ({why[:120]})" if why else "")
    return f"applied: payment {reported.id} {moved.status}"


async def _link_paid(unit: Unit, link_id: str) -> None:
    """A payment link was paid: it is no longer open (a credit note then has nothing to cancel or replace)."""
    link: PaymentLink | None = await unit.links.by_provider_id(link_id)
    if link is not None and link.status != links.PAID:
        await unit.links.update(link.id, status=links.PAID, next_attempt_at=None)


async def _invoice_of(unit: Unit, payment: Payment | None, reported: ProviderPayment, link_id: str) -> Invoice | None:
    """The invoice a payment is for: the one we recorded, else the one whose order it paid (its current order, or
    one a credit note replaced), else the one whose payment link it came through, else the one named in its notes
    (our links carry our invoice id there)."""
    invoice_id = payment.invoice_id if payment is not None else None
    if invoice_id is None and reported.order_id:
        invoice_id = await unit.orders.invoice_of(reported.order_id)
    if invoice_id is None and link_id:
        link = await unit.links.by_provider_id(link_id)
        invoice_id = link.invoice_id if link is not None else None
    if invoice_id is None:
        invoice_id = reported.notes.get("invoice_id")
    if not invoice_id:
        return None
    return await unit.invoices.get(invoice_id, lock=True)


async def _captured(unit: Unit, payment: Payment, invoice: Invoice) -> None:
    """Money arrived: announce it, and stop collecting once the invoice is covered (nothing left due, credit notes
    counted). (Whether the amount and currency fit the invoice is for invoicing to judge: it puts anything odd,
    such as the original total paid on an order a credit note replaced, on its review list.)"""
    await unit.publish(messages.PAYMENT_CAPTURED, messages.captured_event_id(payment),
                       messages.payment_captured(payment, invoice))
    captured = invoice.captured_minor + (payment.amount_minor if payment.currency == invoice.currency else 0)
    changes: dict[str, object] = {"captured_minor": captured}
    if invoice.state is InvoiceState.OPEN and replace(invoice, captured_minor=captured).due_minor == 0:
        changes["state"] = InvoiceState.SETTLED
        await dunning.stop(unit, invoice.invoice_id, f"paid by {payment.id}")
    await unit.invoices.update(invoice.invoice_id, **changes)
    if "state" in changes:
        await unit.orders.mark_paid(invoice.invoice_id)


async def record_captured(unit: Unit, payment: Payment, invoice: Invoice) -> None:
    """Store a payment captured outside the provider's reports (offline) and announce it."""
    await unit.payments.add(payment)
    await _captured(unit, payment, invoice)


async def apply_refund(unit: Unit, reported: ProviderRefund, now: datetime,
                       provider: Provider = Provider.RAZORPAY) -> str:
    status = refund_rules.from_provider_status(reported.status)
    if status is None:
        return f"ignored: refund status {reported.status!r} is not one payments acts on"
    if reported.payment_id:
        # Lock order: the payment before its refunds, everywhere (refunds are created under the payment's lock).
        await unit.payments.by_provider_id(provider, reported.payment_id, lock=True)
    refund: Refund | None = await unit.refunds.by_provider_id(reported.id, lock=True)
    if refund is None and reported.notes.get("refund_id"):
        # Ours, reported before the provider's answer to our request was stored.
        refund = await unit.refunds.get(reported.notes["refund_id"], lock=True)
        if refund is not None and refund.provider_refund_id not in (None, reported.id):
            refund = None
    if refund is None:
        refund = await _refund_made_elsewhere(unit, reported, provider)
        if refund is None:
            if reported.payment_id and await unit.orders.invoice_of(reported.payment_id) is not None:
                # Stripe: the refund of one of our PaymentIntents, reported before its payment (Stripe's refund
                # events do not carry it, as Razorpay's do). Applied once the payment is known, never before,
                # so the capture is announced before its refund.
                raise ReportTooEarly(f"refund {reported.id} of {reported.payment_id} arrived before its payment")
            return f"unmatched: no payment of ours for refund {reported.id}"
    if refund.provider_refund_id is None:
        await unit.refunds.update(refund.id, provider_refund_id=reported.id)
        refund = replace(refund, provider_refund_id=reported.id)
    return await move_refund(unit, refund, status, now)


async def move_refund(unit: Unit, refund: Refund, status: RefundStatus, now: datetime) -> str:
    """Move a (locked) refund to ``status`` if that is forward, announcing it."""
    new = refund_rules.advance(refund.status, status)
    if new is None:
        return f"no change: refund {refund.id} is already {refund.status}"
    changes: dict[str, object] = {"status": new, "next_attempt_at": None}
    if new is RefundStatus.PROCESSED:
        changes["processed_at"] = now
    await unit.refunds.update(refund.id, **changes)
    invoice = await unit.invoices.get(refund.invoice_id)
    number = invoice.number if invoice is not None else ""
    if refund.status is RefundStatus.REQUESTED and new is not RefundStatus.FAILED:
        await unit.publish(*messages.refund_event(refund, number, RefundStatus.PENDING, now))
    if new is not RefundStatus.PENDING:
        await unit.publish(*messages.refund_event(replace(refund, status=new), number, new, now))
    return f"applied: refund {refund.id} {new}"


async def _refund_made_elsewhere(unit: Unit, reported: ProviderRefund, provider: Provider) -> Refund | None:
    """A refund made at the provider directly (its dashboard): recorded against our payment, if it is ours."""
    payment = await unit.payments.by_provider_id(provider, reported.payment_id, lock=True)
    if payment is None or payment.invoice_id is None:
        return None
    refund = Refund(
        id=new_id("rfd"), payment_id=payment.id, invoice_id=payment.invoice_id,
        organisation_id=payment.organisation_id, status=RefundStatus.REQUESTED,
        currency=reported.currency or payment.currency, amount_minor=reported.amount_minor,
        reason="made at the provider", provider_refund_id=reported.id,
    )
    stored, _ = await unit.refunds.add_once(refund, fingerprint="")
    return stored
