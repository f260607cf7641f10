"""A partial credit note on an unpaid invoice of an organisation on Stripe, through the real mesh and the local
Stripe: payments makes a new PaymentIntent for the amount due, cancels the old one (whose payment_intent.canceled
is no failed payment), and the new one paid settles the invoice in invoicing with nothing over-paid."""

from __future__ import annotations

import pytest
from localstripe import resources

from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pay
from tests.integration.payments.conftest import (
    collection,
    created_order,
    eventually,
    issue_stripe_invoice,
    running_stripe_collecting,
)
from tests.integration.payments.jetstream import payments_events
from tests.integration.payments.test_partial_credit import DUE, credit_a_quarter, over_payments, remade_order, settled


@pytest.fixture(scope="module")
async def stripe_collecting(database_url, nats_url, invoicing, metering, ingest):
    async with running_stripe_collecting(database_url, nats_url, invoicing, metering, ingest) as running:
        yield running


async def test_stripe_cancels_the_old_payment_intent_and_collects_the_amount_due_on_a_new_one(stripe_collecting,
                                                                                            invoicing_stub,
                                                                                            invoicing):
    collecting = stripe_collecting
    invoice = await issue_stripe_invoice(collecting.stub, invoicing_stub, invoicing)
    old = await created_order(collecting.stub, invoice.id)
    await credit_a_quarter(invoicing_stub, invoice.id)
    order = await remade_order(collecting.stub, invoice.id, old.provider_order_id)
    assert order.provider == events_pb2.PROVIDER_STRIPE and order.amount_minor == DUE
    intent = resources.store[f"payment_intent:{order.provider_order_id}"]
    assert (intent.amount, intent.metadata["invoice_id"]) == (DUE, invoice.id)
    await eventually(lambda: _status(old.provider_order_id), lambda s: s == "canceled",
                     what="the old PaymentIntent cancelled")
    checkout = (await collecting.stub.GetCheckout(pay.GetCheckoutRequest(invoice_id=invoice.id))).checkout
    assert (checkout.order_id, checkout.client_secret) == (order.provider_order_id, intent.client_secret)

    # Stripe tells us of the cancellation: no payment failed.
    async def cancellation_logged():
        log = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(
            event_type="payment_intent.canceled", page_size=500))
        return [e for e in log.events if old.provider_order_id in e.outcome]

    [logged] = await eventually(cancellation_logged, what="payment_intent.canceled in the webhook log")
    assert logged.outcome.startswith("ignored")

    await collecting.local.control.pay(order.provider_order_id)
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == DUE, what="the capture")
    assert [p.provider_payment_id for p in paid.payments] == [order.provider_order_id]
    settled_invoice = await settled(invoicing_stub, invoice.id, DUE)
    assert settled_invoice.amount_due_minor == 0 and await over_payments(invoicing_stub, invoice) == []
    events = await payments_events(collecting.payments.js, invoice.id)
    assert [type(e).__name__ for e in events] == ["PaymentCaptured"]


async def _status(intent_id: str) -> str:
    return resources.store[f"payment_intent:{intent_id}"].status
