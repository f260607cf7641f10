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

A credit note that leaves an invoice owing less than its order asks for **remakes** the order
(:func:`collect_less`, in the credit note's transaction): the order becomes pending again for the amount due, with
the next revision and its own receipt (``<number>#O2``, ...: a lookup by receipt never finds the old one, and
Stripe's idempotency key follows it), and the provider order it had is kept as **superseded**, so a payment that
still arrives on it is its invoice's as before. The creator then makes the new one like any other. A superseded
order is cancelled at the provider where that can be done (Stripe: :func:`cancel_superseded`, unless it was paid
or is being paid first); Razorpay's orders cannot be, and are only no longer offered. An order made while its
invoice was being credited (the creator's call in flight) is superseded as soon as its answer comes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_runtime.logging import get_logger
from services.payments.domain import money, stripe_money
from services.payments.domain.entities import Cancellation, Invoice, Order, OrderStatus, SupersededOrder
from services.payments.domain.payment import Provider
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.domain.reports import ProviderOrder
from services.payments.service.ports import Clock, PaymentProvider, Providers, Unit, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(seconds=60)
# Razorpay's limit on an order's receipt (kept for every provider: Stripe's metadata values take 500).
MAX_RECEIPT = 40


def collectable(provider: Provider, total_minor: int, currency: str) -> money.Collectable:
    """Whether ``provider`` can take the amount: Razorpay's rules (:mod:`..domain.money`) or Stripe's
    (:mod:`..domain.stripe_money`)."""
    if provider is Provider.STRIPE:
        return stripe_money.collectable(total_minor, currency)
    return money.collectable(total_minor, currency)


def receipt(invoice_number: str, revision: int = 1) -> str:
    """The order's receipt: the invoice number, and ``#O<revision>`` after it for an order remade."""
    return (invoice_number if revision == 1 else f"{invoice_number}#O{revision}")[:MAX_RECEIPT]


async def collect_less(unit: Unit, order: Order, invoice: Invoice, amount_minor: int, reason: str,
                       now: datetime) -> bool:
    """Inside the caller's transaction (the invoice locked): the invoice's order asks for ``amount_minor`` from
    now on, if that is less than it asks. A created order is remade (its provider order superseded); a pending
    one not tried yet just takes the amount; one tried already is remade too (its attempt may have reached the
    provider). An order payable offline only keeps its status with the lower amount; a paid or cancelled one is
    left alone. True when the order changed."""
    if amount_minor >= order.amount_minor or order.status in (OrderStatus.PAID, OrderStatus.CANCELLED):
        return False
    if order.status in (OrderStatus.NOT_NEEDED, OrderStatus.FAILED) or (
            order.status is OrderStatus.PENDING and order.create_attempts == 0):
        await unit.orders.update(order.invoice_id, amount_minor=amount_minor)
        return True
    if order.provider_order_id:
        await unit.orders.supersede(SupersededOrder(
            order.provider_order_id, order.invoice_id, order.provider, order.amount_minor, order.currency,
            order.receipt, order.revision, reason=reason[:500], next_attempt_at=now))
    revision = order.revision + 1
    able = collectable(order.provider, amount_minor, order.currency)
    await unit.orders.update(
        order.invoice_id, amount_minor=amount_minor, revision=revision, receipt=receipt(invoice.number, revision),
        provider_order_id="", error=None, create_attempts=0,
        status=OrderStatus.PENDING if able.online else OrderStatus.NOT_NEEDED,
        status_reason="" if able.online else able.reason, next_attempt_at=now if able.online else None)
    log.info("order remade for a lower amount", invoice_id=order.invoice_id, amount_minor=amount_minor,
             replaced=order.provider_order_id, revision=revision)
    return True


async def withdraw(unit: Unit, order: Order, reason: str, now: datetime) -> None:
    """Inside the caller's transaction (the invoice locked): the invoice is no longer collected (voided, or
    credited in full). An order not yet paid is cancelled; its provider order, if made, is kept as superseded, so
    it is cancelled at the provider where that can be done (a Stripe PaymentIntent nobody is paying) and a payment
    still made on it is the invoice's (and goes to invoicing's review list)."""
    if order.status not in (OrderStatus.PENDING, OrderStatus.CREATED):
        return
    if order.provider_order_id:
        await unit.orders.supersede(SupersededOrder(
            order.provider_order_id, order.invoice_id, order.provider, order.amount_minor, order.currency,
            order.receipt, order.revision, reason=reason[:500], next_attempt_at=now))
    await unit.orders.update(order.invoice_id, status=OrderStatus.CANCELLED, status_reason=reason[:200],
                             next_attempt_at=None)


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
            if current is None or current.status is not OrderStatus.PENDING or current.revision != order.revision:
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
        if current is not None and (current.revision != order.revision or current.status is not OrderStatus.PENDING):
            # Remade for a lower amount, or no longer collected (void, credited in full), while this was being
            # made: kept (and cancelled where it can be) like the order it was to be, so a payment on it is still
            # the invoice's.
            why = "remade" if current.revision != order.revision else "withdrawn"
            await unit.orders.supersede(SupersededOrder(
                made.id, order.invoice_id, order.provider, order.amount_minor, order.currency, order.receipt,
                order.revision, reason=f"made while its invoice's order was being {why}", next_attempt_at=clock()))
            return
        if current is None:
            return
        await unit.orders.update(order.invoice_id, status=OrderStatus.CREATED, provider_order_id=made.id, error=None,
                                 next_attempt_at=None)
    log.info("order created", invoice_id=order.invoice_id, provider_order_id=made.id)


async def cancel_superseded(uow: UnitFactory, providers: Providers, now: datetime, backoff: Backoff,
                            limit: int = 20, clock: Clock | None = None) -> int:
    """One round over the superseded orders still to be cancelled at the configured providers; returns how many
    were attempted."""
    async with uow() as unit:
        claimed: list[SupersededOrder] = await unit.orders.claim_superseded(now, LEASE, limit,
                                                                            providers=providers.names)
    for old in claimed:
        await _cancel(uow, providers.required(old.provider), old, backoff, clock or (lambda: now))
    return len(claimed)


async def _cancel(uow: UnitFactory, provider: PaymentProvider, old: SupersededOrder, backoff: Backoff,
                  clock: Clock) -> None:
    """Cancel one superseded order where the provider can; one somebody paid or is paying is left as it is."""
    state, why = Cancellation.KEPT, f"{provider.name.title} orders cannot be cancelled: it is no longer offered"
    if provider.cancels_orders:
        try:
            found = await provider.cancel_order(old.provider_order_id)
        except ProviderFailure as failure:
            if failure.kind is not FailureKind.REJECTED:
                retry_at = clock() + backoff.delay(old.cancel_attempts)
                async with uow() as unit:
                    await unit.orders.update_superseded(old.provider_order_id, error=failure, next_attempt_at=retry_at)
                log.warning("superseded order not cancelled, will retry", provider_order_id=old.provider_order_id,
                            error=str(failure), retry_at=retry_at.isoformat())
                return
            # Refused: paid (or being paid) between the look and the cancel, or unknown to the provider.
            why = f"{provider.name.title} refused to cancel it: {failure}"
        else:
            if found.cancelled:
                state, why = Cancellation.CANCELLED, ""
            else:
                why = f"not cancelled: it is {found.status} (a payment on it is still the invoice's)"
    async with uow() as unit:
        await unit.orders.update_superseded(old.provider_order_id, cancel_state=state, cancel_reason=why[:500],
                                            next_attempt_at=None, error=None)
    log.info("superseded order", provider_order_id=old.provider_order_id, cancel_state=str(state), reason=why)
