"""The local Stripe as a payer's browser meets it: Stripe.js at /js.stripe.com/v3/ (localstripe's, with
``confirmCardPayment`` doing what Stripe.js does) and ``POST /v1/payment_intents/{id}/confirm`` taking the card with
the account's publishable key and the intent's client secret. In a real browser (Debian's Chromium) a merchant
page of another origin mounts the card Element (its inputs labelled), confirms an intent, is told of a declined
card and confirms again with another, and passes 3D Secure; each success is announced by a signed
``payment_intent.succeeded``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe
from aiohttp import web
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sandboxes.stripe import RunningLocalStripe, running_local_stripe
from tests.integration.dashboard.conftest import browser  # noqa: F401 - the module's Chromium
from tests.integration.sandboxes.conftest import serving

SECRET = "whsec_test_local_js_0123456789"
DECLINED = "4000000000000341"  # attaches, then the charge is declined
THREE_D_SECURE = "4000002500003155"

MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Merchant</title>
<script src="{local}/js.stripe.com/v3/"></script></head>
<body><form id="pay"><div id="card"></div><button>Pay</button></form>
<script>
  window.results = [];
  const stripe = Stripe({key});
  const card = stripe.elements().create("card");
  card.mount("#card");
  window.confirmWith = async function (secret) {{
    const method = {{card: card, billing_details: {{name: "Meera", email: "m@acme.example"}}}};
    const result = await stripe.confirmCardPayment(secret, {{payment_method: method}});
    window.results.push(result);
    return result;
  }};
</script></body></html>"""


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("Stripe-Signature", ""), await request.read()))
        return web.Response()

    def succeeded(self, intent: str) -> list[tuple[str, bytes]]:
        return [(signature, body) for signature, body in self.received
                if json.loads(body)["type"] == "payment_intent.succeeded"
                and json.loads(body)["data"]["object"]["id"] == intent]


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield found, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


@pytest.fixture(scope="module")
async def local(receiver) -> AsyncIterator[RunningLocalStripe]:
    async with running_local_stripe(webhook_url=receiver[1], webhook_secret=SECRET, webhook_delay_seconds=0.05,
                                    webhook_retry_initial_seconds=0.1, webhook_retry_max_seconds=0.2) as running:
        yield running


async def _intent(local: RunningLocalStripe, amount: int = 11800) -> dict:
    made = await local.control.client.v1.payment_intents.create_async({"amount": amount, "currency": "inr"})
    return made.to_dict()


def _card(number: str) -> dict[str, str]:
    return {"payment_method_data[type]": "card", "payment_method_data[card][number]": number,
            "payment_method_data[card][exp_month]": "12", "payment_method_data[card][exp_year]": "2034",
            "payment_method_data[card][cvc]": "123"}


async def _webhook(receiver: Receiver, intent: str, timeout: float = 10.0) -> tuple[str, bytes]:
    deadline = time.monotonic() + timeout
    while not receiver.succeeded(intent):
        assert time.monotonic() < deadline, f"no payment_intent.succeeded for {intent}"
        await asyncio.sleep(0.05)
    return receiver.succeeded(intent)[0]


async def test_the_browsers_confirm_takes_the_publishable_key_and_the_intents_own_secret(local, receiver):
    intent = await _intent(local)
    confirm = f"/v1/payment_intents/{intent['id']}/confirm"
    async with httpx.AsyncClient(base_url=local.url, headers={"Origin": "http://127.0.0.1:1"}) as http:
        another_key = await http.post(confirm, data={"key": "pk_test_someone_else", "client_secret":
                                                     intent["client_secret"], **_card("4242424242424242")})
        no_secret = await http.post(confirm, data={"key": local.publishable_key, **_card("4242424242424242")})
        wrong_secret = await http.post(confirm, data={"key": local.publishable_key, "client_secret":
                                                      intent["id"] + "_secret_guessed", **_card("4242424242424242")})
        declined = await http.post(confirm, data={"key": local.publishable_key, "client_secret":
                                                  intent["client_secret"], **_card(DECLINED)})
        paid = await http.post(confirm, data={"key": local.publishable_key, "client_secret": intent["client_secret"],
                                              "use_stripe_sdk": "true", "expected_payment_method_type": "card",
                                              **_card("4242424242424242")})
    assert (another_key.status_code, no_secret.status_code, wrong_secret.status_code) == (401, 401, 400)
    assert declined.status_code == 402 and declined.json()["error"]["code"] == "card_declined"
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "succeeded" and paid.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:1"
    signature, body = await _webhook(receiver[0], intent["id"])
    event = stripe.Webhook.construct_event(body.decode(), signature, SECRET)
    assert event["data"]["object"]["amount"] == 11800


async def test_stripe_js_is_localstripes_with_confirm_card_payment_completed(local):
    async with httpx.AsyncClient(base_url=local.url) as http:
        script = await http.get("/js.stripe.com/v3/")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    assert "LOCALSTRIPE_BASE_API" in script.text and "payment_method_data[card][number]" in script.text


async def test_a_merchant_page_confirms_with_the_card_element_after_a_decline_and_through_3d_secure(
    local, receiver, browser  # noqa: F811
):
    first, second = await _intent(local), await _intent(local, 50000)

    async def merchant(_request: Request) -> HTMLResponse:
        return HTMLResponse(MERCHANT_PAGE.format(local=local.url, key=json.dumps(local.publishable_key)))

    async with serving(Starlette(routes=[Route("/", merchant)])) as merchant_url:
        context = await browser.new_context()
        page = await context.new_page()
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        try:
            await page.goto(merchant_url)
            assert await page.evaluate("() => { try { Stripe('sk_test_x'); return 'accepted'; } "
                                       "catch (e) { return 'refused'; } }") == "refused"

            async def fill(number: str) -> None:
                for label, value in (("Card number", number), ("Expiry month (MM)", "12"),
                                     ("Expiry year (YY)", "34"), ("Security code (CVC)", "123"),
                                     ("Postal code", "560001")):
                    await page.get_by_label(label).fill(value)

            await fill(DECLINED)
            declined = await page.evaluate("s => confirmWith(s)", first["client_secret"])
            assert declined["error"]["type"] == "card_error" and declined["error"]["code"] == "card_declined"
            await fill("4242424242424242")
            paid = await page.evaluate("s => confirmWith(s)", first["client_secret"])
            assert paid["paymentIntent"]["status"] == "succeeded", paid

            await fill(THREE_D_SECURE)
            confirming = asyncio.ensure_future(page.evaluate("s => confirmWith(s)", second["client_secret"]))
            await page.get_by_role("button", name="Complete authentication").click()
            authenticated = await confirming
            assert authenticated["paymentIntent"]["status"] == "succeeded", authenticated
        finally:
            await context.close()
    await _webhook(receiver[0], first["id"])
    await _webhook(receiver[0], second["id"])
    intent = await local.control.client.v1.payment_intents.retrieve_async(first["id"])
    method = await local.control.client.v1.payment_methods.retrieve_async(intent.payment_method)
    assert method.card.last4 == "4242" and method.billing_details.name == "Meera"
