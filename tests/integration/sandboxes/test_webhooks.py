"""Webhook deliveries: Razorpay's envelope and signature, retries, duplicates, reordering, forged signatures."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import razorpay
from razorpay.errors import SignatureVerificationError

from sandboxes.razorpay import RunningSandbox
from tests.integration.sandboxes.conftest import Received, Sdk, WebhookReceiver, fixture, paid_order


def verifies(item: Received, secret: str) -> bool:
    try:
        return razorpay.Utility(None).verify_webhook_signature(
            item.body.decode(), item.headers["x-razorpay-signature"], secret
        )
    except SignatureVerificationError:
        return False


async def test_capture_sends_authorized_captured_and_order_paid_signed_with_the_webhook_secret(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    order, payment = await paid_order(rzp, sandbox, method="netbanking", bank="HDFC")
    got = await receiver.wait_for_events("payment.authorized", "payment.captured", "order.paid")
    assert [item.event for item in got] == ["payment.authorized", "payment.captured", "order.paid"]
    for item in got:
        assert item.headers["content-type"] == "application/json"
        assert verifies(item, sandbox.webhook_secret)
        assert not verifies(item, sandbox.key_secret)
        expected = hmac.new(sandbox.webhook_secret.encode(), item.body, hashlib.sha256).hexdigest()
        assert item.headers["x-razorpay-signature"] == expected
    assert len({item.headers["x-razorpay-event-id"] for item in got}) == 3

    captured = receiver.of("payment.captured")[0].json
    sample = fixture("docs_webhook_payment.captured__netbanking.json")
    assert set(captured) == set(sample) and captured["contains"] == ["payment"]
    assert captured["account_id"].startswith("acc_")
    entity = captured["payload"]["payment"]["entity"]
    assert set(entity) == set(sample["payload"]["payment"]["entity"])
    assert (entity["id"], entity["status"], entity["order_id"]) == (payment["id"], "captured", order["id"])

    paid = receiver.of("order.paid")[0].json
    assert paid["contains"] == ["payment", "order"]
    order_sample = fixture("docs_webhook_order.paid__netbanking.json")["payload"]["order"]["entity"]
    assert set(paid["payload"]["order"]["entity"]) == set(order_sample)
    assert paid["payload"]["order"]["entity"]["status"] == "paid"


async def test_card_webhooks_carry_the_card_object(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    await paid_order(rzp, sandbox, method="card", card_number="4111111111111111")
    await receiver.wait_for_events("payment.captured")
    entity = receiver.of("payment.captured")[0].json["payload"]["payment"]["entity"]
    sample = fixture("docs_webhook_payment.captured__card.json")["payload"]["payment"]["entity"]
    assert set(sample) <= set(entity)
    assert set(entity["card"]) == set(sample["card"]) and entity["card"]["last4"] == "1111"


async def test_failed_payment_and_refund_events(rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    await sandbox.control.fail_order(order["id"], method="upi")
    payment = await sandbox.control.pay_order(order["id"], method="netbanking")
    await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 1000})
    await receiver.wait_for_events("payment.failed", "refund.created", "refund.processed")
    failed = receiver.of("payment.failed")[0].json["payload"]["payment"]["entity"]
    assert failed["status"] == "failed" and failed["error_code"] == "BAD_REQUEST_ERROR"
    assert set(fixture("docs_webhook_payment.failed__upi.json")["payload"]["payment"]["entity"]) <= set(failed)
    for event in ("refund.created", "refund.processed"):
        body = receiver.of(event)[0].json
        sample = fixture(f"docs_webhook_{event}.json")
        assert body["contains"] == ["refund", "payment"]
        assert set(body["payload"]["refund"]["entity"]) == set(sample["payload"]["refund"]["entity"])
        assert set(body["payload"]["payment"]["entity"]) == set(sample["payload"]["payment"]["entity"])
        assert body["payload"]["payment"]["entity"]["refund_status"] == "partial"


async def test_retries_after_500_keep_the_event_id_and_body(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    receiver.answers = [500, 503]
    await paid_order(rzp, sandbox, capture="manual")  # one event: payment.authorized
    got = await receiver.wait_for(lambda got: len(got) == 3)
    assert {item.body for item in got} == {got[0].body}
    assert {item.headers["x-razorpay-event-id"] for item in got} == {got[0].headers["x-razorpay-event-id"]}
    [line] = await sandbox.control.wait_for_deliveries()
    assert (line["event"], line["attempts"], line["status_code"], line["delivered"]) == (
        "payment.authorized", 3, 200, True
    )


async def test_gives_up_after_max_attempts_and_redelivers_on_request(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    receiver.answers = [500] * 4
    await paid_order(rzp, sandbox, capture="manual")
    [line] = await sandbox.control.wait_for_deliveries()
    assert (line["attempts"], line["status_code"], line["delivered"], line["finished"]) == (4, 500, False, True)
    again = await sandbox.control.redeliver(line["event_id"])
    assert again["event_id"] == line["event_id"]
    await sandbox.control.wait_for_deliveries()
    assert receiver.received[-1].headers["x-razorpay-event-id"] == line["event_id"]
    assert receiver.received[-1].headers["x-razorpay-signature"] == receiver.received[0].headers["x-razorpay-signature"]


async def test_unreachable_receiver_is_retried_then_logged(rzp: Sdk, sandbox: RunningSandbox) -> None:
    await sandbox.control.set_webhook("http://127.0.0.1:9/nobody-listens")
    await paid_order(rzp, sandbox, capture="manual")
    [line] = await sandbox.control.wait_for_deliveries()
    assert line["attempts"] == 4 and line["status_code"] is None and "Connect" in line["error"]


async def test_duplicates_arrive_with_the_same_event_id(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    await sandbox.control.set_webhook_behaviour(duplicates=2)
    await paid_order(rzp, sandbox, capture="manual")
    got = await receiver.wait_for(lambda got: len(got) == 3)
    assert len({item.headers["x-razorpay-event-id"] for item in got}) == 1
    assert all(verifies(item, sandbox.webhook_secret) for item in got)


async def test_reorder_window_delivers_events_reversed(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    await sandbox.control.set_webhook_behaviour(reorder_window=3, events=3)
    await paid_order(rzp, sandbox)
    got = await receiver.wait_for(lambda got: len(got) == 3)
    assert [item.event for item in got] == ["order.paid", "payment.captured", "payment.authorized"]


async def test_shuffled_window_is_reproducible_with_a_seed(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    await sandbox.control.set_webhook_behaviour(reorder_window=5, reorder="shuffle", seed=7)
    await paid_order(rzp, sandbox)  # three events, the window is not full
    assert receiver.received == []
    assert await sandbox.control.flush_webhooks() == 3
    got = await receiver.wait_for(lambda got: len(got) == 3)
    assert sorted(item.event for item in got) == ["order.paid", "payment.authorized", "payment.captured"]


async def test_delay_and_forged_signatures(rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    await sandbox.control.set_webhook_behaviour(wrong_secret=True, delay_ms=300, events=1)
    await paid_order(rzp, sandbox, capture="manual")
    assert receiver.received == []
    [forged] = await receiver.wait_for(lambda got: len(got) == 1)
    assert not verifies(forged, sandbox.webhook_secret)
    [line] = await sandbox.control.deliveries()
    assert line["forged"] is True
    # The behaviour was for one event only: the next ones are signed properly again.
    order = await rzp.call(rzp.client.order.create, {"amount": 900, "currency": "INR"})
    await sandbox.control.fail_order(order["id"])
    got = await receiver.wait_for(lambda got: len(got) == 2)
    assert verifies(got[1], sandbox.webhook_secret)


@pytest.mark.parametrize("secret", ["rotated_webhook_secret"])
async def test_webhook_url_and_secret_can_change_at_runtime(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver, secret: str
) -> None:
    await sandbox.control.set_webhook(None)
    await paid_order(rzp, sandbox, capture="manual")
    await sandbox.control.set_webhook(receiver.url, secret)
    await paid_order(rzp, sandbox, capture="manual")
    [item] = await receiver.wait_for(lambda got: len(got) == 1)
    assert verifies(item, secret)
    log = await sandbox.control.deliveries()
    assert [line["error"] for line in log][0] == "no webhook URL configured"
    events = await sandbox.control.events()
    assert [event["event"] for event in events] == ["payment.authorized", "payment.authorized"]
