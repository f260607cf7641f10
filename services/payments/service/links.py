"""Payment links: a URL the customer can pay an invoice at without our checkout page (for emails, and one
fresh link per dunning attempt).

A link is stored first (its reference unique: "<invoice number>#L<n>" for links asked for, "#D<n>" for dunning
attempt n), then made at the provider outside the transaction. A link whose earlier making may have reached
the provider is looked up by its reference before another is made, so a lost answer never makes two.

A credit note that lowers what an invoice owes outdates its open links (they ask for the old amount): in the
credit note's transaction they are marked ``cancelling``, and, only if there was one, a link for the new amount is
stored (``creating``, the next "#L<n>"); the worker (:func:`rework_due`) then cancels the old ones at the provider
(``POST /v1/payment_links/{id}/cancel``) and makes the new one, with backoff on outages. A link outdated while it
was being made is cancelled once it is.

Links are Razorpay's: Stripe's Payment Links sell products at prices, not an amount due, so a Stripe invoice
is paid through its PaymentIntent (the checkout) and asking for a link is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from billing_runtime.errors import FailedPrecondition, NotFound
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.payments.domain.entities import Invoice, InvoiceState, Order, PaymentLink
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.domain.reports import LinkRequest, ProviderLink
from services.payments.service.ports import Clock, PaymentProvider, Providers, Unit, UnitFactory

log = get_logger(__name__)

CREATING = "creating"
OPEN = "created"
CANCELLING = "cancelling"
CANCELLED = "cancelled"
PAID = "paid"
# What the provider says of a link that can no longer be paid, kept as it says it.
_FINISHED = ("cancelled", "expired", "paid")
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class LinkPolicy:
    valid_for: timedelta = timedelta(days=7)
    callback_url: str = ""


def _suffix(link: PaymentLink) -> str:
    return link.reference_id.split("#")[-1]


def _asked(link: PaymentLink) -> bool:
    """Asked for (CreatePaymentLink, or a replacement of one), not a dunning attempt's or a debit's."""
    return _suffix(link).startswith("L")


async def open_link(uow: UnitFactory, providers: Providers, invoice_id: str, policy: LinkPolicy,
                    now: datetime) -> tuple[PaymentLink, bool]:
    """The invoice's open link for what is due, or a new one; returns (link, created)."""
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(invoice_id)
        if invoice is None:
            raise NotFound(f"payments has no invoice with id {invoice_id!r} (it may not be issued yet)")
        if invoice.state is not InvoiceState.OPEN or invoice.due_minor <= 0:
            raise FailedPrecondition(f"invoice {invoice.number} has nothing to pay ({invoice.state})")
        order: Order | None = await unit.orders.get(invoice_id)
        existing: list[PaymentLink] = await unit.links.for_invoice(invoice_id)
    provider = providers.required(order.provider if order is not None else providers.default)
    if not provider.makes_links:
        raise FailedPrecondition(f"invoice {invoice.number} is collected through {provider.name.title}, which makes "
                                 "no payment links: pay it through its checkout")
    for link in reversed(existing):
        if not _asked(link) or link.amount_minor != invoice.due_minor:
            continue
        usable = link.expire_at is None or link.expire_at > now + timedelta(hours=1)
        if link.status == OPEN and usable:
            return link, False
        if link.status == CREATING and link.next_attempt_at is not None:
            # The replacement of a link a credit note outdated, not made yet by the worker: made now.
            return await make_link(uow, provider, invoice, _suffix(link), policy, now), True
    asked = sum(1 for link in existing if _asked(link))
    link = await make_link(uow, provider, invoice, f"L{asked + 1}", policy, now)
    return link, True


async def make_link(uow: UnitFactory, provider: PaymentProvider, invoice: Invoice, suffix: str, policy: LinkPolicy,
                    now: datetime) -> PaymentLink:
    """Make (or find again) the link with reference "<number>#<suffix>" for what the invoice has due.
    Raises ProviderFailure when the provider cannot be reached or refuses."""
    reference = f"{invoice.number}#{suffix}"[:40]
    async with uow() as unit:
        stored: PaymentLink | None = await unit.links.by_reference(reference)
        if stored is None:
            stored = PaymentLink(id=new_id("plk"), invoice_id=invoice.invoice_id, reference_id=reference,
                                 status=CREATING, amount_minor=invoice.due_minor, currency=invoice.currency,
                                 expire_at=now + policy.valid_for)
            if not await unit.links.add(stored):
                stored = await unit.links.by_reference(reference)
            tried_before = False
        else:
            tried_before = True
    assert stored is not None
    if stored.provider_link_id:
        return stored
    made: ProviderLink | None = await provider.find_payment_link(reference) if tried_before else None
    if made is None:
        made = await provider.create_payment_link(LinkRequest(
            amount_minor=stored.amount_minor, currency=stored.currency, reference_id=reference,
            description=f"Invoice {invoice.number}", customer_name=invoice.customer_name,
            customer_email=invoice.customer_email, expire_by=stored.expire_at or now + policy.valid_for,
            notes={"invoice_id": invoice.invoice_id, "organisation_id": invoice.organisation_id,
                   "invoice_number": invoice.number},
            callback_url=policy.callback_url,
        ))
    async with uow() as unit:
        status = await unit.links.made(stored.id, made.id, made.short_url, now)
    return replace(stored, provider_link_id=made.id, short_url=made.short_url, status=status)


async def replace_outdated(unit: Unit, invoice: Invoice, policy: LinkPolicy, now: datetime) -> bool:
    """Inside a credit note's transaction (the invoice locked): the invoice's links still payable for another
    amount than is due are to be cancelled, and, if there was any, one for what is due is to be made (a "#L<n>"
    link, so CreatePaymentLink hands it out). The worker does both at the provider. True when there was any."""
    existing: list[PaymentLink] = await unit.links.for_invoice(invoice.invoice_id)
    outdated = [link for link in existing if link.status in (CREATING, OPEN)
                and link.amount_minor != invoice.due_minor and (link.expire_at is None or link.expire_at > now)]
    if not outdated:
        return False
    for link in outdated:
        await unit.links.update(link.id, status=CANCELLING, next_attempt_at=now, attempts=0)
    asked = sum(1 for link in existing if _asked(link))
    replacement = PaymentLink(
        id=new_id("plk"), invoice_id=invoice.invoice_id, reference_id=f"{invoice.number}#L{asked + 1}"[:40],
        status=CREATING, amount_minor=invoice.due_minor, currency=invoice.currency, expire_at=now + policy.valid_for,
        next_attempt_at=now)
    await unit.links.add(replacement)
    return True


async def withdraw(unit: Unit, invoice_id: str, now: datetime) -> bool:
    """Inside the caller's transaction (the invoice locked, no longer collected): its links still payable are to
    be cancelled at the provider, none made in their place. True when there was any."""
    payable = [link for link in await unit.links.for_invoice(invoice_id) if link.status in (CREATING, OPEN)]
    for link in payable:
        await unit.links.update(link.id, status=CANCELLING, next_attempt_at=now, attempts=0)
    return bool(payable)


async def rework_due(uow: UnitFactory, providers: Providers, policy: LinkPolicy, now: datetime, backoff: Backoff,
                     limit: int = 20, clock: Clock | None = None) -> int:
    """One round over the links to cancel or make at the provider; returns how many were attempted."""
    async with uow() as unit:
        claimed: list[PaymentLink] = await unit.links.claim_due(now, LEASE, limit)
    for link in claimed:
        try:
            await _rework(uow, providers, link, policy, now)
        except ProviderFailure as failure:
            async with uow() as unit:
                if failure.kind is FailureKind.REJECTED:
                    # Refused: left for a person (the webhook log and the link's row say what it is).
                    await unit.links.update(link.id, next_attempt_at=None)
                else:
                    await unit.links.update(link.id, next_attempt_at=(clock or (lambda: now))()
                                            + backoff.delay(link.attempts))
            log.warning("payment link not reworked", link_id=link.id, status=link.status, error=str(failure))
    return len(claimed)


async def _rework(uow: UnitFactory, providers: Providers, link: PaymentLink, policy: LinkPolicy,
                  now: datetime) -> None:
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(link.invoice_id)
        order: Order | None = await unit.orders.get(link.invoice_id)
    assert invoice is not None
    provider = providers.get(order.provider) if order is not None else providers.get(providers.default)
    status = link.status
    if status == CREATING and (invoice.state is not InvoiceState.OPEN or invoice.due_minor != link.amount_minor):
        # Paid, or outdated again, before it was made: not made (cancelled, in case an attempt made it).
        status = CANCELLING
    if provider is None or not provider.makes_links:
        async with uow() as unit:
            await unit.links.update(link.id, status=CANCELLED if status == CANCELLING else link.status,
                                    next_attempt_at=None)
        return
    if status == CREATING:
        # Done once made (or found made): make_link's last step opens it and takes it off the worker's list.
        made = await make_link(uow, provider, invoice, _suffix(link), policy, now)
        log.info("payment link made for what is due", link_id=link.id, amount_minor=link.amount_minor,
                 status=made.status)
        return
    final = await _cancel(provider, link)
    async with uow() as unit:
        await unit.links.update(link.id, status=final, next_attempt_at=None)
    log.info("outdated payment link", link_id=link.id, status=final)


async def _cancel(provider: PaymentProvider, link: PaymentLink) -> str:
    """Cancel the link at the provider; the status it ends in (the provider's: cancelled, expired or paid)."""
    made_id = link.provider_link_id
    if not made_id:
        # Never answered as made: made only if an attempt's answer was lost, and then found by its reference.
        found = await provider.find_payment_link(link.reference_id)
        if found is None:
            return CANCELLED
        if found.status in _FINISHED:
            return found.status
        made_id = found.id
    try:
        return (await provider.cancel_payment_link(made_id)).status or CANCELLED
    except ProviderFailure as failure:
        if failure.kind is not FailureKind.REJECTED:
            raise
        # Refused: cancelled before (a retry after a lost answer), expired or paid: as the provider has it now.
        found = await provider.find_payment_link(link.reference_id)
        if found is not None and found.status in _FINISHED:
            return found.status
        raise
