"""Making provider orders for pending invoices, in the background and never twice.

Each round claims due pending orders (leased, so another replica leaves them alone), then calls the provider
outside any transaction. An order whose earlier attempt may have reached the provider (any attempt after the
first) is first looked up by its receipt, the invoice number, so a lost answer never leads to a second order.
A rejection marks the order failed with the provider's reason (the invoice stays payable offline); an outage
or an unknown outcome is retried with backoff.

Each order is made at its own provider. Stripe's PaymentIntent belongs to a customer, made once per
organisation and kept (``customers``); both are created with idempotency keys derived from our ids
(``customer:<organisation>``, ``payment_intent:<invoice>``), so a retry after a lost answer gets the first one
back from Stripe instead of a second (Stripe keeps keys for 24 hours, far longer than the backoff's cap). Stripe
has no lookup by receipt: ``find_order`` finds nothing there, and the idempotent create is what settles it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_runtime.logging import get_logger
from services.payments.domain.entities import Invoice, Order, OrderStatus
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.domain.reports import ProviderOrder
from services.payments.service.ports import Clock, PaymentProvider, Providers, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(seconds=60)


async def create_due_orders(
    uow: UnitFactory, providers: Providers, now: datetime, backoff: Backoff, limit: int = 20,
    clock: Clock | None = None,
) -> int:
    """One round over the orders of the configured providers; returns how many orders were attempted. A retry is
    due ``backoff`` after the failure, by ``clock`` (default: ``now``)."""
    async with uow() as unit:
        claimed: list[Order] = await unit.orders.claim_due(now, LEASE, limit, providers=providers.names)
    for order in claimed:
        await _create(uow, providers.required(order.provider), order, backoff, clock or (lambda: now))
    return len(claimed)


async def _customer(uow: UnitFactory, provider: PaymentProvider, invoice: Invoice) -> str:
    """The organisation's customer at ``provider``: the one kept, or a new one, kept."""
    async with uow() as unit:
        known: str | None = await unit.customers.get(provider.name, invoice.organisation_id)
    if known:
        return known
    made = await provider.create_customer(invoice.organisation_id, invoice.customer_name, invoice.customer_email)
    async with uow() as unit:
        return await unit.customers.add(provider.name, invoice.organisation_id, made)


async def _create(uow: UnitFactory, provider: PaymentProvider, order: Order, backoff: Backoff, clock: Clock) -> None:
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(order.invoice_id)
    notes = {"invoice_id": order.invoice_id, "organisation_id": invoice.organisation_id if invoice else "",
             "invoice_number": order.receipt}
    try:
        made: ProviderOrder | None = None
        if order.create_attempts > 1:
            made = await provider.find_order(order.receipt)
        if made is None:
            customer_id = await _customer(uow, provider, invoice) if provider.uses_customers and invoice else ""
            made = await provider.create_order(order.amount_minor, order.currency, order.receipt, notes,
                                               customer_id=customer_id)
    except ProviderFailure as failure:
        async with uow() as unit:
            current = await unit.orders.get(order.invoice_id, lock=True)
            if current is None or current.status is not OrderStatus.PENDING:
                return
            if failure.kind is FailureKind.REJECTED:
                await unit.orders.update(order.invoice_id, status=OrderStatus.FAILED, error=failure,
                                         status_reason=f"the provider refused the order: {failure}")
                log.warning("order refused by the provider", invoice_id=order.invoice_id, error=str(failure))
            else:
                retry_at = clock() + backoff.delay(order.create_attempts)
                await unit.orders.update(order.invoice_id, error=failure, next_attempt_at=retry_at)
                log.warning("order not created, will retry", invoice_id=order.invoice_id, error=str(failure),
                            retry_at=retry_at.isoformat())
        return
    async with uow() as unit:
        current = await unit.orders.get(order.invoice_id, lock=True)
        if current is None or current.status is not OrderStatus.PENDING:
            return  # voided meanwhile: the provider's order simply goes unpaid
        await unit.orders.update(order.invoice_id, status=OrderStatus.CREATED, provider_order_id=made.id, error=None,
                                 next_attempt_at=None)
    log.info("order created", invoice_id=order.invoice_id, provider_order_id=made.id)
