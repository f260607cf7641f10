"""An organisation on Stripe: a real invoice -> a PaymentIntent at the local Stripe -> confirmed by the payer ->
Stripe's signed webhook through the real gateway -> invoice paid; refunds -> partially refunded, refunded. Stripe's
own fixture bodies through the gateway, and forged ones refused. Razorpay stays the default beside it."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime

import grpc
import pytest
from localstripe import resources

from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.signatures import sign, stripe_signature_header
from billing_runtime.timestamps import to_timestamp
from tests.integration.helpers import expect_rpc_error
from tests.integration.payments.conftest import (
    STRIPE_WEBHOOK_SECRET,
    collection,
    created_order,
    eventually,
    issue_invoice,
    issue_stripe_invoice,
    running_stripe_collecting,
)
from tests.integration.payments.jetstream import payments_events
from tests.shared_fixtures import STRIPE_FIXTURES


@pytest.fixture(scope="module")
async def collecting(database_url, nats_url, invoicing, metering, ingest):
    async with running_stripe_collecting(database_url, nats_url, invoicing, metering, ingest) as running:
        yield running


async def invoice_status(invoicing_stub, invoice_id: str) -> int:
    return (await invoicing_stub.GetInvoice(inv.GetInvoiceRequest(invoice_id=invoice_id))).invoice.status


async def test_an_invoice_is_paid_through_stripe_and_refunded_in_part_then_in_full(collecting, invoicing_stub,
                                                                                   invoicing):
    invoice = await issue_stripe_invoice(collecting.stub, invoicing_stub, invoicing)
    assert (invoice.total_minor, invoice.currency) == (11800, "INR")
    order = await created_order(collecting.stub, invoice.id)
    assert order.provider == events_pb2.PROVIDER_STRIPE and order.provider_order_id.startswith("pi_")
    intent = resources.store[f"payment_intent:{order.provider_order_id}"]
    assert (intent.amount, intent.currency) == (11800, "inr")
    assert intent.metadata["invoice_id"] == invoice.id and intent.metadata["invoice_number"] == invoice.number
    customer = resources.store[f"customer:{intent.customer}"]
    assert customer.email == invoice.customer.email and customer.metadata["organisation_id"] == invoice.organisation_id

    checkout = (await collecting.stub.GetCheckout(pay.GetCheckoutRequest(invoice_id=invoice.id))).checkout
    assert checkout.provider == events_pb2.PROVIDER_STRIPE and checkout.key_id == collecting.local.publishable_key
    assert checkout.order_id == order.provider_order_id and checkout.client_secret == intent.client_secret
    await expect_rpc_error(collecting.stub.VerifyCheckout(pay.VerifyCheckoutRequest(
        invoice_id=invoice.id, razorpay_order_id=order.provider_order_id, razorpay_payment_id="pay_1",
        razorpay_signature="ab" * 32)), grpc.StatusCode.FAILED_PRECONDITION)

    # The payer confirms in the browser (Stripe.js); Stripe's payment_intent.succeeded settles it.
    await collecting.local.control.pay(order.provider_order_id)
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == 11800, what="the capture")
    [payment] = paid.payments
    assert (payment.provider, payment.provider_payment_id, payment.status) == (
        events_pb2.PROVIDER_STRIPE, order.provider_order_id, pay.PAYMENT_STATUS_CAPTURED)
    assert paid.order.status == pay.ORDER_STATUS_PAID
    await eventually(lambda: invoice_status(invoicing_stub, invoice.id), lambda s: s == inv.INVOICE_STATUS_PAID,
                     what="invoicing marking the invoice paid")

    part = (await collecting.stub.CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=5000, reason="a week of downtime", idempotency_key=secrets.token_hex(8)
    ))).refund
    assert part.provider_refund_id.startswith("re_") and part.status == pay.REFUND_STATUS_PROCESSED
    made = resources.store[f"refund:{part.provider_refund_id}"]
    assert (made.amount, made.payment_intent, made.metadata["refund_id"]) == (5000, order.provider_order_id, part.id)
    await eventually(lambda: invoice_status(invoicing_stub, invoice.id),
                     lambda s: s == inv.INVOICE_STATUS_PARTIALLY_REFUNDED, what="partially refunded")
    await expect_rpc_error(collecting.stub.CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=6801, reason="more than is left")), grpc.StatusCode.FAILED_PRECONDITION)
    rest = (await collecting.stub.CreateRefund(pay.CreateRefundRequest(payment_id=payment.id, reason="the rest",
                                                                       idempotency_key=secrets.token_hex(8)))).refund
    assert rest.amount_minor == 6800
    await eventually(lambda: invoice_status(invoicing_stub, invoice.id), lambda s: s == inv.INVOICE_STATUS_REFUNDED,
                     what="refunded")

    events = await eventually(lambda: payments_events(collecting.payments.js, invoice.id),
                              lambda found: len(found) >= 5, what="payments' events")
    assert [type(m).__name__ for m in events] == ["PaymentCaptured", "RefundCreated", "RefundProcessed",
                                                  "RefundCreated", "RefundProcessed"]
    assert events[0].provider == events_pb2.PROVIDER_STRIPE and events[0].amount_minor == 11800

    # Stripe's own events about it arrived, signed, and were applied once (refund.created / charge.refunded
    # found the refunds already processed: no change).
    async def logged():
        reply = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500))
        return [e for e in reply.events if e.provider == events_pb2.PROVIDER_STRIPE and e.outcome != "processing"
                and (order.provider_order_id in e.outcome or part.id in e.outcome or rest.id in e.outcome)]

    found = await eventually(logged, lambda es: {"payment_intent.succeeded", "refund.created", "charge.refunded"}
                             <= {e.event_type for e in es}, what="Stripe's webhooks in the log")
    applied = [e for e in found if e.event_type == "payment_intent.succeeded"]
    assert len(applied) == 1 and applied[0].outcome.startswith("applied")


async def test_a_declined_card_leaves_the_invoice_open_and_is_announced_failed(collecting, invoicing_stub,
                                                                              invoicing):
    invoice = await issue_stripe_invoice(collecting.stub, invoicing_stub, invoicing)
    order = await created_order(collecting.stub, invoice.id)
    await collecting.local.control.decline(order.provider_order_id)
    reply = await eventually(lambda: collection(collecting.stub, invoice.id),
                             lambda r: [p.status for p in r.payments] == [pay.PAYMENT_STATUS_FAILED],
                             what="the failed attempt")
    assert reply.payments[0].error_code == "card_declined" and reply.amount_captured_minor == 0
    events = await eventually(lambda: payments_events(collecting.payments.js, invoice.id), what="payment.failed")
    assert [type(m).__name__ for m in events] == ["PaymentFailed"]
    assert await invoice_status(invoicing_stub, invoice.id) == inv.INVOICE_STATUS_ISSUED


async def test_a_card_declined_then_another_that_pays_leaves_a_captured_payment_with_no_error(collecting,
                                                                                                invoicing_stub,
                                                                                                invoicing):
    """The PaymentIntent is the payment: its first card's decline is history (the webhook log, payment.failed),
    not the state of a payment that was then paid; Stripe's decline redelivered late changes nothing."""
    invoice = await issue_stripe_invoice(collecting.stub, invoicing_stub, invoicing)
    order = await created_order(collecting.stub, invoice.id)
    await collecting.local.control.decline(order.provider_order_id)
    await eventually(lambda: collection(collecting.stub, invoice.id),
                     lambda r: [p.status for p in r.payments] == [pay.PAYMENT_STATUS_FAILED], what="the decline")
    # Another card on the same PaymentIntent, confirmed with it as Stripe.js does after a decline.
    await collecting.local.control.client.v1.payment_intents.confirm_async(
        order.provider_order_id, {"payment_method": "pm_card_visa"})
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == 11800, what="the capture")
    [payment] = paid.payments
    assert (payment.provider_payment_id, payment.status) == (order.provider_order_id, pay.PAYMENT_STATUS_CAPTURED)
    assert (payment.error_code, payment.error_description, payment.error_reason) == ("", "", "")
    assert not payment.HasField("failure_time") and payment.HasField("capture_time")
    assert (paid.amount_due_minor, paid.order.status) == (0, pay.ORDER_STATUS_PAID)
    shown = (await collecting.http.get(f"/api/v1/admin/payments/{payment.id}")).json()
    assert (shown["status"], shown["error_code"], shown["error_description"], shown["failed_at"]) == (
        "captured", "", "", None)
    await eventually(lambda: invoice_status(invoicing_stub, invoice.id), lambda s: s == inv.INVOICE_STATUS_PAID,
                     what="invoicing marking the invoice paid")

    # The decline is still where it was recorded: the webhook log says why, and payment.failed went out with it.
    async def declines():
        reply = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(
            event_type="payment_intent.payment_failed", page_size=500))
        return [e.outcome for e in reply.events if order.provider_order_id in e.outcome]

    [declined] = await eventually(declines, what="the decline in the webhook log")
    assert declined.startswith(f"applied: payment {order.provider_order_id} failed (card_declined"), declined
    events = await eventually(lambda: payments_events(collecting.payments.js, invoice.id),
                              lambda found: len(found) >= 2, what="payment.failed and payment.captured")
    assert [type(m).__name__ for m in events] == ["PaymentFailed", "PaymentCaptured"]
    assert events[0].error_code == "card_declined"

    # Stripe redelivers the decline late, signed, through the gateway: forward-only, nothing moves back.
    intent = resources.store[f"payment_intent:{order.provider_order_id}"]
    late = {"id": f"evt_late_{secrets.token_hex(6)}", "object": "event", "type": "payment_intent.payment_failed",
            "created": int(time.time()), "data": {"object": {
                "id": intent.id, "object": "payment_intent", "amount": 11800, "currency": "inr",
                "status": "requires_payment_method", "metadata": dict(intent.metadata),
                "last_payment_error": {"type": "card_error", "code": "card_declined", "message": "declined"}}}}
    body = json.dumps(late).encode()
    reply = await collecting.http.post(collecting.webhook_url, content=body, headers={
        "Stripe-Signature": stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, int(time.time()))})
    assert reply.status_code == 200, reply.text

    async def late_outcome():
        listed = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(
            event_type="payment_intent.payment_failed", page_size=500))
        return [e.outcome for e in listed.events if e.event_id == late["id"] and e.outcome != "processing"]

    [outcome] = await eventually(late_outcome, what="the late decline processed")
    assert outcome.startswith("no change"), outcome
    [again] = (await collection(collecting.stub, invoice.id)).payments
    assert (again.status, again.error_code, again.HasField("failure_time")) == (pay.PAYMENT_STATUS_CAPTURED, "", False)


async def test_razorpay_stays_the_default_beside_stripe(collecting, invoicing_stub, invoicing):
    invoice = await issue_invoice(invoicing_stub, invoicing)
    order = await created_order(collecting.stub, invoice.id)
    assert order.provider == events_pb2.PROVIDER_RAZORPAY and order.provider_order_id.startswith("order_")
    chosen = await collecting.stub.GetPaymentProvider(pay.GetPaymentProviderRequest(
        organisation_id=invoice.organisation_id))
    assert (chosen.provider, chosen.own) == (events_pb2.PROVIDER_RAZORPAY, False)
    assert set(chosen.available) == {events_pb2.PROVIDER_RAZORPAY, events_pb2.PROVIDER_STRIPE}
    reply = await collecting.http.get(f"/api/v1/admin/organisations/{invoice.organisation_id}/payment-provider")
    assert reply.status_code == 200 and reply.json()["available"] == ["razorpay", "stripe"], reply.text
    await expect_rpc_error(collecting.stub.CreatePaymentLink(pay.CreatePaymentLinkRequest(invoice_id="inv_none")),
                           grpc.StatusCode.NOT_FOUND)


async def test_stripes_fixture_events_are_acknowledged_and_logged_as_their_kind_deserves(collecting):
    expected = {"event_payment_intent.succeeded__dj-stripe.json": "unmatched",  # not an intent of ours
                "event_invoice.paid__gitpay.json": "ignored", "openapi_fixtures3__event.json": "ignored"}
    sent = {}
    for name, outcome in expected.items():
        body = (STRIPE_FIXTURES / name).read_bytes()
        reply = await collecting.http.post(collecting.webhook_url, content=body, headers={
            "Stripe-Signature": stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, int(time.time()))})
        assert reply.status_code == 200, (name, reply.text)
        sent[json.loads(body)["id"]] = outcome

    async def logged():
        reply = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500))
        return {e.event_id: e.outcome for e in reply.events if e.event_id in sent and e.outcome != "processing"}

    found = await eventually(logged, lambda f: len(f) == len(sent), what="the fixtures in the log")
    for event_id, outcome in sent.items():
        assert found[event_id].startswith(outcome), (event_id, found[event_id])


async def test_forged_stripe_webhooks_are_refused_and_nothing_is_stored(collecting):
    body = (STRIPE_FIXTURES / "event_payment_intent.succeeded__dj-stripe.json").read_bytes()
    body = body.replace(b"evt_1FG74XB7kbjcJ8Qq22i2BPdt", b"evt_forgedStripe000001")
    now = int(time.time())
    attempts = [
        {},
        {"Stripe-Signature": "garbage"},
        {"Stripe-Signature": stripe_signature_header(body, "whsec_not_the_secret", now)},
        {"Stripe-Signature": stripe_signature_header(body, collecting.local.secret_key, now)},  # the API key
        {"Stripe-Signature": stripe_signature_header(body[:-3], STRIPE_WEBHOOK_SECRET, now)},
        {"Stripe-Signature": stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, now - 3600)},  # a replay
        {"Stripe-Signature": stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, now + 3600)},
        # Razorpay's scheme on Stripe's route: the body's bare HMAC is not Stripe's signature.
        {"Stripe-Signature": f"t={now},v1={sign(body, STRIPE_WEBHOOK_SECRET)}"},
    ]
    for headers in attempts:
        reply = await collecting.http.post(collecting.webhook_url, content=body, headers=headers)
        assert reply.status_code == 401, (headers, reply.text)
        assert "Stripe-Signature" in reply.json()["detail"]
    log = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500))
    assert all(e.event_id != "evt_forgedStripe000001" for e in log.events)


async def _reconcile(collecting, start: datetime) -> pay.RunReconciliationResponse:
    await asyncio.sleep(1.1)  # Stripe lists by whole seconds: let the last object's second pass
    reply = await collecting.stub.RunReconciliation(pay.RunReconciliationRequest(
        start_time=to_timestamp(start), end_time=to_timestamp(datetime.now(UTC))))
    assert reply.run.state == pay.RECONCILIATION_STATE_COMPLETED, reply.run.error
    return reply


async def test_reconciliation_finds_every_kind_of_mismatch_at_stripe_too(collecting, invoicing_stub, invoicing):
    # Issued (their PaymentIntents made) before the window; paid within it, as a day's payments are.
    invoices = [await issue_stripe_invoice(collecting.stub, invoicing_stub, invoicing) for _ in range(4)]
    orders = [await created_order(collecting.stub, invoice.id) for invoice in invoices]
    start = datetime.now(UTC)
    for order in orders:
        await collecting.local.control.pay(order.provider_order_id)
    paid = [await eventually(lambda i=invoice: collection(collecting.stub, i.id),
                             lambda r: [p.status for p in r.payments] == [pay.PAYMENT_STATUS_CAPTURED],
                             what="the capture") for invoice in invoices]
    a, b, c, d = [reply.payments[0] for reply in paid]
    refund = (await collecting.stub.CreateRefund(pay.CreateRefundRequest(
        payment_id=a.id, amount_minor=1000, reason="goodwill", idempotency_key=secrets.token_hex(8)))).refund
    ids = {p.provider_payment_id for p in (a, b, c, d)} | {refund.provider_refund_id}

    def kinds(found) -> set[tuple[str, str]]:
        return {(pay.DiscrepancyKind.Name(x.kind), x.provider_id) for x in found if x.provider_id in ids}

    clean = await _reconcile(collecting, start)
    assert kinds(clean.discrepancies) == set() and clean.run.payments_checked >= 4

    # Behind our back, at Stripe:
    resources.store[f"payment_intent:{a.provider_payment_id}"].amount = 10800
    resources.store[f"payment_intent:{b.provider_payment_id}"].currency = "usd"
    resources.store[f"payment_intent:{c.provider_payment_id}"]._canceled = True
    gone = resources.store[f"payment_intent:{d.provider_payment_id}"]
    del resources.store[f"charge:{gone.latest_charge.id}"], resources.store[f"payment_intent:{gone.id}"]
    stranger = await collecting.local.control.client.v1.payment_intents.create_async({"amount": 7700,
                                                                                      "currency": "inr"})
    await collecting.local.control.pay(stranger.id)  # paid at Stripe, not an invoice of ours: unmatched
    ids.add(stranger.id)
    expected = {("DISCREPANCY_KIND_AMOUNT_MISMATCH", a.provider_payment_id),
                ("DISCREPANCY_KIND_CURRENCY_MISMATCH", b.provider_payment_id),
                ("DISCREPANCY_KIND_STATUS_MISMATCH", c.provider_payment_id),
                ("DISCREPANCY_KIND_MISSING_PROVIDER", d.provider_payment_id),
                ("DISCREPANCY_KIND_MISSING_OURS", stranger.id)}
    tampered = await _reconcile(collecting, start)
    assert kinds(tampered.discrepancies) == expected
    again = await _reconcile(collecting, start)
    assert {x.id for x in again.discrepancies if x.provider_id in ids} == {
        x.id for x in tampered.discrepancies if x.provider_id in ids}  # the same open ones, not new ones
