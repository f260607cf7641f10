"""Charging issued invoices on their organisation's mandate (the rules are :mod:`..domain.mandate`'s).

An invoice issued to an organisation with a confirmed mandate gets one debit row (its natural key: the invoice),
due :data:`~services.payments.domain.mandate.LEAD` before its due moment. The worker then, in steps each
committed before the next provider call:

1. ``scheduled``: routes it (limits, one UPI debit per cycle): a payment link and an email instead
   (``linked``), or a fresh order at Razorpay, receipt "<invoice number>#AD" (found again by receipt after a lost
   answer), stored as ``ordered``;
2. ``ordered``: marks it ``requested`` and commits, and only then sends ``POST /v1/payments/create/recurring``;
3. ``requested`` (a worker that died after step 2, or a debit whose webhooks are late): asks Razorpay for the
   order's payments and adopts the one it finds; only an order with none is sent the request again.

So a crash or a retry never debits twice: the request is sent at most once per claim, and a later claim looks
before it sends. Claims are leased (:meth:`MandateRepository.claim_due`), so replicas share the work.
Razorpay's payment.captured settles the invoice through the usual path (its notes name the invoice) and marks
the debit ``captured``; payment.failed marks it ``failed`` and leaves the invoice to dunning, which was scheduled
when the invoice was issued and goes on as for any unpaid invoice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from billing.payments.v1 import events_pb2
from billing_runtime.logging import get_logger
from services.payments.adapters import messages
from services.payments.domain.dunning import due_moment
from services.payments.domain.entities import Invoice, InvoiceState
from services.payments.domain.mandate import (
    Debit,
    DebitState,
    Mandate,
    MandateState,
    Route,
    cycle,
    debit_at,
    debit_moves,
    route,
)
from services.payments.domain.payment import PaymentStatus, from_provider_status
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.domain.reports import ProviderPayment
from services.payments.service import links, provider_reports
from services.payments.service.ports import Clock, PaymentProvider, RecurringProvider, Unit, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(minutes=2)
# A requested debit is looked at again this long after its due moment if no webhook has settled it.
CHECK_AFTER_DUE = timedelta(hours=12)
# ... and then every so often while Razorpay has not settled it.
RECHECK = timedelta(hours=6)
RECEIPT_SUFFIX = "#AD"


@dataclass(frozen=True)
class AutoDebitRules:
    zone: str = "Asia/Kolkata"
    links: links.LinkPolicy = links.LinkPolicy()


async def schedule(unit: Unit, invoice: Invoice, now: datetime, rules: AutoDebitRules) -> Debit | None:
    """On issue: the invoice's debit on the organisation's confirmed mandate, if it has one (in the issuing
    transaction). Invoices without a due date or with nothing to pay are collected as before."""
    if invoice.due_date is None or invoice.due_minor <= 0:
        return None
    mandate: Mandate | None = await unit.mandates.live(invoice.organisation_id)
    if mandate is None or mandate.state is not MandateState.CONFIRMED:
        return None
    start = debit_at(invoice.due_date, mandate.method, now, rules.zone)
    # What no cycle can change is known now: such an invoice gets its link at once, not a day before it is due.
    static = route(mandate.method, mandate.max_amount_minor, invoice.due_minor, invoice.currency, 0)
    debit = Debit(
        invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id, mandate_id=mandate.id,
        method=mandate.method, state=DebitState.SCHEDULED, amount_minor=invoice.due_minor,
        currency=invoice.currency, cycle=cycle(invoice.due_date), due_at=due_moment(invoice.due_date, rules.zone),
        debit_at=start, receipt=(invoice.number[:37] + RECEIPT_SUFFIX),
        next_at=now if static.route is Route.LINK else start,
    )
    await unit.mandates.add_debit(debit)
    return debit


async def collect_less(unit: Unit, invoice: Invoice) -> bool:
    """A credit note lowered what the (locked) invoice owes: its debit, if not sent yet (``scheduled``), will
    charge the amount due (the worker reads it again when the debit's time comes; the row says so meanwhile). One
    ordered or sent already is left alone: what it takes beyond what is due is invoicing's to review. True when
    the debit changed."""
    debit: Debit | None = await unit.mandates.debit(invoice.invoice_id, lock=True)
    if debit is None or debit.state is not DebitState.SCHEDULED or debit.amount_minor <= invoice.due_minor:
        return False
    await unit.mandates.update_debit(invoice.invoice_id, amount_minor=invoice.due_minor)
    return True


async def run_due(uow: UnitFactory, provider: RecurringProvider, link_provider: PaymentProvider | None,
                  rules: AutoDebitRules, now: datetime, backoff: Backoff, clock: Clock | None = None,
                  limit: int = 20) -> int:
    """One round: every debit whose time has come (by ``now``), each a step further. Returns how many."""
    async with uow() as unit:
        claimed: list[Debit] = await unit.mandates.claim_due(now, LEASE, limit)
    for debit in claimed:
        try:
            await _step(uow, provider, link_provider, rules, debit, now)
        except ProviderFailure as failure:
            await _failed_call(uow, debit, failure, (clock or (lambda: now))() + backoff.delay(debit.attempts))
    return len(claimed)


async def _failed_call(uow: UnitFactory, debit: Debit, failure: ProviderFailure, retry_at: datetime) -> None:
    async with uow() as unit:
        current: Debit | None = await unit.mandates.debit(debit.invoice_id, lock=True)
        if current is None or current.state.finished:
            return
        if failure.kind is FailureKind.REJECTED:
            # Razorpay refused the order or the debit (a paused or cancelled token): nothing was debited, and
            # dunning has the invoice.
            await unit.mandates.update_debit(debit.invoice_id, state=DebitState.FAILED, next_at=None,
                                             reason=f"Razorpay refused the debit: {failure}")
            log.warning("debit refused", invoice_id=debit.invoice_id, error=str(failure))
            return
        await unit.mandates.update_debit(debit.invoice_id, next_at=retry_at, reason=f"will retry: {failure}")
    log.warning("debit step failed, will retry", invoice_id=debit.invoice_id, error=str(failure))


async def _step(uow: UnitFactory, provider: RecurringProvider, link_provider: PaymentProvider | None,
                rules: AutoDebitRules, debit: Debit, now: datetime) -> None:
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(debit.invoice_id)
        mandate: Mandate | None = await unit.mandates.get(debit.mandate_id)
        in_cycle = await unit.mandates.debits_in_cycle(debit.mandate_id, debit.cycle, debit.invoice_id)
    assert mandate is not None
    payable = invoice is not None and invoice.state is InvoiceState.OPEN and invoice.due_minor > 0
    if not payable and debit.state in (DebitState.SCHEDULED, DebitState.ORDERED):
        # Not asked for yet: nothing to do (an order made is simply never paid). A requested one is looked up.
        await _finish(uow, debit, DebitState.SKIPPED, "paid or voided before its debit")
        return
    if debit.state is DebitState.SCHEDULED:
        assert invoice is not None
        if mandate.state is not MandateState.CONFIRMED or mandate.expire_at <= now:
            await _finish(uow, debit, DebitState.SKIPPED,
                          f"the mandate was {mandate.state if mandate.expire_at > now else 'expired'} at debit time")
            return
        routing = route(mandate.method, mandate.max_amount_minor, invoice.due_minor, invoice.currency, in_cycle)
        if routing.route is Route.LINK:
            await _send_link(uow, link_provider, rules, debit, invoice, routing.reason, now)
            return
        notes = {"invoice_id": invoice.invoice_id, "organisation_id": invoice.organisation_id,
                 "invoice_number": invoice.number, "mandate_id": mandate.id}
        order = await provider.find_order(debit.receipt) if debit.attempts > 1 else None
        if order is None:
            order = await provider.create_order(invoice.due_minor, invoice.currency, debit.receipt, notes)
        async with uow() as unit:
            await unit.mandates.update_debit(debit.invoice_id, state=DebitState.ORDERED, provider_order_id=order.id,
                                             amount_minor=invoice.due_minor, reason="")
        debit = _with(debit, state=DebitState.ORDERED, provider_order_id=order.id, amount_minor=invoice.due_minor)
    if debit.state is DebitState.ORDERED:
        async with uow() as unit:
            # Committed before the request leaves: whatever happens next, the next claim looks before it sends.
            await unit.mandates.update_debit(debit.invoice_id, state=DebitState.REQUESTED)
        await _request(uow, provider, mandate, debit, invoice)
        return
    if debit.state is DebitState.REQUESTED:
        found = await provider.order_payments(debit.provider_order_id)
        if not found:
            await _request(uow, provider, mandate, debit, invoice)
            return
        async with uow() as unit:
            for reported in found:
                if reported.status in ("authorized", "captured", "failed", "refunded"):
                    # A webhook may have been lost: what Razorpay says settles the payment as a webhook would.
                    await provider_reports.apply_payment(unit, reported, now, LEASE)
                await reported_payment(unit, reported)
            await unit.mandates.update_debit(debit.invoice_id, next_at=max(_check_at(debit, now), now + RECHECK))


async def _request(uow: UnitFactory, provider: RecurringProvider, mandate: Mandate, debit: Debit,
                   invoice: Invoice | None) -> None:
    notes = {"invoice_id": debit.invoice_id, "organisation_id": debit.organisation_id,
             "invoice_number": invoice.number if invoice else "", "mandate_id": mandate.id}
    payment_id = await provider.create_recurring_payment(
        debit.provider_order_id, mandate.customer_id, mandate.token_id, debit.amount_minor, debit.currency,
        invoice.customer_email if invoice else "", "", notes)
    async with uow() as unit:
        current: Debit | None = await unit.mandates.debit(debit.invoice_id, lock=True)
        if current is not None and not current.state.finished:
            await unit.mandates.update_debit(debit.invoice_id, provider_payment_id=payment_id,
                                             next_at=_check_at(debit, debit.debit_at))
    log.info("debit requested", invoice_id=debit.invoice_id, provider_payment_id=payment_id,
             method=str(debit.method))


def _check_at(debit: Debit, now: datetime) -> datetime:
    return max(debit.due_at + CHECK_AFTER_DUE, now + LEASE)


async def _send_link(uow: UnitFactory, link_provider: PaymentProvider | None, rules: AutoDebitRules, debit: Debit,
                     invoice: Invoice, reason: str, now: datetime) -> None:
    url = ""
    if link_provider is not None and link_provider.makes_links:
        link = await links.make_link(uow, link_provider, invoice, "AD", rules.links, now)
        url = link.short_url
    async with uow() as unit:
        current: Debit | None = await unit.mandates.debit(debit.invoice_id, lock=True)
        if current is None or current.state is not DebitState.SCHEDULED:
            return
        await unit.mandates.update_debit(debit.invoice_id, state=DebitState.LINKED, link_url=url, reason=reason,
                                         next_at=None)
        event_id = f"autodebit.link_sent:{invoice.invoice_id}"
        await unit.publish(messages.AUTODEBIT_LINK_SENT, event_id, events_pb2.AutoDebitLinkSent(
            event_id=event_id, invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id,
            invoice_number=invoice.number, mandate_id=debit.mandate_id, method=debit.method.value,
            reason=reason, payment_link_url=url, currency=invoice.currency, amount_due_minor=invoice.due_minor))
    log.info("debit replaced by a payment link", invoice_id=debit.invoice_id, reason=reason)


async def _finish(uow: UnitFactory, debit: Debit, state: DebitState, reason: str) -> None:
    async with uow() as unit:
        await unit.mandates.update_debit(debit.invoice_id, state=state, reason=reason, next_at=None)


def _with(debit: Debit, **changes: Any) -> Debit:
    return replace(debit, **changes)


async def reported_payment(unit: Unit, reported: ProviderPayment) -> str:
    """A payment report (webhook or fetch) about a debit's order: the debit follows (captured or failed). The
    payment itself is applied by :mod:`.provider_reports` like any other."""
    debit: Debit | None = await unit.mandates.debit_by_order(reported.order_id, lock=True)
    if debit is None:
        return ""
    changes: dict[str, Any] = {}
    if not debit.provider_payment_id:
        changes["provider_payment_id"] = reported.id
    status = from_provider_status(reported.status, reported.captured)
    target = {PaymentStatus.CAPTURED: DebitState.CAPTURED, PaymentStatus.FAILED: DebitState.FAILED}.get(status)
    if target is not None and debit_moves(debit.state, target):
        changes.update(state=target, next_at=None,
                       reason="" if target is DebitState.CAPTURED else
                       f"the debit failed ({reported.error_description or reported.error_reason or 'no reason'}); "
                       "dunning goes on")
    if changes:
        await unit.mandates.update_debit(debit.invoice_id, **changes)
    return f"; debit {target}" if "state" in changes else ""


async def notified(unit: Unit, entity: dict[str, Any], delivered: bool, now: datetime) -> str:
    """Razorpay's pre-debit notification (``notification.delivered`` / ``.failed``) recorded on the debit."""
    order_id = str(entity.get("order_id") or "")[:100]
    debit: Debit | None = await unit.mandates.debit_by_order(order_id, lock=True)
    if debit is None:
        return f"unmatched: no debit of ours for order {order_id}"
    if delivered:
        if debit.notified_at is None:
            await unit.mandates.update_debit(debit.invoice_id, notified_at=now)
        return f"applied: pre-debit notice of {debit.invoice_id} delivered"
    await unit.mandates.update_debit(debit.invoice_id, reason="the pre-debit notice could not be delivered")
    return f"applied: pre-debit notice of {debit.invoice_id} failed"
