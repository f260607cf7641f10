"""Every Razorpay webhook body in the shared fixtures reads into typed values, quirks and all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.payments.domain.razorpay_events import MalformedWebhook, parse_webhook, payment_from_entity
from tests.shared_fixtures import RAZORPAY_FIXTURES

FIXTURES = RAZORPAY_FIXTURES
WEBHOOKS = [*sorted(FIXTURES.glob("docs_webhook_*.json")),
            FIXTURES / "payment_authorized_webhook__razorpay-python_test.json"]


def test_the_fixtures_are_there():
    assert len(WEBHOOKS) > 20, FIXTURES


@pytest.mark.parametrize("path", WEBHOOKS, ids=lambda p: p.stem)
def test_every_fixture_webhook_parses(path: Path):
    body = path.read_bytes()
    notice = parse_webhook(body)
    document = json.loads(body)
    assert notice.event == document["event"]
    if "payment" in document["payload"]:
        entity = document["payload"]["payment"]["entity"]
        assert notice.payment is not None and notice.payment.id == entity["id"]
        assert notice.payment.amount_minor == int(entity["amount"])
    if "refund" in document["payload"]:
        assert notice.refund is not None and notice.refund.id.startswith("rfnd_")


def test_empty_currency_means_unknown_and_an_empty_notes_list_means_none():
    notice = parse_webhook((FIXTURES / "docs_webhook_payment.failed__upi.json").read_bytes())
    assert notice.payment is not None
    assert notice.payment.currency is None and notice.payment.notes == {}
    assert notice.payment.error_code == "BAD_REQUEST_ERROR" and notice.payment.error_reason == "payment_failed"


@pytest.mark.parametrize("captured", ["1", "true", 1, True])
def test_string_and_number_flags_read_as_booleans(captured):
    payment = payment_from_entity({"id": "pay_1", "amount": "50000", "captured": captured, "status": "captured"})
    assert payment.captured is True and payment.amount_minor == 50000


@pytest.mark.parametrize("amount", [None, "12.5", -1, True, "abc", 10**16])
def test_a_payment_without_a_whole_amount_is_malformed(amount):
    with pytest.raises(MalformedWebhook):
        payment_from_entity({"id": "pay_1", "amount": amount})


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"{", b'{"event": ""}', b'{"payload": {}}', "\udcff".encode("utf-8", "surrogatepass")]
)
def test_bodies_that_are_not_events_are_malformed(body):
    with pytest.raises(MalformedWebhook):
        parse_webhook(body)


def test_an_entity_that_is_not_an_object_is_malformed_and_the_message_does_not_echo_the_body():
    body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": "x" * 10_000}}}).encode()
    with pytest.raises(MalformedWebhook) as caught:
        parse_webhook(body)
    assert len(str(caught.value)) < 100
