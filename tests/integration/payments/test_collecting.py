"""An issued invoice collected through the Razorpay sandbox: order, checkout, payment, webhooks, refund."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import grpc

from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pay
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.payments.conftest import collection, created_order, eventually, issue_invoice
from tests.integration.payments.jetstream import payments_events


async def test_an_invoice_is_paid_through_the_sandbox_and_partly_refunded(collecting, invoicing_stub, invoicing):
    invoice = await issue_invoice(invoicing_stub, invoicing)
    assert invoice.total_minor == 11800
    order = await created_order(collecting.stub, invoice.id)
    assert (order.amount_minor, order.currency, order.invoice_number) == (11800, "INR", invoice.number)
    made = collecting.sandbox.sandbox.store.get("orders", order.provider_order_id)
    assert made["receipt"] == invoice.number and made["notes"]["invoice_id"] == invoice.id

    checkout = (await collecting.stub.GetCheckout(pay.GetCheckoutRequest(invoice_id=invoice.id))).checkout
    assert (checkout.key_id, checkout.order_id, checkout.amount_minor) == (
        collecting.sandbox.key_id, order.provider_order_id, 11800)
    assert checkout.prefill_email == invoice.customer.email and checkout.checkout_url.endswith(order.provider_order_id)

    await collecting.sandbox.control.pay_order(order.provider_order_id, method="upi", vpa="acme@okhdfc")
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == 11800, what="the capture")
    [payment] = paid.payments
    assert payment.status == pay.PAYMENT_STATUS_CAPTURED and payment.method == "upi"
    assert paid.order.status == pay.ORDER_STATUS_PAID

    refund = (await collecting.stub.CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=5000, reason="a week of downtime", idempotency_key=secrets.token_hex(8)
    ))).refund
    assert refund.amount_minor == 5000 and refund.provider_refund_id.startswith("rfnd_")
    await eventually(lambda: collection(collecting.stub, invoice.id),
                     lambda r: [x.status for x in r.refunds] == [pay.REFUND_STATUS_PROCESSED], what="the refund")
    await expect_rpc_error(collecting.stub.CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=6801, reason="more than is left")), grpc.StatusCode.FAILED_PRECONDITION)

    events = await eventually(lambda: payments_events(collecting.payments.js, invoice.id),
                              lambda found: len(found) >= 3, what="payments' events")
    kinds = [type(message).__name__ for message in events]
    assert kinds == ["PaymentCaptured", "RefundCreated", "RefundProcessed"]
    captured: events_pb2.PaymentCaptured = events[0]
    assert (captured.amount_minor, captured.invoice_number, captured.provider) == (11800, invoice.number,
                                                                                  events_pb2.PROVIDER_RAZORPAY)

    log = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=100))
    types = {e.event_type for e in log.events if payment.provider_payment_id in e.outcome or
             refund.id in e.outcome}
    assert {"payment.captured", "refund.processed"} <= types


def _signed(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_forged_webhooks_are_refused_and_nothing_is_stored(collecting):
    body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_forged000001", "amount": 100, "currency": "INR", "status": "captured"}}}}).encode()
    before = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500))
    attempts = [
        {},
        {"X-Razorpay-Signature": _signed(body, "not the secret")},
        {"X-Razorpay-Signature": _signed(body, collecting.sandbox.key_secret)},  # the key secret, not the webhook's
        {"X-Razorpay-Signature": _signed(body[:-1], collecting.sandbox.webhook_secret)},
        {"X-Razorpay-Signature": "0" * 64},
        {"X-Razorpay-Signature": "x" * 5000},
    ]
    for headers in attempts:
        reply = await collecting.http.post(collecting.webhook_url, content=body,
                                           headers={**headers, "X-Razorpay-Event-Id": "evt_forged_1"})
        assert reply.status_code == 401, (headers, reply.text)
        assert "X-Razorpay-Signature" in reply.json()["detail"]
    after = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500))
    assert len(after.events) == len(before.events)
    assert all(e.event_id != "evt_forged_1" for e in after.events)


async def test_a_genuine_delivery_is_acknowledged_once_stored_and_deduplicated_by_event_id(collecting):
    body = json.dumps({"entity": "event", "event": "subscription.charged", "payload": {}}).encode()
    headers = {"X-Razorpay-Signature": _signed(body, collecting.sandbox.webhook_secret),
               "X-Razorpay-Event-Id": f"evt_{secrets.token_hex(7)}", "Content-Type": "application/json"}
    first = await collecting.http.post(collecting.webhook_url, content=body, headers=headers)
    again = await collecting.http.post(collecting.webhook_url, content=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)

    async def logged():
        reply = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(event_type="subscription.charged"))
        return [e for e in reply.events if e.event_id == headers["X-Razorpay-Event-Id"]]

    [event] = await eventually(logged, what="the logged delivery")
    assert event.outcome.startswith("ignored")


async def test_garbled_and_oversized_webhooks_are_4xx(collecting):
    secret = collecting.sandbox.webhook_secret
    for body, status in [(b"{not json", 400), (b'{"event": 5}', 400), (b"[]", 400), (b"x" * 300_000, 413)]:
        reply = await collecting.http.post(collecting.webhook_url, content=body,
                                           headers={"X-Razorpay-Signature": _signed(body, secret)})
        assert reply.status_code == status, (body[:20], reply.text)
        assert len(reply.text) < 300


async def test_the_checkout_callback_is_verified_against_our_order(collecting, invoicing_stub, invoicing):
    invoice = await issue_invoice(invoicing_stub, invoicing)
    order = await created_order(collecting.stub, invoice.id)
    good = _signed(f"{order.provider_order_id}|pay_Checkout00001".encode(), collecting.sandbox.key_secret)
    error = await expect_rpc_error(collecting.stub.VerifyCheckout(pay.VerifyCheckoutRequest(
        invoice_id=invoice.id, razorpay_order_id=order.provider_order_id, razorpay_payment_id="pay_Checkout00001",
        razorpay_signature=_signed(b"order_other|pay_Checkout00001", collecting.sandbox.key_secret),
    )), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "razorpay_signature"
    verified = await collecting.stub.VerifyCheckout(pay.VerifyCheckoutRequest(
        invoice_id=invoice.id, razorpay_order_id=order.provider_order_id, razorpay_payment_id="pay_Checkout00001",
        razorpay_signature=good))
    assert verified.payment.status == pay.PAYMENT_STATUS_CREATED
