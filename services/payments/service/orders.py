"""Making provider orders for pending invoices, in the background and never twice.

Each round claims due pending orders (leased, so another replica leaves them alone), then calls the provider
outside any transaction. An order whose earlier attempt may have reached the provider (any attempt after the
first) is first looked up by its receipt, the invoice number, so a lost answer never leads to a second order.
A rejection marks the order failed with the provider's reason (the invoice stays payable offline); an outage
or an unknown outcome is retried with backoff.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_runtime.logging import get_logger
from services.payments.domain.entities import Order, OrderStatus
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.domain.reports import ProviderOrder
from services.payments.service.ports import Clock, PaymentProvider, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(seconds=60)


async def create_due_orders(
    uow: UnitFactory, provider: PaymentProvider, now: datetime, backoff: Backoff, limit: int = 20,
    clock: Clock | None = None,
) -> int:
    """One round; returns how many orders were attempted. A retry is due ``backoff`` after the failure, by
    ``clock`` (default: ``now``)."""
    async with uow() as unit:
        claimed: list[Order] = await unit.orders.claim_due(now, LEASE, limit)
    for order in claimed:
        await _create(uow, provider, order, backoff, clock or (lambda: now))
    return len(claimed)


async def _create(uow: UnitFactory, provider: PaymentProvider, order: Order, backoff: Backoff, clock: Clock) -> None:
    async with uow() as unit:
        invoice = await unit.invoices.get(order.invoice_id)
    notes = {"invoice_id": order.invoice_id, "organisation_id": invoice.organisation_id if invoice else "",
             "invoice_number": order.receipt}
    try:
        made: ProviderOrder | None = None
        if order.create_attempts > 1:
            made = await provider.find_order(order.receipt)
        if made is None:
            made = await provider.create_order(order.amount_minor, order.currency, order.receipt, notes)
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
