"""Payment links: a URL the customer can pay an invoice at without our checkout page (for emails, and one
fresh link per dunning attempt).

A link is stored first (its reference unique: "<invoice number>#L<n>" for links asked for, "#D<n>" for dunning
attempt n), then made at the provider outside the transaction. A link whose earlier making may have reached
the provider is looked up by its reference before another is made, so a lost answer never makes two.

Links are Razorpay's: Stripe's Payment Links sell products at prices, not an amount due, so a Stripe invoice
is paid through its PaymentIntent (the checkout) and asking for a link is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from billing_runtime.errors import FailedPrecondition, NotFound
from billing_runtime.ids import new_id
from services.payments.domain.entities import Invoice, InvoiceState, Order, PaymentLink
from services.payments.domain.reports import LinkRequest, ProviderLink
from services.payments.service.ports import PaymentProvider, Providers, UnitFactory

CREATING = "creating"
OPEN = "created"


@dataclass(frozen=True)
class LinkPolicy:
    valid_for: timedelta = timedelta(days=7)
    callback_url: str = ""


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
        usable = link.expire_at is None or link.expire_at > now + timedelta(hours=1)
        if link.reference_id.split("#")[-1].startswith("L") and link.status == OPEN and usable \
                and link.amount_minor == invoice.due_minor:
            return link, False
    asked = sum(1 for link in existing if link.reference_id.split("#")[-1].startswith("L"))
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
        await unit.links.update(stored.id, provider_link_id=made.id, short_url=made.short_url, status=OPEN)
    return replace(stored, provider_link_id=made.id, short_url=made.short_url, status=OPEN)
