"""Running dunning: overdue notices, retry attempts with a fresh payment link, and giving up
(the rules are :mod:`services.payments.domain.dunning`'s).

Every step is claimed with a lease, done, and recorded with its event in one transaction, so a crash or a
restart repeats at most the provider call of the step in hand (which finds its link again by reference) and
never announces a step twice: each announcement's event id is derived from the invoice and the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing.payments.v1 import events_pb2
from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.logging import get_logger
from billing_runtime.timestamps import to_timestamp
from services.payments.adapters import messages
from services.payments.domain.dunning import Dunning, DunningPolicy, DunningState, Step, due_moment
from services.payments.domain.entities import Invoice, InvoiceState, Order
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.service import links
from services.payments.service.ports import Clock, Providers, Unit, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class DunningRules:
    default_policy: DunningPolicy
    # Due dates are days in the supplier's zone (invoicing issues them there).
    zone: str = "Asia/Kolkata"
    links: links.LinkPolicy = links.LinkPolicy()


async def start(unit: Unit, invoice: Invoice, rules: DunningRules) -> None:
    """Schedule dunning for a newly issued invoice that has something to pay and a due date."""
    if invoice.due_date is None or invoice.total_minor <= 0:
        return
    policy = await unit.dunning.policy_for(invoice.organisation_id) or rules.default_policy
    due_at = due_moment(invoice.due_date, rules.zone)
    await unit.dunning.add(Dunning(invoice.invoice_id, policy, due_at, DunningState.SCHEDULED, 0, due_at))


async def stop(unit: Unit, invoice_id: str, reason: str) -> None:
    """A payment (or a void) stops dunning at once."""
    await unit.dunning.stop(invoice_id, reason)


async def run_due(uow: UnitFactory, providers: Providers, rules: DunningRules, now: datetime,
                  backoff: Backoff, limit: int = 20, clock: Clock | None = None) -> int:
    async with uow() as unit:
        claimed: list[Dunning] = await unit.dunning.claim_due(now, LEASE, limit)
    for dunning in claimed:
        try:
            await _step(uow, providers, rules, dunning, now, backoff)
        except ProviderFailure as failure:
            async with uow() as unit:
                errors = await unit.dunning.errors(dunning.invoice_id)
                if failure.kind is FailureKind.REJECTED:
                    # The provider will not make a link for this invoice: the attempt is made without one.
                    await _record_attempt(unit, dunning, "", now, f"no payment link: {failure}")
                else:
                    await unit.dunning.postpone(dunning.invoice_id, (clock() if clock else now)
                                                + backoff.delay(errors + 1), str(failure))
            log.warning("dunning step failed", invoice_id=dunning.invoice_id, error=str(failure))
    return len(claimed)


async def _step(uow: UnitFactory, providers: Providers, rules: DunningRules, dunning: Dunning,
                now: datetime, backoff: Backoff) -> None:
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(dunning.invoice_id)
        order: Order | None = await unit.orders.get(dunning.invoice_id)
    if invoice is None or invoice.state is not InvoiceState.OPEN:
        async with uow() as unit:
            await stop(unit, dunning.invoice_id, "paid or voided")
        return
    step = dunning.next_step()
    url = ""
    # Razorpay: a fresh payment link per attempt. Stripe makes no links for an amount: the attempt is announced
    # without one, and the customer pays the invoice's PaymentIntent (its checkout) as before.
    provider = providers.get(order.provider) if order is not None else None
    if step is Step.ATTEMPT and provider is not None and provider.makes_links:
        link = await links.make_link(uow, provider, invoice, f"D{dunning.attempts + 1}", rules.links, now)
        url = link.short_url
    async with uow() as unit:
        current: Dunning | None = await unit.dunning.get(dunning.invoice_id, lock=True)
        invoice = await unit.invoices.get(dunning.invoice_id, lock=True)
        if current is None or current.state not in (DunningState.SCHEDULED, DunningState.RETRYING) \
                or current.attempts != dunning.attempts or invoice is None or invoice.state is not InvoiceState.OPEN:
            return  # stopped meanwhile (a payment), or another replica did this step
        if step is Step.OVERDUE:
            after = current.after(step)
            await unit.dunning.save(after)
            await unit.publish(messages.INVOICE_OVERDUE, f"invoice.overdue:{invoice.invoice_id}",
                               events_pb2.InvoiceOverdue(
                                   event_id=f"invoice.overdue:{invoice.invoice_id}", invoice_id=invoice.invoice_id,
                                   organisation_id=invoice.organisation_id, invoice_number=invoice.number,
                                   currency=invoice.currency, amount_due_minor=invoice.due_minor,
                                   due_date=invoice.due_date.isoformat() if invoice.due_date else "",
                                   overdue_time=to_timestamp(now)))
        elif step is Step.ATTEMPT:
            await _record_attempt(unit, current, url, now, "")
        else:
            await unit.dunning.save(current.after(step))
            event_id = f"invoice.uncollectible:{invoice.invoice_id}"
            await unit.publish(messages.INVOICE_UNCOLLECTIBLE, event_id, events_pb2.InvoiceUncollectible(
                event_id=event_id, invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id,
                invoice_number=invoice.number, currency=invoice.currency, amount_due_minor=invoice.due_minor,
                attempts=current.attempts, uncollectible_time=to_timestamp(now)))
    log.info("dunning step", invoice_id=dunning.invoice_id, step=str(step), attempt=dunning.attempts)


async def _record_attempt(unit: Unit, dunning: Dunning, url: str, now: datetime, reason: str) -> None:
    invoice: Invoice | None = await unit.invoices.get(dunning.invoice_id)
    assert invoice is not None
    after = dunning.after(Step.ATTEMPT)
    await unit.dunning.save(Dunning(after.invoice_id, after.policy, after.due_at, after.state, after.attempts,
                                    after.next_at, reason))
    event_id = f"payment.retry_scheduled:{invoice.invoice_id}:{after.attempts}"
    await unit.publish(messages.PAYMENT_RETRY_SCHEDULED, event_id, events_pb2.PaymentRetryScheduled(
        event_id=event_id, invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id,
        invoice_number=invoice.number, attempt_number=after.attempts, max_attempts=after.policy.max_attempts,
        payment_link_url=url, currency=invoice.currency, amount_due_minor=invoice.due_minor,
        next_attempt_time=to_timestamp(after.next_at) if after.next_at else None))


async def get(uow: UnitFactory, invoice_id: str) -> Dunning:
    if not invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    async with uow() as unit:
        found: Dunning | None = await unit.dunning.get(invoice_id)
    if found is None:
        raise NotFound(f"no dunning for invoice {invoice_id!r} (not issued yet, nothing to pay, or no due date)")
    return found


async def policy(uow: UnitFactory, rules: DunningRules, organisation_id: str) -> tuple[DunningPolicy, bool]:
    """The organisation's policy and True, or the default and False."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    async with uow() as unit:
        own: DunningPolicy | None = await unit.dunning.policy_for(organisation_id)
    return (own, True) if own is not None else (rules.default_policy, False)


async def set_policy(uow: UnitFactory, rules: DunningRules, organisation_id: str,
                     new: DunningPolicy | None) -> tuple[DunningPolicy, bool]:
    if not organisation_id or len(organisation_id) > 64:
        raise InvalidArgument("is required (at most 64 characters)", field="organisation_id")
    async with uow() as unit:
        await unit.dunning.set_policy(organisation_id, new)
    return (new, True) if new is not None else (rules.default_policy, False)
