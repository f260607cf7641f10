"""Pay as real integrations pay, in a browser: payments WITHOUT a hosted page per order (real Razorpay has none),
so the invoice's page runs Razorpay's Standard Checkout (Checkout.js, served by the Razorpay sandbox) or, for an
organisation on Stripe, Stripe.js (served by the local Stripe) with the PaymentIntent's client secret. Both
providers' signed webhooks reach the gateway, as in production.

- Razorpay: Pay opens Checkout over the invoice; a declined attempt is said on the page while Checkout stays open;
  closed, the page offers Pay again; paid by UPI, the handler's three fields go to the verify route and the
  invoice is watched until **paid**.
- Stripe: the card Element on the invoice's page; a declined card is said; a good one is confirmed by
  ``confirmCardPayment``, the page goes back to the invoice with Stripe's return parameters, and Stripe's
  ``payment_intent.succeeded`` webhook makes it **paid**.
- Auto-debit: an owner sets up a UPI mandate; its authorisation opens Razorpay's Checkout on the auto-debit page
  (``recurring: "1"``, the mandate's customer and authorisation order); closed, the page offers it again;
  authorised, the handler brings the owner back to the page, which watches until Razorpay's ``token.confirmed``
  (through the gateway's webhook route) has made the mandate **active**.

Each paying (and authorising) page passes axe-core with no serious or critical violation, paints first within a
second, and is photographed (``<basetemp>/dashboard-artefacts/``)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator

import pytest

from billing_runtime.service import Runtime
from sandboxes.razorpay import RunningSandbox, running_sandbox
from sandboxes.stripe import RunningLocalStripe, running_local_stripe
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import running_service
from tests.integration.dashboard.test_dashboard import _checked, _customer, _sign_in
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN

STRIPE_WEBHOOK_SECRET = "whsec_dashboard_paying_0123456789"
DECLINED_CARD = "4000000000000341"
GOOD_CARD = "4242424242424242"


# This module's own providers, payments and gateway (in place of the conftest's, whose payments has the hosted page).
@pytest.fixture(scope="module")
async def razorpay() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(webhook_retry_initial_seconds=0.2, webhook_retry_max_seconds=1.0,
                               webhook_max_attempts=20) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
async def local_stripe() -> AsyncIterator[RunningLocalStripe]:
    async with running_local_stripe(webhook_delay_seconds=0.05, webhook_retry_initial_seconds=0.2,
                                    webhook_retry_max_seconds=1.0, webhook_max_attempts=20,
                                    webhook_secret=STRIPE_WEBHOOK_SECRET) as local:
        yield local


@pytest.fixture(scope="module")
async def payments(database_url, nats_url, invoicing, razorpay, local_stripe) -> AsyncIterator[Runtime]:
    # No checkout_url_template: no hosted page per order, as with real Razorpay.
    async with running_service(
        PAYMENTS, database_url, nats_url, razorpay_key_id=razorpay.key_id, razorpay_key_secret=razorpay.key_secret,
        razorpay_base_url=razorpay.url, stripe_secret_key=local_stripe.secret_key,
        stripe_publishable_key=local_stripe.publishable_key, stripe_api_base=local_stripe.url,
        capture_after_seconds=1, worker_interval_seconds=0.1, provider_retry_base_seconds=0.2,
        daily_reconciliation=False, invoice_events_durable=f"payments-dashpay-{secrets.token_hex(3)}",
    ) as runtime:
        yield runtime


@pytest.fixture(scope="module")
async def dashboard_gateway(database_url, nats_url, ingest, invoicing, metering, payments, refused_address,
                            razorpay, local_stripe) -> AsyncIterator[Runtime]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0, cookie_secure=False,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=payments.address, notification_address=refused_address,
        razorpay_webhook_secret=razorpay.webhook_secret, stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        # Pay's scripts from the local stand-ins: the production page code runs against them.
        razorpay_checkout_js_url=f"{razorpay.url}/v1/checkout.js",
        stripe_js_url=f"{local_stripe.url}/js.stripe.com/v3/",
    ) as runtime:
        await razorpay.control.set_webhook(runtime.http_address + "/api/v1/webhooks/razorpay")
        await local_stripe.control.set_webhook(runtime.http_address + "/api/v1/webhooks/stripe",
                                               STRIPE_WEBHOOK_SECRET)
        yield runtime


async def _order_created(admin, invoice_id: str) -> dict:
    """Payments made the invoice's order (a Razorpay order, or Stripe's PaymentIntent) as it was issued."""
    for _ in range(300):
        answer = await admin.get(f"/api/v1/admin/invoices/{invoice_id}/payments")
        if answer.status_code == 200 and answer.json()["order"]["status"] == "created":
            return answer.json()["order"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no order for {invoice_id}: {answer.status_code} {answer.text}")


async def _paid(page) -> None:
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=invoice-state]').dataset.status === 'paid'", timeout=60_000)


def _policy(response) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in response.headers["content-security-policy"].split(";")]
    return {name: sources for name, *sources in directives}


async def test_a_member_pays_through_razorpays_checkout_js_after_a_declined_attempt(
    browser, dashboard_url, admin, invoicing, razorpay, artefacts, figures
):
    mine = await _customer(admin, invoicing)
    order = await _order_created(admin, mine["invoice_id"])
    assert order["provider"] == "razorpay" and order["provider_order_id"].startswith("order_")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, dashboard_url, mine["email"])
        await page.goto(f"{dashboard_url}/app/invoices/{mine['invoice_id']}")
        async with page.expect_response(re.compile(r".*/pay$")) as paying:
            await page.get_by_test_id("pay").click()
        policy = _policy(await paying.value)
        assert policy["script-src"] == ["'self'", razorpay.url] and policy["frame-src"] == [razorpay.url]
        assert policy["connect-src"] == ["'self'"]

        # Pay opened Razorpay's Checkout over the invoice, for its order and amount.
        frame = page.frame_locator("iframe.razorpay-checkout-frame")
        await frame.get_by_text("INR 1,178.82").wait_for()
        await page.screenshot(path=str(artefacts / "customer-invoice-checkout-js.png"), full_page=True)
        await frame.get_by_role("button", name="Fail the payment").click()
        error = page.get_by_test_id("paying-error")
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=paying-error]').textContent.includes('did not go through')")
        assert "Try again in the checkout" in await error.inner_text()
        await frame.get_by_role("alert").wait_for()  # Checkout stays open, saying so
        await frame.get_by_role("button", name="Close the checkout").click()
        await page.locator("iframe.razorpay-checkout-frame").wait_for(state="detached")
        assert "closed without paying" in await page.get_by_test_id("paying-status").inner_text()
        assert await page.get_by_test_id("invoice-state").get_attribute("data-status") == "issued"
        await _checked(page, "customer-invoice-paying-razorpay", artefacts, figures, phone=True)

        # Pay again: paid by UPI, the handler's answer is verified and the invoice watched until paid.
        await page.get_by_test_id("pay-now").click()
        await frame.get_by_role("button", name="Pay by UPI").click()
        await page.wait_for_url(re.compile(r".*/app/invoices/.*/checkout-return\?.*razorpay_signature=.*"))
        await _paid(page)
        await page.goto(f"{dashboard_url}/app/invoices/{mine['invoice_id']}")
        assert await page.get_by_test_id("invoice-state").get_attribute("data-status") == "paid"
        assert await page.get_by_test_id("pay").count() == 0
        for _ in range(50):  # the declined attempt arrives by Razorpay's payment.failed webhook
            rows = await page.get_by_test_id("payment-row").all_inner_texts()
            if len(rows) == 2:
                break
            await asyncio.sleep(0.2)
            await page.reload()
        assert any("captured" in row and "upi" in row for row in rows), rows
        assert any("failed" in row and "insufficient balance" in row for row in rows), rows
        await _checked(page, "customer-invoice-paid-checkout-js", artefacts, figures)
    finally:
        await context.close()
    captured = [p for p in razorpay.sandbox.store.payments.values()
                if p["order_id"] == order["provider_order_id"] and p["status"] == "captured"]
    assert len(captured) == 1 and captured[0]["amount"] == 117882


async def test_a_stripe_organisations_member_pays_with_stripe_js_and_stripes_webhook_settles_it(
    browser, dashboard_url, admin, invoicing, local_stripe, artefacts, figures
):
    mine = await _customer(admin, invoicing, provider="stripe")
    order = await _order_created(admin, mine["invoice_id"])
    assert order["provider"] == "stripe" and order["provider_order_id"].startswith("pi_")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, dashboard_url, mine["email"])
        await page.goto(f"{dashboard_url}/app/invoices/{mine['invoice_id']}")
        async with page.expect_response(re.compile(r".*/pay$")) as paying:
            await page.get_by_test_id("pay").click()
        policy = _policy(await paying.value)
        assert policy["script-src"] == ["'self'", local_stripe.url]
        assert policy["connect-src"] == ["'self'", local_stripe.url] and policy["frame-src"] == [local_stripe.url]
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=paying-status]').textContent.includes('Enter the card')")
        await _checked(page, "customer-invoice-paying-stripe", artefacts, figures, phone=True)

        async def pay_with(number: str) -> None:
            for label, value in (("Card number", number), ("Expiry month (MM)", "12"), ("Expiry year (YY)", "34"),
                                 ("Security code (CVC)", "123"), ("Postal code", "560001")):
                await page.get_by_label(label).fill(value)
            await page.get_by_test_id("pay-now").click()

        await pay_with(DECLINED_CARD)
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=paying-error]').textContent.includes('did not go through')")
        assert "declined" in (await page.get_by_test_id("paying-error").inner_text()).lower()
        assert await page.get_by_test_id("pay-now").is_enabled()

        await pay_with(GOOD_CARD)
        await page.wait_for_url(re.compile(
            rf".*/app/invoices/{mine['invoice_id']}/checkout-return\?payment_intent=pi_\w+&redirect_status=succeeded"))
        await _paid(page)  # Stripe's payment_intent.succeeded, through the gateway's webhook route
        await page.goto(f"{dashboard_url}/app/invoices/{mine['invoice_id']}")
        assert await page.get_by_test_id("invoice-state").get_attribute("data-status") == "paid"
        assert await page.get_by_test_id("pay").count() == 0
        rows = await page.get_by_test_id("payment-row").all_inner_texts()
        # One payment per PaymentIntent: captured, the earlier decline no longer said beside it.
        assert len(rows) == 1 and "captured" in rows[0] and order["provider_order_id"] in rows[0], rows
        assert "declined" not in rows[0]
        await _checked(page, "customer-invoice-paid-stripe", artefacts, figures)
    finally:
        await context.close()
    intent = await local_stripe.control.client.v1.payment_intents.retrieve_async(order["provider_order_id"])
    assert (intent.status, intent.amount) == ("succeeded", 117882)


async def test_an_owner_authorises_a_upi_mandate_through_checkout_js_and_token_confirmed_makes_it_active(
    browser, dashboard_url, admin, invoicing, razorpay, artefacts, figures
):
    mine = await _customer(admin, invoicing, role="owner")
    organisation_id = mine["organisation_id"]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, dashboard_url, mine["email"])
        await page.goto(f"{dashboard_url}/app/auto-debit")
        assert await page.get_by_test_id("mandate-state").get_attribute("data-state") == "none"
        await page.get_by_label("Pay by").select_option("upi")
        await page.get_by_label("Most one debit may take (INR)").fill("15000.00")
        async with page.expect_response(re.compile(r".*/app/auto-debit/mdt_\w+/authorise$")) as authorising:
            await page.get_by_role("button", name="Set up and authorise").click()
        answer = await authorising.value
        assert answer.status == 200  # no hosted page to go to: the authorisation opens here
        policy = _policy(answer)
        assert policy["script-src"] == ["'self'", razorpay.url] and policy["frame-src"] == [razorpay.url]
        assert policy["connect-src"] == ["'self'"]
        [made] = (await admin.get(f"/api/v1/admin/organisations/{organisation_id}/mandates")).json()["data"]
        assert (made["state"], made["checkout_url"], made["key_id"]) == ("created", "", razorpay.key_id)
        order = razorpay.sandbox.store.orders[made["authorisation_order_id"]]
        assert (made["authorisation_amount_minor"], made["authorisation_currency"]) == (order["amount"], "INR")

        # Razorpay's Checkout over the page, on the mandate's authorisation order, with recurring "1".
        frame = page.frame_locator("iframe.razorpay-checkout-frame")
        await frame.get_by_text("Authorises a upi mandate: up to INR 15,000.00 a debit.").wait_for()
        await frame.get_by_text("INR 1.00").wait_for()
        source = await page.locator("iframe.razorpay-checkout-frame").get_attribute("src")
        assert f"/checkout/{made['authorisation_order_id']}?" in source and "recurring=1" in source
        assert f"customer_id={made['customer_id']}" in source
        await page.screenshot(path=str(artefacts / "customer-auto-debit-checkout-js.png"), full_page=True)
        # Closed without authorising: the page says so and offers it again.
        await frame.get_by_role("button", name="Close the checkout").click()
        await page.locator("iframe.razorpay-checkout-frame").wait_for(state="detached")
        assert "closed before the mandate was authorised" in await page.get_by_test_id("paying-status").inner_text()
        assert await page.get_by_test_id("mandate-state").get_attribute("data-state") == "created"
        await _checked(page, "customer-auto-debit-authorising", artefacts, figures, phone=True)

        # Authorised by UPI: back on the page, which watches until Razorpay's token.confirmed has confirmed it.
        await page.get_by_test_id("authorise-now").click()
        await frame.get_by_role("button", name="Pay by UPI").click()
        await page.wait_for_url(re.compile(r".*/app/auto-debit/authorised\?.*razorpay_order_id=order_.*"))
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=mandate-state]').dataset.state === 'confirmed'",
            timeout=60_000)
        assert "active" in await page.get_by_test_id("mandate-state").inner_text()
        [mandate] = (await admin.get(f"/api/v1/admin/organisations/{organisation_id}/mandates")).json()["data"]
        assert (mandate["id"], mandate["state"], mandate["method"]) == (made["id"], "confirmed", "upi")
        confirmations = [e for e in await razorpay.control.events() if e["event"] == "token.confirmed"
                         and e["body"]["payload"]["token"]["entity"]["id"] == mandate["token_id"]]
        assert len(confirmations) == 1  # the webhook, not Checkout's answer, confirmed it
        await _checked(page, "customer-auto-debit-authorised-checkout-js", artefacts, figures)
    finally:
        await context.close()
    token = razorpay.sandbox.store.tokens[mandate["token_id"]]
    assert (token["customer_id"], token["order_id"], token["max_amount"]) == (
        made["customer_id"], made["authorisation_order_id"], 1_500_000)
