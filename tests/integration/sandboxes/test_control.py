"""The control API's reconciliation levers: tampering, deleting, payments nobody ordered, and reset."""

from __future__ import annotations

import pytest
from razorpay.errors import BadRequestError

from sandboxes.razorpay import RunningSandbox
from sandboxes.razorpay.control import SandboxControlError
from tests.integration.sandboxes.conftest import Sdk, WebhookReceiver, paid_order


async def test_tampered_payment_is_what_the_api_answers(rzp: Sdk, sandbox: RunningSandbox) -> None:
    _, payment = await paid_order(rzp, sandbox, amount=10000)
    await sandbox.control.tamper_payment(payment["id"], amount=9000, currency="USD", status="failed")
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"])
    assert (fetched["amount"], fetched["currency"], fetched["status"]) == (9000, "USD", "failed")
    assert fetched["captured"] is False  # in step with the status


async def test_deleted_objects_no_longer_exist(rzp: Sdk, sandbox: RunningSandbox) -> None:
    _, payment = await paid_order(rzp, sandbox, amount=10000)
    refund = await rzp.call(rzp.client.payment.refund, payment["id"], {"amount": 1000})
    await sandbox.control.delete("refunds", refund["id"])
    await sandbox.control.delete("payments", payment["id"])
    for fetch, object_id in ((rzp.client.refund.fetch, refund["id"]), (rzp.client.payment.fetch, payment["id"])):
        with pytest.raises(BadRequestError, match="The id provided does not exist"):
            await rzp.call(fetch, object_id)
    with pytest.raises(SandboxControlError) as refused:
        await sandbox.control.delete("payments", payment["id"])
    assert refused.value.body["error"]["description"] == "The id provided does not exist"


async def test_orphan_payment_shows_up_in_lists_only(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    orphan = await sandbox.control.create_orphan_payment(77700, method="card", notify=True)
    assert orphan["status"] == "captured" and orphan["order_id"].startswith("order_")
    listed = await rzp.call(rzp.client.payment.all)
    assert [item["id"] for item in listed["items"]] == [orphan["id"]]
    await receiver.wait_for_events("payment.captured")
    loose = await sandbox.control.create_orphan_payment(500, status="authorized", with_order=False)
    assert loose["order_id"] is None and loose["status"] == "authorized"


async def test_reset_forgets_everything(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order, _ = await paid_order(rzp, sandbox)
    await sandbox.control.inject_fault("/v1/refunds", times=5)
    await sandbox.control.reset()
    health = await sandbox.control.health()
    assert health["counts"] == {"orders": 0, "payments": 0, "refunds": 0, "payment_links": 0, "customers": 0,
                                "tokens": 0, "events": 0}
    assert await sandbox.control.deliveries() == []
    with pytest.raises(BadRequestError):
        await rzp.call(rzp.client.order.fetch, order["id"])
    assert (await rzp.call(rzp.client.refund.all))["count"] == 0  # the fault went with the reset


async def test_control_refuses_bad_requests_in_razorpays_shape(sandbox: RunningSandbox) -> None:
    with pytest.raises(SandboxControlError) as refused:
        await sandbox.control.pay_order("order_DoesNotExist01")
    assert refused.value.status == 400
    assert refused.value.body["error"]["code"] == "BAD_REQUEST_ERROR"
