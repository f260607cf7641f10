"""Razorpay outages while making orders and sending refunds: payments waits with the provider's error, tries
again, and never makes a second order or a second refund however the first attempt ended.

This module's payments gives up on a call after 1 s and retries after 1 s, 2 s (so an answer the sandbox is
still working on, hung for 1.6 s, has been made by the time payments asks again).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.messaging import stream_name
from tests.integration.payments.conftest import (
    Collecting,
    collection,
    created_order,
    eventually,
    issue_invoice,
    paid_invoice,
    running_collecting,
    sandbox_orders,
    sandbox_refunds,
)

TIMEOUT = 1.0
HANG = 1.6  # longer than the timeout; the sandbox still does the work once it is over


@pytest.fixture(scope="module")
async def outages(database_url, nats_url, invoicing, metering, ingest) -> AsyncIterator[Collecting]:
    async with running_collecting(database_url, nats_url, invoicing, metering, ingest,
                                  razorpay_timeout_seconds=TIMEOUT, provider_retry_base_seconds=1.0,
                                  provider_retry_cap_seconds=2.0) as collecting:
        yield collecting


async def no_order_waiting(collecting: Collecting) -> None:
    """Wait until payments has taken every issued invoice (earlier tests' too) and made its order, so a fault
    armed on POST /v1/orders is met by this test's order and no other."""
    info = await collecting.payments.js.consumer_info(stream_name("invoicing"), "payments-invoice-events")

    async def pending() -> int:
        taken = await collecting.payments.js.consumer_info(info.stream_name, info.name)
        async with collecting.payments.engine.connect() as conn:
            orders = (await conn.execute(sa.text("SELECT count(*) FROM payments.orders WHERE status = 'pending'")))
            return taken.num_pending + taken.num_ack_pending + orders.scalar_one()

    await eventually(pending, lambda n: n == 0, what="no order waiting to be made")


async def test_an_outage_leaves_the_order_pending_with_the_error_then_it_is_made_once(outages, invoicing_stub,
                                                                                    invoicing):
    await no_order_waiting(outages)
    await outages.sandbox.control.inject_fault("/v1/orders", method="POST", status=503, times=2)
    invoice = await issue_invoice(invoicing_stub, invoicing)

    waiting = await eventually(lambda: collection(outages.stub, invoice.id),
                               lambda r: r.order.error.http_status == 503, what="the provider's error on the order")
    assert waiting.order.status == pay.ORDER_STATUS_PENDING and not waiting.order.provider_order_id
    assert waiting.order.error.code == "SERVER_ERROR" and waiting.order.error.description

    order = await created_order(outages.stub, invoice.id)
    assert order.create_attempts == 3 and not order.HasField("error")
    assert [made["id"] for made in sandbox_orders(outages, invoice.number)] == [order.provider_order_id]
    assert outages.sandbox.sandbox.faults.describe() == []  # both 503s were met by this order


async def test_an_order_call_that_times_out_is_found_by_receipt_not_made_again(outages, invoicing_stub, invoicing):
    await no_order_waiting(outages)
    await outages.sandbox.control.inject_fault("/v1/orders", method="POST", status=None, hang_seconds=HANG)
    invoice = await issue_invoice(invoicing_stub, invoicing)

    unknown = await eventually(lambda: collection(outages.stub, invoice.id),
                               lambda r: r.order.error.description == "no answer in time",
                               what="the unknown outcome on the order")
    assert unknown.order.status == pay.ORDER_STATUS_PENDING and unknown.order.error.http_status == 0

    order = await created_order(outages.stub, invoice.id)
    assert order.create_attempts == 2 and not order.HasField("error")
    # The order the hung call made is the one found and kept: there is no second one.
    assert [made["id"] for made in sandbox_orders(outages, invoice.number)] == [order.provider_order_id]


async def _refund(collecting: Collecting, payment: pay.Payment, amount: int, key: str = "") -> pay.Refund:
    reply = await collecting.stub.CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=amount, reason="service credit",
        idempotency_key=key or secrets.token_hex(8)))
    assert reply.created
    return reply.refund


async def _refund_now(collecting: Collecting, refund_id: str, invoice_id: str) -> pay.Refund:
    reply = await collection(collecting.stub, invoice_id)
    [refund] = [r for r in reply.refunds if r.id == refund_id]
    return refund


async def _refund_ends(collecting: Collecting, refund_id: str, invoice_id: str, status: int) -> pay.Refund:
    return await eventually(lambda: _refund_now(collecting, refund_id, invoice_id), lambda r: r.status == status,
                            what=f"refund {refund_id} to end {pay.RefundStatus.Name(status)}")


async def test_refunds_outlive_outages_and_timeouts_and_reach_the_provider_once(outages, invoicing_stub, invoicing):
    invoice, payment = await paid_invoice(outages, invoicing_stub, invoicing)
    refund_path = f"/v1/payments/{payment.provider_payment_id}/refund"
    control, store = outages.sandbox.control, outages.sandbox.sandbox.store

    # 503: stored as requested with the provider's error, sent again in the background, processed.
    await control.inject_fault(refund_path, method="POST", status=503)
    key = secrets.token_hex(8)
    refund = await _refund(outages, payment, 5000, key)
    assert refund.status == pay.REFUND_STATUS_REQUESTED and not refund.provider_refund_id
    assert (refund.error.http_status, refund.error.code) == (503, "SERVER_ERROR")
    done = await _refund_ends(outages, refund.id, invoice.id, pay.REFUND_STATUS_PROCESSED)
    [made] = sandbox_refunds(outages, payment.provider_payment_id)
    assert (made["id"], made["amount"], made["status"]) == (done.provider_refund_id, 5000, "processed")
    assert store.refund_keys[key] == made["id"]

    # A hang beyond the timeout: the sandbox makes the refund anyway. Its webhooks are held back so that payments
    # sends the refund again (a second call arrives: the pass-through fault counts it) with the same
    # X-Refund-Idempotency, and the sandbox answers with the refund it already made.
    await control.set_webhook_behaviour(delay_ms=int((HANG + 3 * TIMEOUT) * 1000), events=2)
    await control.inject_fault(refund_path, method="POST", status=None, hang_seconds=HANG)
    await control.inject_fault(refund_path, method="POST", status=None)
    key = secrets.token_hex(8)
    refund = await _refund(outages, payment, 3000, key)
    assert refund.status == pay.REFUND_STATUS_REQUESTED and refund.error.description == "no answer in time"
    done = await _refund_ends(outages, refund.id, invoice.id, pay.REFUND_STATUS_PROCESSED)
    assert outages.sandbox.sandbox.faults.describe() == []  # the refund was sent twice
    assert sorted(r["amount"] for r in sandbox_refunds(outages, payment.provider_payment_id)) == [3000, 5000]
    assert store.refund_keys[key] == done.provider_refund_id
    assert (await outages.stub.GetPayment(pay.GetPaymentRequest(payment_id=payment.id))).payment \
        .amount_refunded_minor == 8000


async def test_a_refund_the_provider_refuses_fails_and_its_amount_is_refundable_again(outages, invoicing_stub,
                                                                                     invoicing):
    invoice, payment = await paid_invoice(outages, invoicing_stub, invoicing)
    control = outages.sandbox.control

    # Refused when asked: the sandbox believes less was captured than we ask to refund.
    await control.tamper_payment(payment.provider_payment_id, amount=1000)
    refused = await _refund(outages, payment, 5000)
    assert refused.status == pay.REFUND_STATUS_FAILED
    assert (refused.error.http_status, refused.error.code, refused.error.field) == (400, "BAD_REQUEST_ERROR",
                                                                                    "amount")
    await control.tamper_payment(payment.provider_payment_id, amount=payment.amount_minor)

    # Accepted, then failed by the provider (refund.failed).
    await control.fail_next_refunds(1)
    failed = await _refund(outages, payment, 2000)
    failed = await _refund_ends(outages, failed.id, invoice.id, pay.REFUND_STATUS_FAILED)
    assert failed.provider_refund_id
    assert (await outages.stub.GetPayment(pay.GetPaymentRequest(payment_id=payment.id))).payment \
        .amount_refunded_minor == 0

    # Neither holds any money: the whole payment can still be refunded.
    everything = await _refund(outages, payment, 0)
    assert everything.amount_minor == payment.amount_minor
    await _refund_ends(outages, everything.id, invoice.id, pay.REFUND_STATUS_PROCESSED)
    made = sandbox_refunds(outages, payment.provider_payment_id)
    assert sorted((r["amount"], r["status"]) for r in made) == [(2000, "failed"), (11800, "processed")]
