"""Recurring payments in the sandbox through the official SDK: customers, authorisation orders with a token,
token webhooks, create/recurring with its pre-debit notification, and the debit once the clock has moved."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import razorpay

from sandboxes.razorpay import RunningSandbox
from tests.integration.sandboxes.conftest import Sdk, WebhookReceiver
from tests.integration.sandboxes.test_webhooks import verifies

DAY = 86400


async def mandate(rzp: Sdk, sandbox: RunningSandbox, method: str = "upi", max_amount: int = 1_500_000,
                  **pay: Any) -> tuple[dict, dict, dict]:
    """A customer, an authorisation order for a token and its payment at Checkout: (customer, order, payment)."""
    customer = await rzp.call(rzp.client.customer.create, {"name": "Acme", "email": "ap@acme.example",
                                                           "contact": "+919000090000", "fail_existing": "0"})
    order = await rzp.call(rzp.client.order.create, {
        "amount": 0 if method == "emandate" else 100, "currency": "INR", "method": method,
        "customer_id": customer["id"], "receipt": "mandate-1",
        "token": {"max_amount": max_amount, "expire_at": int(time.time()) + 365 * DAY, "frequency": "as_presented"},
    })
    payment = await sandbox.control.pay_order(order["id"], method=method, **pay)
    return customer, order, payment


async def test_a_mandate_is_confirmed_and_debited_after_the_notice_period(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    customer, _, payment = await mandate(rzp, sandbox, "upi")
    assert payment["status"] == "captured" and payment["token_id"].startswith("token_")
    again = await rzp.call(rzp.client.customer.create, {"name": "Acme", "email": "ap@acme.example",
                                                        "contact": "+919000090000", "fail_existing": "0"})
    assert again["id"] == customer["id"]
    [confirmed] = (await receiver.wait_for_events("token.confirmed"), receiver.of("token.confirmed"))[1]
    assert verifies(confirmed, sandbox.webhook_secret)
    token = confirmed.json["payload"]["token"]["entity"]
    assert (token["recurring_details"]["status"], token["max_amount"], token["frequency"], token["method"]) == (
        "confirmed", 1_500_000, "as_presented", "upi")
    tokens = await rzp.call(rzp.client.token.all, customer["id"])
    assert [t["id"] for t in tokens["items"]] == [token["id"]]

    order = await rzp.call(rzp.client.order.create, {"amount": 250_000, "currency": "INR", "receipt": "INV-1#AD"})
    answer = await rzp.call(rzp.client.payment.createRecurring, {
        "email": "ap@acme.example", "contact": "+919000090000", "amount": 250_000, "currency": "INR",
        "order_id": order["id"], "customer_id": customer["id"], "token": token["id"], "recurring": "1",
        "notes": {"invoice_id": "inv_1"},
    })
    debit = await rzp.call(rzp.client.payment.fetch, answer["razorpay_payment_id"])
    assert (debit["status"], debit["order_id"], debit["notes"]["invoice_id"]) == ("created", order["id"], "inv_1")
    [notice] = (await receiver.wait_for_events("notification.delivered"), receiver.of("notification.delivered"))[1]
    assert notice.json["payload"]["notification"]["entity"]["payment_id"] == debit["id"]

    # Nothing happens before the notice period (25 hours for UPI) has passed on the sandbox clock.
    assert (await sandbox.control.advance_clock(24 * 3600))["debited"] == 0
    assert (await sandbox.control.advance_clock(3600))["debited"] == 1
    await receiver.wait_for_events("payment.captured", "order.paid")
    debit = await rzp.call(rzp.client.payment.fetch, debit["id"])
    assert (debit["status"], debit["token_id"], debit["recurring"]) == ("captured", token["id"], True)
    with pytest.raises(razorpay.errors.BadRequestError):  # the order is paid: no second debit on it
        await rzp.call(rzp.client.payment.createRecurring, {
            "amount": 250_000, "currency": "INR", "order_id": order["id"], "customer_id": customer["id"],
            "token": token["id"], "recurring": "1"})


async def test_paused_cancelled_and_rejected_tokens(rzp: Sdk, sandbox: RunningSandbox,
                                                    receiver: WebhookReceiver) -> None:
    customer, _, payment = await mandate(rzp, sandbox, "card", card_number="4111111111111111")
    token_id = payment["token_id"]
    await rzp.call(rzp.client.token.post_url, f"/v1/customers/{customer['id']}/tokens/{token_id}/pause", {})
    order = await rzp.call(rzp.client.order.create, {"amount": 10_000, "currency": "INR"})
    with pytest.raises(razorpay.errors.BadRequestError, match="paused"):
        await rzp.call(rzp.client.payment.createRecurring, {
            "amount": 10_000, "currency": "INR", "order_id": order["id"], "customer_id": customer["id"],
            "token": token_id, "recurring": "1"})
    assert (await rzp.call(rzp.client.token.delete, customer["id"], token_id)) == {"deleted": True}
    await receiver.wait_for_events("token.confirmed", "token.paused", "token.cancelled")
    with pytest.raises(Exception, match="cancelled"):  # forward only: a cancelled token is never confirmed again
        await sandbox.control.move_token(token_id, "confirmed")

    _, _, rejected = await mandate(rzp, sandbox, "emandate", max_amount=100_000_000, mandate="reject")
    await receiver.wait_for_events("token.rejected")
    assert sandbox.sandbox.store.tokens[rejected["token_id"]]["recurring_details"]["status"] == "rejected"


async def test_a_debit_can_fail_and_a_token_cancelled_before_the_debit_fails_it(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    customer, _, payment = await mandate(rzp, sandbox, "emandate", max_amount=100_000_000)
    token_id = payment["token_id"]
    await sandbox.control.fail_next_debits(1)
    ids = []
    for receipt in ("A", "B"):
        order = await rzp.call(rzp.client.order.create, {"amount": 5_000_000, "currency": "INR", "receipt": receipt})
        answer = await rzp.call(rzp.client.payment.createRecurring, {
            "amount": 5_000_000, "currency": "INR", "order_id": order["id"], "customer_id": customer["id"],
            "token": token_id, "recurring": "1"})
        ids.append(answer["razorpay_payment_id"])
        if receipt == "B":
            await sandbox.control.move_token(token_id, "cancelled")
        assert (await sandbox.control.advance_clock(DAY))["debited"] == 1
    await receiver.wait_for(lambda got: len([g for g in got if g.event == "payment.failed"]) == 2)
    reasons = [sandbox.sandbox.store.payments[i]["error_reason"] for i in ids]
    assert reasons == ["payment_failed", "mandate_not_active"]


async def test_checkout_opens_an_authorisation_order_only_with_recurring_1_and_its_customer_and_confirms_it(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    customer = await rzp.call(rzp.client.customer.create, {"name": "Acme", "email": "ap@acme.example"})
    order = await rzp.call(rzp.client.order.create, {
        "amount": 100, "currency": "INR", "method": "card", "customer_id": customer["id"],
        "token": {"max_amount": 1_500_000, "expire_at": int(time.time()) + DAY, "frequency": "as_presented"}})
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        assert (await http.get(f"/checkout/{order['id']}")).status_code == 400
        # Only for the order's own customer, as Razorpay's Checkout.
        other = await http.get(f"/checkout/{order['id']}", params={"recurring": "1", "customer_id": "cust_Other"})
        assert other.status_code == 400 and "customer_id" in other.text
        page = await http.get(f"/checkout/{order['id']}", params={"recurring": "1", "customer_id": customer["id"]})
        assert page.status_code == 200 and "1.00" in page.text
        assert "Authorises a card mandate: up to INR 15,000.00 a debit." in page.text
        paid = await http.post(f"/checkout/{order['id']}/pay",
                               data={"method": "upi", "card_number": "4111111111111111"})
        assert paid.status_code == 200
    [token] = (await rzp.call(rzp.client.token.all, customer["id"]))["items"]
    assert (token["method"], token["recurring_details"]["status"]) == ("card", "confirmed")  # the order's method
    await receiver.wait_for_events("token.confirmed")
    with pytest.raises(razorpay.errors.BadRequestError, match="token.max_amount"):
        await rzp.call(rzp.client.order.create, {
            "amount": 100, "currency": "INR", "method": "upi", "customer_id": customer["id"],
            "token": {"max_amount": 10_000_001, "expire_at": int(time.time()) + DAY}})
