"""Paying an invoice online: what the provider's checkout needs, and checking what Razorpay's hands back.

Razorpay Checkout takes the key id and our order, and hands the browser a signature we verify. Stripe.js takes
the publishable key and the PaymentIntent's client secret, fetched from Stripe when asked for (Stripe asks that
it be neither stored nor logged), and confirms the PaymentIntent itself: nothing comes back to verify, the
``payment_intent.succeeded`` webhook settles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from billing_runtime.ids import new_id
from services.payments.domain import signatures
from services.payments.domain.entities import Invoice, InvoiceState, Order, OrderStatus, Payment, SupersededOrder
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import ProviderFailure
from services.payments.service.ports import Providers, UnitFactory


@dataclass(frozen=True)
class Checkout:
    key_id: str
    invoice: Invoice
    order: Order
    name: str
    description: str
    checkout_url: str
    client_secret: str = ""


@dataclass(frozen=True)
class Merchant:
    """Who the customer pays, as Checkout shows it, and where the provider's hosted checkout is."""

    name: str
    key_id: str
    # "{order_id}" is replaced; empty when there is no hosted page to link to.
    checkout_url_template: str = ""


async def _payable(uow: UnitFactory, invoice_id: str) -> tuple[Invoice, Order]:
    if not invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(invoice_id)
        order: Order | None = await unit.orders.get(invoice_id)
    if invoice is None or order is None:
        raise NotFound(f"no invoice with id {invoice_id!r} to collect (it may not be issued yet)")
    if invoice.state is InvoiceState.VOID:
        raise FailedPrecondition(f"invoice {invoice.number} is void")
    if invoice.state is InvoiceState.SETTLED:
        raise FailedPrecondition(f"invoice {invoice.number} is already paid")
    if order.status in (OrderStatus.NOT_NEEDED, OrderStatus.FAILED):
        raise FailedPrecondition(f"invoice {invoice.number} cannot be paid online: {order.status_reason}")
    if order.status is OrderStatus.PENDING:
        raise FailedPrecondition(f"the order for invoice {invoice.number} is being created; try again shortly")
    return invoice, order


async def get_checkout(uow: UnitFactory, providers: Providers, merchant: Merchant, invoice_id: str) -> Checkout:
    invoice, order = await _payable(uow, invoice_id)
    provider = providers.required(order.provider)
    if provider.verifies_checkout:  # Razorpay
        url = merchant.checkout_url_template.replace("{order_id}", order.provider_order_id)
        return Checkout(key_id=merchant.key_id, invoice=invoice, order=order, name=merchant.name,
                        description=f"Invoice {invoice.number}", checkout_url=url)
    try:
        made = await provider.fetch_order(order.provider_order_id)
    except ProviderFailure as failure:
        raise Unavailable(f"{provider.name.title} could not be asked for the payment's client secret ({failure}); "
                          "retry") from None
    return Checkout(key_id=provider.key_id, invoice=invoice, order=order, name=merchant.name,
                    description=f"Invoice {invoice.number}", checkout_url="", client_secret=made.client_secret)


@dataclass(frozen=True)
class CheckoutCallback:
    invoice_id: str
    order_id: str
    payment_id: str
    signature: str


async def verify_checkout(uow: UnitFactory, key_secret: str, callback: CheckoutCallback, now: datetime) -> Payment:
    """Check Checkout's signature against OUR order id for the invoice (its order, or one a credit note replaced:
    a Checkout opened before it still pays the invoice). A good one records the payment as known (``created``)
    and due for a check, so it is settled by a fetch even if no webhook ever comes; it does not mark anything
    paid by itself."""
    for name in ("invoice_id", "payment_id", "signature"):
        if not getattr(callback, name):
            raise InvalidArgument("is required", field=name if name == "invoice_id" else f"razorpay_{name}")
    if len(callback.payment_id) > 64 or len(callback.signature) > 128:
        raise InvalidArgument("is too long to be Razorpay's", field="razorpay_signature")
    async with uow() as unit:
        invoice: Invoice | None = await unit.invoices.get(callback.invoice_id)
        order: Order | None = await unit.orders.get(callback.invoice_id)
        replaced: list[SupersededOrder] = await unit.orders.superseded_of(callback.invoice_id)
    # The orders a Checkout of this invoice may have paid: its order, and those a credit note replaced (a
    # customer who opened Checkout before the credit note pays the old amount: still the invoice's payment).
    payable = [(o.provider_order_id, o.amount_minor) for o in [order] if o is not None and o.provider_order_id]
    payable += [(o.provider_order_id, o.amount_minor) for o in replaced if o.provider is Provider.RAZORPAY]
    if invoice is None or order is None or not payable:
        raise NotFound(f"no order for invoice {callback.invoice_id!r}")
    if order.provider is not Provider.RAZORPAY:
        raise FailedPrecondition(f"invoice {invoice.number} is paid through {order.provider.title}, which confirms "
                                 "payments itself: there is no Checkout callback to verify")
    if callback.order_id:
        payable = [found for found in payable if found[0] == callback.order_id]
        if not payable:
            raise InvalidArgument("is not the order of this invoice", field="razorpay_order_id")
    matched = next((found for found in payable
                    if signatures.checkout_matches(found[0], callback.payment_id, callback.signature, key_secret)),
                   None)
    if matched is None:
        raise InvalidArgument("does not match the order and payment", field="razorpay_signature")
    order_id, amount_minor = matched
    async with uow() as unit:
        payment: Payment | None = await unit.payments.by_provider_id(Provider.RAZORPAY, callback.payment_id)
        if payment is None:
            payment = Payment(
                id=new_id("pmt"), invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id,
                provider=Provider.RAZORPAY, status=PaymentStatus.CREATED, currency=invoice.currency,
                amount_minor=amount_minor, provider_payment_id=callback.payment_id,
                provider_order_id=order_id, check_due_at=now,
            )
            if not await unit.payments.add(payment):  # a webhook stored it meanwhile
                payment = await unit.payments.by_provider_id(Provider.RAZORPAY, callback.payment_id)
    assert payment is not None
    return payment
