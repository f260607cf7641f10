"""Razorpay's storm, for Stripe: 1,000 deliveries to POST /api/v1/webhooks/stripe, genuine events (signed with the
endpoint secret, each its own evt_ id) five times each and shuffled, forged ones among them (another secret, the
API key, a truncated body, a stale or future timestamp, Razorpay's scheme). The final states are exactly what the
genuine events say, each consequence is announced once, and nothing forged is stored."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, field

import httpx
import pytest

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.signatures import sign, stripe_signature_header
from tests.integration.payments.conftest import (
    STRIPE_WEBHOOK_SECRET,
    collection,
    created_order,
    eventually,
    running_stripe_collecting,
)
from tests.integration.payments.jetstream import all_payments_events

# A delivery answered 503 (the gateway could not store it: payments busy) is sent again, up to this many times.
RETRIES = 10
INVOICES = 48
COPIES = 5
TOTAL = 1000
TOTAL_MINOR = 11800
ORGANISATION = f"org_stripestorm{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
async def collecting(database_url, nats_url, invoicing, metering, ingest):
    async with running_stripe_collecting(database_url, nats_url, invoicing, metering, ingest) as running:
        yield running


@dataclass
class Expected:
    invoice_id: str
    intent: str
    captured: bool = False
    refunds: set[str] = field(default_factory=set)


def _intent(intent_id: str, invoice_id: str, status: str, **more) -> dict:
    return {"id": intent_id, "object": "payment_intent", "amount": TOTAL_MINOR, "amount_received": TOTAL_MINOR,
            "currency": "inr", "status": status, "capture_method": "automatic", "payment_method_types": ["card"],
            "metadata": {"invoice_id": invoice_id}, "created": 1764900000, "livemode": False, **more}


def _event(event_id: str, event_type: str, data_object: dict) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "api_version": "2024-06-20", "created": 1764900000,
                       "data": {"object": data_object}, "livemode": False, "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None}, "type": event_type}, indent=2).encode()


def scenario(n: int, invoice_id: str, intent_id: str) -> tuple[list[tuple[str, bytes]], Expected]:
    """The genuine events of one invoice's PaymentIntent (each its own event id) and what they must end in."""
    tag = secrets.token_hex(5)
    expected = Expected(invoice_id, intent_id)
    events: list[tuple[str, bytes]] = []

    def add(event_type: str, data_object: dict) -> None:
        event_id = f"evt_{tag}{len(events)}"
        events.append((event_id, _event(event_id, event_type, data_object)))

    declined = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card was declined."}
    kind = n % 4
    if kind == 0:  # held for capture, then captured (and Stripe's second notice of it)
        add("payment_intent.amount_capturable_updated", _intent(intent_id, invoice_id, "requires_capture",
                                                                capture_method="manual"))
        add("payment_intent.succeeded", _intent(intent_id, invoice_id, "succeeded"))
        add("payment_intent.succeeded", _intent(intent_id, invoice_id, "succeeded"))
        expected.captured = True
    elif kind == 1:  # declined, then paid with another card, then the stale decline again
        add("payment_intent.payment_failed", _intent(intent_id, invoice_id, "requires_payment_method",
                                                     last_payment_error=declined))
        add("payment_intent.succeeded", _intent(intent_id, invoice_id, "succeeded"))
        add("payment_intent.payment_failed", _intent(intent_id, invoice_id, "requires_payment_method",
                                                     last_payment_error=declined))
        expected.captured = True
    elif kind == 2:  # declined only
        add("payment_intent.payment_failed", _intent(intent_id, invoice_id, "requires_payment_method",
                                                     last_payment_error=declined))
    else:  # paid, then refunded from Stripe's dashboard: refund.created, refund.updated, charge.refunded
        refund_id = f"re_{tag}"
        refund = {"id": refund_id, "object": "refund", "amount": 1000, "currency": "inr", "payment_intent": intent_id,
                  "charge": f"ch_{tag}", "metadata": {}, "created": 1764900100}
        add("payment_intent.succeeded", _intent(intent_id, invoice_id, "succeeded"))
        add("refund.created", {**refund, "status": "pending"})
        add("refund.updated", {**refund, "status": "succeeded"})
        add("charge.refunded", {"id": f"ch_{tag}", "object": "charge", "amount": TOTAL_MINOR, "currency": "inr",
                                "payment_intent": intent_id, "amount_refunded": 1000,
                                "refunds": {"object": "list", "data": [{**refund, "status": "succeeded"}]}})
        expected.captured = True
        expected.refunds.add(refund_id)
    return events, expected


async def _invoices(collecting, count: int) -> list[tuple[str, str]]:
    """``count`` invoices of an organisation on Stripe (invoice.issued as invoicing publishes it), with their
    PaymentIntents at the local Stripe."""
    await collecting.stub.SetPaymentProvider(pay.SetPaymentProviderRequest(organisation_id=ORGANISATION,
                                                                           provider=events_pb2.PROVIDER_STRIPE))
    js = collecting.payments.js
    ids = []
    for _ in range(count):
        invoice_id = f"inv_sstorm{secrets.token_hex(6)}"
        issued = invoicing_events.InvoiceIssued(event_id=f"evt_{invoice_id}", invoice=inv.Invoice(
            id=invoice_id, organisation_id=ORGANISATION, number=f"SS/{secrets.token_hex(4)}",
            status=inv.INVOICE_STATUS_ISSUED, currency="INR", total_minor=TOTAL_MINOR,
            customer=inv.Party(name="Storm", email="storm@acme.example"), due_date="2026-12-31"))
        await js.publish("billing.invoicing.v1.invoice.issued", issued.SerializeToString(),
                         headers={"Nats-Msg-Id": issued.event_id})
        ids.append(invoice_id)
    orders = [(invoice_id, await created_order(collecting.stub, invoice_id)) for invoice_id in ids]
    assert all(order.provider == events_pb2.PROVIDER_STRIPE for _, order in orders)
    return [(invoice_id, order.provider_order_id) for invoice_id, order in orders]


def _forgery(n: int, body: bytes, api_key: str) -> tuple[str, bytes]:
    """(Stripe-Signature, body) of the n-th forgery."""
    now = int(time.time())
    kind = n % 6
    if kind == 0:  # a signature that is no one's
        return f"t={now},v1={secrets.token_hex(32)}", body
    if kind == 1:  # a truncated body under the whole body's signature
        return stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, now), body[: len(body) // 2]
    if kind == 2:  # signed with the API key instead of the endpoint secret
        return stripe_signature_header(body, api_key, now), body
    if kind == 3:  # a genuine signature captured an hour ago, replayed
        return stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, now - 3600), body
    if kind == 4:  # dated in the future
        return stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, now + 3600), body
    return f"t={now},v1={sign(body, STRIPE_WEBHOOK_SECRET)}", body  # Razorpay's scheme: the bare body's HMAC


async def test_a_storm_of_replayed_reordered_and_forged_stripe_deliveries(collecting):
    genuine: list[tuple[str, bytes]] = []
    expectations: list[Expected] = []
    for n, (invoice_id, intent_id) in enumerate(await _invoices(collecting, INVOICES)):
        events, expected = scenario(n, invoice_id, intent_id)
        genuine.extend(events)
        expectations.append(expected)
    deliveries: list[tuple[bytes, bool, int]] = [(body, True, 0) for _, body in genuine for _ in range(COPIES)]
    forgeries = 0
    rng = random.Random(20261206)
    while len(deliveries) < TOTAL:
        deliveries.append((rng.choice(genuine)[1], False, forgeries))
        forgeries += 1
    rng.shuffle(deliveries)
    assert len(deliveries) == TOTAL and len(genuine) * COPIES + forgeries == TOTAL

    gate = asyncio.Semaphore(16)

    async def send(client: httpx.AsyncClient, body: bytes, real: bool, n: int) -> int:
        async with gate:
            if real:  # signed when sent, as Stripe signs each attempt
                header = stripe_signature_header(body, STRIPE_WEBHOOK_SECRET, int(time.time()))
            else:
                header, body = _forgery(n, body, collecting.local.secret_key)
            for attempt in range(RETRIES):  # a 503 (not stored) is delivered again, as Stripe does
                reply = await client.post(collecting.webhook_url, content=body,
                                          headers={"Stripe-Signature": header, "Content-Type": "application/json"})
                if reply.status_code != 503:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            return reply.status_code

    async with httpx.AsyncClient(timeout=30) as client:
        statuses = await asyncio.gather(*(send(client, body, real, n) for body, real, n in deliveries))
    for (_, real, _), status in zip(deliveries, statuses, strict=True):
        assert status == (200 if real else 401)

    genuine_ids = {event_id for event_id, _ in genuine}

    async def logged() -> set[str]:
        found, token = set(), ""
        while True:
            page = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500,
                                                                                       page_token=token))
            found |= {e.event_id for e in page.events if e.outcome != "processing"}
            token = page.next_page_token
            if not token:
                return found

    stored = await eventually(logged, lambda ids: genuine_ids <= ids, timeout=90, what="every genuine delivery")
    assert len(stored & genuine_ids) == len(genuine_ids)

    for expected in expectations:
        reply = await eventually(lambda e=expected: collection(collecting.stub, e.invoice_id),
                                 lambda r, e=expected: len(r.payments) == 1 and len(r.refunds) == len(e.refunds)
                                 and r.amount_captured_minor == (TOTAL_MINOR if e.captured else 0)
                                 and all(x.status == pay.REFUND_STATUS_PROCESSED for x in r.refunds),
                                 timeout=60, what=f"payments of {expected.invoice_id} ({expected})")
        [payment] = reply.payments
        assert payment.provider_payment_id == expected.intent and payment.provider == events_pb2.PROVIDER_STRIPE
        assert payment.status == (pay.PAYMENT_STATUS_CAPTURED if expected.captured else pay.PAYMENT_STATUS_FAILED)
        assert {r.provider_refund_id for r in reply.refunds} == expected.refunds

    published = await all_payments_events(collecting.payments.js)
    for expected in expectations:
        messages = published.get(expected.invoice_id, [])
        by_kind = {kind: sorted(getattr(m, "provider_payment_id", "") or getattr(m, "provider_refund_id", "")
                                for m in messages if type(m).__name__ == kind)
                   for kind in ("PaymentCaptured", "PaymentFailed", "RefundCreated", "RefundProcessed")}
        assert by_kind["PaymentCaptured"] == ([expected.intent] if expected.captured else []), expected
        assert by_kind["RefundCreated"] == by_kind["RefundProcessed"] == sorted(expected.refunds), expected
        # A PaymentIntent that ends failed is announced failed once; one declined and then paid may have been
        # announced failed first (when the decline arrived first), never twice.
        assert len(by_kind["PaymentFailed"]) <= 1, expected
        if not expected.captured:
            assert by_kind["PaymentFailed"] == [expected.intent], expected
        kinds = [type(m).__name__ for m in messages]
        if expected.refunds:  # the capture is announced before its refund, whatever order the events came in
            assert kinds.index("PaymentCaptured") < kinds.index("RefundCreated"), kinds
