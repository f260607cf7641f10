"""Payments: automatic and manual capture, failures, method-specific bodies, lists."""

from __future__ import annotations

import pytest
from razorpay.errors import BadRequestError

from sandboxes.razorpay import RunningSandbox
from sandboxes.razorpay.control import SandboxControlError
from sandboxes.razorpay.ids import looks_like
from tests.integration.sandboxes.conftest import Sdk, WebhookReceiver, fixture, paid_order


@pytest.mark.parametrize(
    ("pay", "sample"),
    [
        ({"method": "card", "card_number": "4111 1111 1111 1111"}, "docs_api_payments_fetch-with-id__card.json"),
        ({"method": "netbanking", "bank": "ICIC"}, "docs_api_payments_fetch-with-id__netbanking.json"),
        ({"method": "wallet", "wallet": "airtelmoney"}, "docs_api_payments_fetch-with-id__wallet.json"),
    ],
)
async def test_captured_payment_has_the_keys_of_razorpays_sample(
    rzp: Sdk, sandbox: RunningSandbox, pay: dict, sample: str
) -> None:
    order, _ = await paid_order(rzp, sandbox, **pay)
    [payment] = (await rzp.call(rzp.client.order.payments, order["id"]))["items"]
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert set(fetched) == set(fixture(sample))
    assert looks_like("pay", fetched["id"])
    assert (fetched["status"], fetched["captured"], fetched["amount"], fetched["order_id"]) == (
        "captured", True, 50000, order["id"]
    )
    assert fetched["fee"] > fetched["tax"] > 0
    order = await rzp.call(rzp.client.order.fetch, order["id"])
    assert (order["status"], order["amount_paid"], order["amount_due"], order["attempts"]) == ("paid", 50000, 0, 1)


async def test_upi_payment_carries_the_vpa_and_the_orders_notes(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(
        rzp.client.order.create, {"amount": 2500, "currency": "INR", "notes": {"invoice_id": "inv_1"}}
    )
    payment = await sandbox.control.pay_order(order["id"], method="upi", vpa="gaurav.kumar@upi")
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert fetched["method"] == "upi" and fetched["vpa"] == "gaurav.kumar@upi"
    assert fetched["upi"]["vpa"] == "gaurav.kumar@upi"
    assert fetched["notes"] == {"invoice_id": "inv_1"}
    assert fetched["invoice_id"] is None and fetched["international"] is False


async def test_manual_capture_waits_for_the_capture_call(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    order, payment = await paid_order(rzp, sandbox, method="card", capture="manual")
    assert (payment["status"], payment["captured"]) == ("authorized", False)
    assert (await rzp.call(rzp.client.order.fetch, order["id"]))["status"] == "attempted"

    with pytest.raises(BadRequestError, match="Capture amount must be equal to the amount authorized"):
        await rzp.call(rzp.client.payment.capture, payment["id"], 100, {"currency": "INR"})
    with pytest.raises(BadRequestError, match="Currency should be same"):
        await rzp.call(rzp.client.payment.capture, payment["id"], 50000, {"currency": "USD"})
    captured = await rzp.call(rzp.client.payment.capture, payment["id"], 50000, {"currency": "INR"})
    assert set(captured) == set(fixture("docs_api_payments_fetch-with-id__card.json"))
    assert (captured["status"], captured["captured"]) == ("captured", True)
    assert (await rzp.call(rzp.client.order.fetch, order["id"]))["status"] == "paid"
    with pytest.raises(BadRequestError, match="This payment has already been captured"):
        await rzp.call(rzp.client.payment.capture, payment["id"], 50000, {"currency": "INR"})
    await receiver.wait_for_events("payment.authorized", "payment.captured", "order.paid")


async def test_order_with_payment_capture_off_leaves_payments_authorized(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 700, "currency": "INR", "payment_capture": 0})
    payment = await sandbox.control.pay_order(order["id"])
    assert payment["status"] == "authorized"
    listed = await rzp.call(rzp.client.order.all, {"authorized": 1})
    assert [item["id"] for item in listed["items"]] == [order["id"]]


async def test_failed_payment_marks_the_order_attempted(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 1200, "currency": "INR"})
    failed = await sandbox.control.fail_order(order["id"], error_reason="payment_failed")
    assert failed["status"] == "failed"
    assert failed["error_code"] == "BAD_REQUEST_ERROR"
    assert failed["error_reason"] == "payment_failed"
    assert all(failed[key] for key in ("error_description", "error_source", "error_step"))
    order = await rzp.call(rzp.client.order.fetch, order["id"])
    assert (order["status"], order["attempts"], order["amount_paid"]) == ("attempted", 1, 0)
    with pytest.raises(BadRequestError, match="Only payments which have been authorized"):
        await rzp.call(rzp.client.payment.capture, failed["id"], 1200)

    declined = await sandbox.control.pay_order(order["id"], method="upi", vpa="failure@razorpay")
    assert declined["status"] == "failed"
    retried = await sandbox.control.pay_order(order["id"], method="card")
    assert retried["status"] == "captured"
    payments = await rzp.call(rzp.client.order.payments, order["id"])
    assert [item["status"] for item in payments["items"]] == ["captured", "failed", "failed"]


async def test_payments_list_pages_newest_first(rzp: Sdk, sandbox: RunningSandbox) -> None:
    ids = [(await paid_order(rzp, sandbox, amount=100 + i))[1]["id"] for i in range(3)]
    listed = await rzp.call(rzp.client.payment.all, {"count": 2})
    assert [item["id"] for item in listed["items"]] == [ids[2], ids[1]]
    assert listed["entity"] == "collection"
    later = await rzp.call(rzp.client.payment.all, {"from": listed["items"][0]["created_at"] + 1})
    assert later["items"] == []
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        await rzp.call(rzp.client.payment.fetch, "pay_DoesNotExist0001")


async def test_partial_payments_fill_the_order(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR", "partial_payment": True})
    await sandbox.control.pay_order(order["id"], amount=3000)
    half = await rzp.call(rzp.client.order.fetch, order["id"])
    assert (half["status"], half["amount_paid"], half["amount_due"]) == ("attempted", 3000, 2000)
    await sandbox.control.pay_order(order["id"])
    full = await rzp.call(rzp.client.order.fetch, order["id"])
    assert (full["status"], full["amount_paid"], full["amount_due"], full["attempts"]) == ("paid", 5000, 0, 2)

    whole_only = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    with pytest.raises(SandboxControlError):
        await sandbox.control.pay_order(whole_only["id"], amount=3000)
