"""Razorpay's own webhook bodies, byte for byte, through the real gateway: the body the official razorpay-python
test signs, and every webhook kind Razorpay documents."""

from __future__ import annotations

import json
import secrets

import razorpay

from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.signatures import sign
from tests.integration.payments.conftest import eventually
from tests.shared_fixtures import RAZORPAY_FIXTURES

SDK_TEST_BODY = RAZORPAY_FIXTURES / "payment_authorized_webhook__razorpay-python_test.json"


async def _logged(collecting, event_id: str) -> list[pay.WebhookEvent]:
    reply = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500))
    return [e for e in reply.events if e.event_id == event_id and e.outcome != "processing"]


async def test_the_body_the_official_sdk_test_signs_is_verified_as_the_sdk_verifies_it(collecting):
    body = SDK_TEST_BODY.read_bytes()
    secret = collecting.sandbox.webhook_secret
    signature = sign(body, secret)
    # The official SDK agrees on this exact body and signature (it raises SignatureVerificationError otherwise).
    assert razorpay.Utility(None).verify_webhook_signature(body.decode(), signature, secret)
    event_id = f"evt_sdk{secrets.token_hex(6)}"
    reply = await collecting.http.post(collecting.webhook_url, content=body,
                                       headers={"X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": event_id})
    assert reply.status_code == 200, reply.text
    [logged] = await eventually(lambda: _logged(collecting, event_id), what="the SDK test's webhook in the log")
    assert logged.event_type == "payment.authorized"
    assert logged.outcome.startswith("unmatched")  # its order is not one of ours: logged, acknowledged, not applied
    tampered = body.replace(b'"amount": 1000000', b'"amount": 1')
    assert tampered != body
    refused = await collecting.http.post(collecting.webhook_url, content=tampered,
                                         headers={"X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": event_id})
    assert refused.status_code == 401


async def test_every_webhook_kind_razorpay_documents_is_acknowledged_and_logged(collecting):
    sent: dict[str, str] = {}
    for path in sorted(RAZORPAY_FIXTURES.glob("docs_webhook_*.json")):
        body = path.read_bytes()
        event_id = f"evt_doc{secrets.token_hex(6)}"
        reply = await collecting.http.post(collecting.webhook_url, content=body, headers={
            "X-Razorpay-Signature": sign(body, collecting.sandbox.webhook_secret), "X-Razorpay-Event-Id": event_id})
        assert reply.status_code == 200, (path.name, reply.text)
        sent[event_id] = json.loads(body)["event"]

    async def all_logged():
        found = {}
        token = ""
        while True:
            page = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(page_size=500,
                                                                                       page_token=token))
            found.update({e.event_id: e for e in page.events if e.event_id in sent and e.outcome != "processing"})
            token = page.next_page_token
            if not token:
                return found

    logged = await eventually(all_logged, lambda found: len(found) == len(sent), what="every documented webhook")
    for event_id, event in sent.items():
        outcome = logged[event_id].outcome
        assert logged[event_id].event_type == event
        # None of these is about an order of ours: payment and refund events are unmatched, the rest ignored, and
        # none is malformed (the empty currencies, string numbers and `notes: []` of the samples are read).
        expected = "unmatched" if event.startswith(("payment.", "order.", "refund.")) else "ignored"
        if event in ("refund.speed_changed",):
            expected = "ignored"
        assert outcome.startswith(expected), (event, outcome)
