"""The benchmark's webhook deliveries are ones the gateway accepts and payments applies, and its fixed-rate
sender really is open loop (a slow server never delays the next delivery)."""

from __future__ import annotations

import asyncio
import re

import httpx

from bench import webhook_driver
from billing_runtime.signatures import matches
from services.payments.domain.razorpay_events import parse_webhook

SECRET = "bench-webhook-secret"
GATEWAY_EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # services/gateway/entrypoints/http/webhooks.py


def test_each_delivery_is_a_signed_captured_payment_for_its_order_with_its_own_ids():
    orders = [f"order_Bench{n:09d}" for n in range(3)]
    deliveries = webhook_driver.build_deliveries(orders, 11_800, "INR", SECRET)

    assert len({d.payment_id for d in deliveries}) == len({d.event_id for d in deliveries}) == 3
    for delivery, order_id in zip(deliveries, orders, strict=True):
        assert matches(delivery.body, delivery.signature, [SECRET])
        assert not matches(delivery.body, delivery.signature, ["another secret"])
        assert GATEWAY_EVENT_ID.fullmatch(delivery.event_id)
        assert delivery.headers()["X-Razorpay-Signature"] == delivery.signature
        notice = parse_webhook(delivery.body)
        assert notice.event == "payment.captured" and notice.payment is not None
        payment = notice.payment
        assert (payment.id, payment.order_id, payment.amount_minor, payment.currency) == (
            delivery.payment_id, order_id, 11_800, "INR")
        assert payment.status == "captured" and payment.captured


async def test_the_fixed_rate_sender_keeps_its_schedule_however_slow_the_answers():
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return httpx.Response(200, json={"received": True})

    deliveries = webhook_driver.build_deliveries([f"order_{n}" for n in range(10)], 100, "INR", SECRET)
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow), base_url="http://bench") as http:
        sending = await webhook_driver.paced(http, deliveries, rate=100.0)

    assert sending.acknowledged == 10
    assert max(sending.lateness()) < 0.05  # every one sent when due, not after the one before was answered
    assert min(sending.latencies()) >= 0.2
    assert sending.seconds < 0.2 + 10 / 100 + 0.1
