"""Refunds: full and partial, over the limit, idempotency, both SDK entry points, failures giving money back."""

from __future__ import annotations

import pytest
from razorpay.errors import BadRequestError

from sandboxes.razorpay import RunningSandbox
from sandboxes.razorpay.ids import looks_like
from tests.integration.sandboxes.conftest import Sdk, WebhookReceiver, fixture, paid_order


async def test_partial_then_full_refund(rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    _, payment = await paid_order(rzp, sandbox, amount=10000)
    first = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 4000, "notes": {"why": "goodwill"}})
    assert set(first) == set(fixture("docs_api_refunds_create-normal__success.json"))
    assert looks_like("rfnd", first["id"])
    assert (first["amount"], first["payment_id"], first["speed_requested"]) == (4000, payment["id"], "normal")
    assert first["status"] in ("pending", "processed")
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert (fetched["amount_refunded"], fetched["refund_status"]) == (4000, "partial")

    with pytest.raises(BadRequestError, match="The refund amount provided is greater than amount captured"):
        await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 6001})
    rest = await rzp.call(rzp.client.refund.create, {"payment_id": payment["id"], "receipt": "cn-2"})
    assert (rest["amount"], rest["receipt"]) == (6000, "cn-2")
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert (fetched["amount_refunded"], fetched["refund_status"], fetched["status"]) == (10000, "full", "refunded")
    with pytest.raises(BadRequestError, match="fully refunded"):
        await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 100})

    await receiver.wait_for(lambda got: len([r for r in got if r.event == "refund.processed"]) == 2)
    processed = await rzp.call(rzp.client.refund.fetch, first["id"])
    assert set(processed) == set(fixture("docs_api_refunds_fetch-with-id__success.json"))
    assert processed["status"] == "processed"
    listed = await rzp.call(rzp.client.payment.fetch_multiple_refund, payment["id"])
    assert [item["id"] for item in listed["items"]] == [rest["id"], first["id"]]
    everything = await rzp.call(rzp.client.refund.all, {"count": 1})
    assert [item["id"] for item in everything["items"]] == [rest["id"]]


async def test_same_idempotency_key_answers_the_same_refund(rzp: Sdk, sandbox: RunningSandbox) -> None:
    _, payment = await paid_order(rzp, sandbox, amount=10000)
    headers = {"headers": {"X-Refund-Idempotency": "refund-for-credit-note-17"}}
    first = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 3000}, **headers)
    again = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 3000}, **headers)
    assert again["id"] == first["id"]
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert fetched["amount_refunded"] == 3000


async def test_refund_needs_a_captured_payment_and_a_valid_amount(rzp: Sdk, sandbox: RunningSandbox) -> None:
    _, authorized = await paid_order(rzp, sandbox, capture="manual")
    with pytest.raises(BadRequestError, match="captured"):
        await rzp.call(rzp.client.payment.refund, authorized["id"], {"amount": 100})
    _, payment = await paid_order(rzp, sandbox)
    with pytest.raises(BadRequestError, match="The amount must be atleast INR 1.00"):
        await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 50})
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        await rzp.call(rzp.client.refund.fetch, "rfnd_DoesNotExist001")


async def test_failed_refund_gives_the_amount_back(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    _, payment = await paid_order(rzp, sandbox, amount=10000)
    await sandbox.control.fail_next_refunds(1)
    refund = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 10000})
    await receiver.wait_for_events("refund.failed")
    assert (await rzp.call(rzp.client.refund.fetch, refund["id"]))["status"] == "failed"
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert (fetched["amount_refunded"], fetched["refund_status"], fetched["status"]) == (0, None, "captured")
    again = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 10000})
    await receiver.wait_for(lambda got: any(r.event == "refund.processed" for r in got))
    assert (await rzp.call(rzp.client.refund.fetch, again["id"]))["status"] == "processed"


async def test_manual_settlement_keeps_refunds_pending_until_told(rzp: Sdk, sandbox: RunningSandbox) -> None:
    _, payment = await paid_order(rzp, sandbox, amount=10000)
    await sandbox.control.set_refund_settlement("manual")
    one = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 1000})
    two = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 2000, "speed": "optimum"})
    assert (await rzp.call(rzp.client.refund.fetch, one["id"]))["status"] == "pending"
    await sandbox.control.fail_refund(two["id"])
    assert (await sandbox.control.settle_refund(one["id"]))["status"] == "processed"
    assert (await sandbox.control.settle_refund(two["id"]))["status"] == "failed"
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert fetched["amount_refunded"] == 1000
