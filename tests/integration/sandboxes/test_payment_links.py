"""Payment links through the SDK: create, fetch, list, cancel, unique references, paying through the control API."""

from __future__ import annotations

import pytest
from razorpay.errors import BadRequestError

from sandboxes.razorpay import RunningSandbox
from sandboxes.razorpay.ids import looks_like
from tests.integration.sandboxes.conftest import Sdk, WebhookReceiver

LINK = {
    "amount": 100000,
    "currency": "INR",
    "description": "Invoice INV-2025-0001",
    "reference_id": "INV-2025-0001",
    "customer": {"name": "Gaurav Kumar", "email": "gaurav.kumar@example.com", "contact": "+919000090000"},
    "notify": {"sms": False, "email": True},
    "notes": {"invoice_id": "inv_123"},
}


async def test_create_fetch_list_and_cancel(rzp: Sdk) -> None:
    link = await rzp.call(rzp.client.payment_link.create, dict(LINK))
    assert looks_like("plink", link["id"])
    assert (link["status"], link["amount"], link["amount_paid"], link["payments"]) == ("created", 100000, 0, None)
    assert link["customer"]["email"] == "gaurav.kumar@example.com"
    assert await rzp.call(rzp.client.payment_link.fetch, link["id"]) == link
    with pytest.raises(BadRequestError, match="reference_id"):
        await rzp.call(rzp.client.payment_link.create, dict(LINK))

    listed = await rzp.call(rzp.client.payment_link.all)
    assert [item["id"] for item in listed["payment_links"]] == [link["id"]]
    cancelled = await rzp.call(rzp.client.payment_link.cancel, link["id"])
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] > 0
    with pytest.raises(BadRequestError):
        await rzp.call(rzp.client.payment_link.cancel, link["id"])
    # The reference is free again once its link can no longer be paid.
    await rzp.call(rzp.client.payment_link.create, dict(LINK))


async def test_link_validation(rzp: Sdk) -> None:
    with pytest.raises(BadRequestError, match="The amount must be atleast INR 1.00"):
        await rzp.call(rzp.client.payment_link.create, {**LINK, "amount": 10})
    with pytest.raises(BadRequestError, match="reference_id may not be greater than 40"):
        await rzp.call(rzp.client.payment_link.create, {**LINK, "reference_id": "x" * 41})
    with pytest.raises(BadRequestError, match="callback method"):
        await rzp.call(rzp.client.payment_link.create, {**LINK, "callback_url": "https://m.example"})


async def test_paying_a_link_pays_its_order_and_sends_payment_link_paid(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    link = await rzp.call(rzp.client.payment_link.create, dict(LINK))
    payment = await sandbox.control.pay_payment_link(link["id"], method="upi")
    assert payment["status"] == "captured" and payment["order_id"] == link["order_id"]
    assert payment["email"] == "gaurav.kumar@example.com"
    paid = await rzp.call(rzp.client.payment_link.fetch, link["id"])
    assert (paid["status"], paid["amount_paid"]) == ("paid", 100000)
    assert [item["payment_id"] for item in paid["payments"]] == [payment["id"]]
    await receiver.wait_for_events("payment_link.paid")
    [event] = receiver.of("payment_link.paid")
    assert event.json["contains"] == ["payment_link", "payment", "order"]
    assert event.json["payload"]["payment_link"]["entity"]["status"] == "paid"
    with pytest.raises(BadRequestError):
        await rzp.call(rzp.client.payment_link.cancel, link["id"])
