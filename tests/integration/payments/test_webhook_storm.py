"""1,000 webhook deliveries, genuine ones repeated and shuffled, forged ones among them: the final states are
exactly what the genuine events say, each consequence is announced once, and nothing forged is stored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
from dataclasses import dataclass, field

import httpx

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import payments_pb2 as pay
from tests.integration.payments.conftest import collection, created_order, eventually
from tests.integration.payments.jetstream import all_payments_events

# A delivery answered 503 (the gateway could not store it: payments busy) is sent again, up to this many times.
RETRIES = 10
INVOICES = 50
COPIES = 5
TOTAL = 1000
TOTAL_MINOR = 11800


@dataclass
class Expected:
    invoice_id: str
    captured: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    refunds: set[str] = field(default_factory=set)


def _entity(payment_id: str, order_id: str, status: str) -> dict:
    return {"id": payment_id, "entity": "payment", "amount": TOTAL_MINOR, "currency": "INR", "status": status,
            "order_id": order_id, "international": False, "method": "upi", "amount_refunded": 0,
            "refund_status": None, "captured": status == "captured", "vpa": "acme@okaxis", "email": "",
            "contact": "+919876543210", "notes": [], "error_code": "BAD_REQUEST_ERROR" if status == "failed" else None,
            "error_description": "Payment failed" if status == "failed" else None, "created_at": 1764900000}


def _event(event: str, payload: dict) -> bytes:
    return json.dumps({"entity": "event", "account_id": "acc_Storm000000001", "event": event,
                       "contains": list(payload), "payload": {k: {"entity": v} for k, v in payload.items()},
                       "created_at": 1764900000}).encode()


def scenario(n: int, invoice_id: str, order_id: str) -> tuple[list[tuple[str, bytes]], Expected]:
    """The genuine events of one invoice (each its own event id) and what they must end in."""
    tag = secrets.token_hex(5)
    expected = Expected(invoice_id)
    events: list[tuple[str, bytes]] = []

    def add(event: str, payload: dict) -> None:
        events.append((f"evt_{tag}_{len(events)}", _event(event, payload)))

    kind = n % 4
    if kind == 0:  # authorized, captured, order.paid
        pid = f"pay_{tag}A"
        add("payment.authorized", {"payment": _entity(pid, order_id, "authorized")})
        add("payment.captured", {"payment": _entity(pid, order_id, "captured")})
        add("order.paid", {"payment": _entity(pid, order_id, "captured"),
                           "order": {"id": order_id, "amount": TOTAL_MINOR, "amount_paid": TOTAL_MINOR,
                                     "currency": "INR", "receipt": "x", "status": "paid"}})
        expected.captured.add(pid)
    elif kind == 1:  # a declined attempt, then a second payment that succeeds
        declined, paid = f"pay_{tag}B1", f"pay_{tag}B2"
        add("payment.failed", {"payment": _entity(declined, order_id, "failed")})
        add("payment.captured", {"payment": _entity(paid, order_id, "captured")})
        add("payment.failed", {"payment": _entity(paid, order_id, "failed")})  # a stale report: must not unpay
        expected.failed.add(declined)
        expected.captured.add(paid)
    elif kind == 2:  # declined only
        pid = f"pay_{tag}C"
        add("payment.failed", {"payment": _entity(pid, order_id, "failed")})
        expected.failed.add(pid)
    else:  # paid, then refunded from the provider's dashboard
        pid, rid = f"pay_{tag}D", f"rfnd_{tag}D"
        add("payment.captured", {"payment": _entity(pid, order_id, "captured")})
        refund = {"id": rid, "entity": "refund", "amount": 1000, "currency": "INR", "payment_id": pid,
                  "notes": [], "receipt": None, "created_at": 1764900100, "speed_requested": "normal"}
        add("refund.created", {"refund": {**refund, "status": "pending"}, "payment": _entity(pid, order_id,
                                                                                             "captured")})
        add("refund.processed", {"refund": {**refund, "status": "processed"},
                                 "payment": _entity(pid, order_id, "captured")})
        expected.captured.add(pid)
        expected.refunds.add(rid)
    return events, expected


def _sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _invoices(collecting, count: int) -> list[tuple[str, str]]:
    """``count`` invoices payments takes on (invoice.issued as invoicing publishes it), with their orders."""
    js = collecting.payments.js
    ids = []
    for _ in range(count):
        invoice_id = f"inv_storm{secrets.token_hex(6)}"
        issued = invoicing_events.InvoiceIssued(event_id=f"evt_{invoice_id}", invoice=inv.Invoice(
            id=invoice_id, organisation_id="org_storm", number=f"ST/{secrets.token_hex(4)}",
            status=inv.INVOICE_STATUS_ISSUED, currency="INR", total_minor=TOTAL_MINOR,
            customer=inv.Party(name="Storm", email="storm@acme.example"), due_date="2026-12-31"))
        await js.publish("billing.invoicing.v1.invoice.issued", issued.SerializeToString(),
                         headers={"Nats-Msg-Id": issued.event_id})
        ids.append(invoice_id)
    return [(invoice_id, (await created_order(collecting.stub, invoice_id)).provider_order_id)
            for invoice_id in ids]


async def test_a_storm_of_replayed_reordered_and_forged_deliveries(collecting):
    secret = collecting.sandbox.webhook_secret
    genuine: list[tuple[str, bytes]] = []
    expectations: list[Expected] = []
    for n, (invoice_id, order_id) in enumerate(await _invoices(collecting, INVOICES)):
        events, expected = scenario(n, invoice_id, order_id)
        genuine.extend(events)
        expectations.append(expected)
    deliveries: list[tuple[dict[str, str], bytes, bool]] = [
        ({"X-Razorpay-Event-Id": event_id, "X-Razorpay-Signature": _sign(body, secret)}, body, True)
        for event_id, body in genuine for _ in range(COPIES)
    ]
    rng = random.Random(20261205)
    forgeries = 0
    while len(deliveries) < TOTAL:
        event_id, body = rng.choice(genuine)
        kind = forgeries % 3
        if kind == 0:  # a signature that is no one's
            headers = {"X-Razorpay-Signature": secrets.token_hex(32)}
        elif kind == 1:  # a truncated body under the whole body's signature
            headers, body = {"X-Razorpay-Signature": _sign(body, secret)}, body[: len(body) // 2]
        else:  # signed with the wrong secret (the API key secret)
            headers = {"X-Razorpay-Signature": _sign(body, collecting.sandbox.key_secret)}
        # Half of them reuse a genuine event id, to try to claim it before the genuine delivery.
        headers["X-Razorpay-Event-Id"] = event_id if forgeries % 2 else f"evt_forged_{forgeries}"
        deliveries.append((headers, body, False))
        forgeries += 1
    rng.shuffle(deliveries)
    assert len(deliveries) == TOTAL and len(genuine) * COPIES + forgeries == TOTAL

    gate = asyncio.Semaphore(16)

    async def send(client: httpx.AsyncClient, headers: dict[str, str], body: bytes) -> int:
        async with gate:
            for attempt in range(RETRIES):  # a 503 (not stored) is delivered again, as Razorpay does
                reply = await client.post(collecting.webhook_url, content=body,
                                          headers={**headers, "Content-Type": "application/json"})
                if reply.status_code != 503:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            return reply.status_code

    async with httpx.AsyncClient(timeout=30) as client:
        statuses = await asyncio.gather(*(send(client, h, b) for h, b, _ in deliveries))
    for (_, _, real), status in zip(deliveries, statuses, strict=True):
        assert status == (200 if real else 401)

    genuine_ids = {event_id for event_id, _ in genuine}

    async def logged() -> set[str]:
        found, token = set(), ""
        while True:
            page = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500,
                                                                                       page_token=token))
            found |= {e.event_id for e in page.events if not e.outcome == "processing"}
            token = page.next_page_token
            if not token:
                return found

    stored = await eventually(logged, lambda ids: genuine_ids <= ids, timeout=60, what="every genuine delivery")
    assert not {i for i in stored if i.startswith("evt_forged_")}

    for expected in expectations:
        reply = await eventually(lambda e=expected: collection(collecting.stub, e.invoice_id),
                                 lambda r, e=expected: len(r.payments) == len(e.captured | e.failed)
                                 and len(r.refunds) == len(e.refunds)
                                 and r.amount_captured_minor == TOTAL_MINOR * len(e.captured),
                                 what=f"payments of {expected.invoice_id} ({expected})")
        by_id = {p.provider_payment_id: p.status for p in reply.payments}
        assert by_id == {**{p: pay.PAYMENT_STATUS_CAPTURED for p in expected.captured},
                         **{p: pay.PAYMENT_STATUS_FAILED for p in expected.failed}}
        assert reply.amount_captured_minor == TOTAL_MINOR * len(expected.captured)
        assert {(r.provider_refund_id, r.status) for r in reply.refunds} == {
            (rid, pay.REFUND_STATUS_PROCESSED) for rid in expected.refunds}

    published = await all_payments_events(collecting.payments.js)
    for expected in expectations:
        messages = published.get(expected.invoice_id, [])
        by_kind = {kind: sorted(getattr(m, "provider_payment_id", "") or getattr(m, "provider_refund_id", "")
                                for m in messages if type(m).__name__ == kind)
                   for kind in ("PaymentCaptured", "PaymentFailed", "RefundCreated", "RefundProcessed")}
        assert by_kind["PaymentCaptured"] == sorted(expected.captured), expected
        assert by_kind["RefundCreated"] == by_kind["RefundProcessed"] == sorted(expected.refunds), expected
        # A payment that ends failed is announced failed once; one that failed and then succeeded may have been
        # announced failed first (when the decline arrived first), never twice.
        failed = by_kind["PaymentFailed"]
        assert set(expected.failed) <= set(failed) <= expected.failed | expected.captured, expected
        assert len(failed) == len(set(failed)), expected
