"""The sandbox's Checkout.js in a real browser (Debian's Chromium through Playwright), on a merchant page of
another origin: ``new Razorpay(options).open()`` opens the sandbox's checkout for the order in a modal frame; a
decline is emitted as ``payment.failed`` with Razorpay's error object and the modal stays open; closing it calls
``modal.ondismiss``; paying calls the ``handler`` with the three fields, signed so the official SDK verifies
them. A mandate's authorisation order opens with ``recurring: "1"`` and its ``customer_id`` (and only so), and
paying it registers the mandate (token.confirmed). And the script itself: served at /v1/checkout.js like
Razorpay's, untouched by the API's armed faults."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from razorpay.errors import SignatureVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sandboxes.razorpay import RunningSandbox
from tests.integration.dashboard.conftest import browser  # noqa: F401 - the module's Chromium
from tests.integration.sandboxes.conftest import Sdk, WebhookReceiver, serving

MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Merchant</title>
<script src="{sandbox}/v1/checkout.js"></script></head>
<body><h1>Merchant</h1><button id="pay">Pay</button>
<script>
  window.results = {{handler: null, failed: [], dismissed: 0}};
  window.options = {options};
  window.options.handler = function (response) {{ window.results.handler = response; }};
  window.options.modal = {{ondismiss: function () {{ window.results.dismissed += 1; }}}};
  window.rzp = new Razorpay(window.options);
  window.rzp.on("payment.failed", function (response) {{ window.results.failed.push(response.error); }});
  document.getElementById("pay").addEventListener("click", function () {{ window.rzp.open(); }});
</script></body></html>"""


async def _merchant(sandbox: RunningSandbox, options: dict):
    async def page(_request: Request) -> HTMLResponse:
        return HTMLResponse(MERCHANT_PAGE.format(sandbox=sandbox.url, options=json.dumps(options)))

    return serving(Starlette(routes=[Route("/", page)]))


async def test_checkout_js_is_served_like_razorpays_and_not_faulted_with_the_api(sandbox: RunningSandbox):
    await sandbox.control.inject_fault("/v1/", status=503, times=5)
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        script = await http.get("/v1/checkout.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "window.Razorpay = Razorpay" in script.text
    await sandbox.control.clear_faults()


async def test_the_frame_refuses_another_accounts_key_and_a_missing_origin(rzp: Sdk, sandbox: RunningSandbox):
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        wrong_key = await http.get(f"/checkout/{order['id']}", params={
            "embedded": "1", "origin": "http://127.0.0.1:1", "key": "rzp_test_SomeoneElse01"})
        no_origin = await http.get(f"/checkout/{order['id']}", params={"embedded": "1", "key": sandbox.key_id})
        opened = await http.get(f"/checkout/{order['id']}", params={
            "embedded": "1", "origin": "http://127.0.0.1:1", "key": sandbox.key_id, "name": "Acme Billing",
            "prefill[email]": "meera@acme.example"})
    assert wrong_key.status_code == 400 and "Authentication failed" in wrong_key.text
    assert no_origin.status_code == 400 and "origin" in no_origin.text and "postMessage" not in no_origin.text
    assert opened.status_code == 200 and "Acme Billing" in opened.text and "INR 50.00" in opened.text
    assert 'name="origin" value="http://127.0.0.1:1"' in opened.text
    assert 'name="email" value="meera@acme.example"' in opened.text and 'aria-label="Close the checkout"' in opened.text


async def test_a_merchant_page_pays_through_checkout_js_after_a_decline(
    rzp: Sdk, sandbox: RunningSandbox, browser  # noqa: F811
):
    order = await rzp.call(rzp.client.order.create, {"amount": 118000, "currency": "INR", "receipt": "INV-7"})
    options = {"key": sandbox.key_id, "order_id": order["id"], "amount": 118000, "currency": "INR",
               "name": "Acme Billing", "description": "Invoice INV-7",
               "prefill": {"name": "Meera", "email": "meera@acme.example", "contact": "+919000090001"}}
    async with await _merchant(sandbox, options) as merchant_url:
        context = await browser.new_context()
        page = await context.new_page()
        try:
            await page.goto(merchant_url)
            # Razorpay's constructor refuses options without a key, as the real script does.
            thrown = await page.evaluate(
                "() => { try { new Razorpay({}); return ''; } catch (e) { return e.message; } }")
            assert thrown == "No key passed"

            await page.click("#pay")
            frame = page.frame_locator("iframe.razorpay-checkout-frame")
            await frame.get_by_text("INR 1,180.00").wait_for()
            assert await page.locator("iframe.razorpay-checkout-frame").get_attribute("title") == "Razorpay Checkout"
            await frame.get_by_role("button", name="Fail the payment").click()
            await page.wait_for_function("() => window.results.failed.length === 1")
            [error] = await page.evaluate("() => window.results.failed")
            assert error["code"] == "BAD_REQUEST_ERROR" and error["description"]
            assert error["metadata"]["order_id"] == order["id"] and error["metadata"]["payment_id"].startswith("pay_")
            # The modal stays open, saying so, for another attempt; closing it is a dismissal.
            await frame.get_by_role("alert").wait_for()
            await frame.get_by_role("button", name="Close the checkout").click()
            await page.wait_for_function("() => window.results.dismissed === 1")
            assert await page.locator("iframe.razorpay-checkout-frame").count() == 0
            assert await page.evaluate("() => window.results.handler") is None

            await page.click("#pay")
            await frame.get_by_role("button", name="Pay by UPI").click()
            await page.wait_for_function("() => window.results.handler !== null")
            fields = await page.evaluate("() => window.results.handler")
            assert await page.locator("iframe.razorpay-checkout-frame").count() == 0  # closed after paying
            assert await page.evaluate("() => window.results.dismissed") == 1  # paying is not a dismissal
        finally:
            await context.close()
    assert set(fields) == {"razorpay_payment_id", "razorpay_order_id", "razorpay_signature"}
    assert fields["razorpay_order_id"] == order["id"]
    assert rzp.client.utility.verify_payment_signature(fields) is True
    with pytest.raises(SignatureVerificationError):
        rzp.client.utility.verify_payment_signature({**fields, "razorpay_order_id": "order_Another000001"})
    payment = await rzp.call(rzp.client.payment.fetch, fields["razorpay_payment_id"])
    assert (payment["status"], payment["method"], payment["email"]) == ("captured", "upi", "meera@acme.example")
    assert payment["contact"] == "+919000090001"


async def test_a_merchant_page_authorises_a_mandate_through_checkout_js_with_recurring_1(
    rzp: Sdk, sandbox: RunningSandbox, receiver: WebhookReceiver, browser  # noqa: F811
):
    customer = await rzp.call(rzp.client.customer.create, {"name": "Acme", "email": "ap@acme.example",
                                                           "contact": "+919000090000", "fail_existing": "0"})
    order = await rzp.call(rzp.client.order.create, {
        "amount": 100, "currency": "INR", "method": "upi", "customer_id": customer["id"], "receipt": "mdt_1",
        "token": {"max_amount": 1_500_000, "expire_at": int(time.time()) + 86400, "frequency": "as_presented"}})
    # As Razorpay documents Checkout for recurring payments: the order, its customer and recurring "1".
    options = {"key": sandbox.key_id, "order_id": order["id"], "customer_id": customer["id"], "recurring": "1",
               "amount": 100, "currency": "INR", "description": "Auto-debit",
               "prefill": {"name": "Acme", "email": "ap@acme.example", "contact": "+919000090000"}}
    async with await _merchant(sandbox, {**options, "recurring": None}) as without, \
            await _merchant(sandbox, options) as merchant_url:
        context = await browser.new_context()
        page = await context.new_page()
        try:
            # Without recurring "1" the frame refuses the authorisation order, and can be closed.
            await page.goto(without)
            await page.click("#pay")
            frame = page.frame_locator("iframe.razorpay-checkout-frame")
            await frame.get_by_text("open Checkout with recurring").wait_for()
            await frame.get_by_role("button", name="Close the checkout").click()
            await page.wait_for_function("() => window.results.dismissed === 1")

            await page.goto(merchant_url)
            await page.click("#pay")
            await frame.get_by_text("Authorises a upi mandate: up to INR 15,000.00 a debit.").wait_for()
            await frame.get_by_text("INR 1.00").wait_for()
            await frame.get_by_role("button", name="Pay by UPI").click()
            await page.wait_for_function("() => window.results.handler !== null")
            fields = await page.evaluate("() => window.results.handler")
        finally:
            await context.close()
    assert fields["razorpay_order_id"] == order["id"]
    assert rzp.client.utility.verify_payment_signature(fields) is True
    [token] = (await rzp.call(rzp.client.token.all, customer["id"]))["items"]
    assert (token["method"], token["recurring_details"]["status"], token["max_amount"]) == ("upi", "confirmed",
                                                                                            1_500_000)
    [confirmed] = (await receiver.wait_for_events("token.confirmed"), receiver.of("token.confirmed"))[1]
    assert confirmed.json["payload"]["token"]["entity"]["order_id"] == order["id"]
