"""The India pages in a browser, against a gateway in front of an invoicing service with e-invoicing on (the IRP
sandbox as its own process, as in tests/integration/invoicing/test_einvoicing.py) and a payments service at a
Razorpay sandbox whose webhooks reach the gateway: an operator reads a registered invoice's IRN and Ack No on the
e-invoices page and on its organisation's page, and retries a registration the 30-day rule blocked until the IRP
registers it; the invoice's member sees its IRN on the invoice's page. An owner sets up auto-debit on the sandbox's
checkout, comes back to the page and watches Razorpay's token.confirmed (a webhook through the gateway) confirm it,
sees the next invoice's debit scheduled (as does an operator on the organisation's page), then pauses and cancels
it. Every page passes axe-core with no serious or critical violation and is photographed
(``<basetemp>/dashboard-artefacts/``)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from sandboxes.razorpay import RunningSandbox, running_sandbox
from services.gateway.__main__ import DEFINITION as GATEWAY
from tests.conftest import running_service
from tests.integration.dashboard.test_dashboard import _checked, _customer, _sign_in
from tests.integration.gateway.conftest import (  # payments: the module's own, at the sandbox below
    GATEWAY_ADMIN_TOKEN,
    RAZORPAY_KEY_ID,
    RAZORPAY_KEY_SECRET,
    eventually,
    payments,  # noqa: F401
)
from tests.integration.invoicing.test_einvoicing import (  # the IRP sandbox and an invoicing with e-invoicing on
    REGISTERED,
    blocked_later,
    einvoicing,  # noqa: F401
    irp,  # noqa: F401
    issue,
    registration,
    stub,  # noqa: F401
)

WEBHOOK_PATH = "/api/v1/webhooks/razorpay"
WEBHOOK_SECRET = "dashboard-india-webhook-secret"


@pytest.fixture(scope="module")
async def razorpay() -> AsyncIterator[RunningSandbox]:
    """The module's sandbox, signing its webhooks with a secret the gateway knows (the tokens' confirmations)."""
    async with running_sandbox(key_id=RAZORPAY_KEY_ID, key_secret=RAZORPAY_KEY_SECRET,
                               webhook_secret=WEBHOOK_SECRET) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
async def india_url(database_url, nats_url, ingest, einvoicing, metering, payments,  # noqa: F811
                    razorpay, refused_address) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0, cookie_secure=False,
        ingest_address=ingest.address, invoicing_address=einvoicing.address, metering_address=metering.address,
        payments_address=payments.address, notification_address=refused_address,
        razorpay_webhook_secret=WEBHOOK_SECRET,
    ) as runtime:
        await razorpay.control.set_webhook(runtime.http_address + WEBHOOK_PATH)
        try:
            yield runtime.http_address
        finally:
            await razorpay.control.set_webhook(None)


@pytest.fixture
async def api(india_url) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=india_url, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as client:
        yield client


async def _person(api, role: str, organisation_id: str | None = None) -> str:
    email = f"{role}-{secrets.token_hex(4)}@billing.example"
    body = {"email": email, "name": role.title(), "role": role, "password": "correct horse battery staple"}
    if organisation_id:
        body["organisation_id"] = organisation_id
    created = await api.post("/api/v1/admin/users", json=body)
    assert created.status_code == 201, created.text
    return email


async def test_an_operator_reads_irns_and_retries_a_blocked_registration(
    browser, india_url, api, stub, invoicing, einvoicing, irp, artefacts, figures  # noqa: F811
):
    invoice = await issue(stub, invoicing)
    registered = await registration(stub, invoice.id, REGISTERED)
    # Another, blocked before sending by the 30-day rule (a registrar 31 days on; the IRP kept out meanwhile, so
    # the service's own registrar cannot register it first).
    await irp.control.outage(-1)
    try:
        blocked = await issue(stub, invoicing)
        await registration(stub, blocked.id)
        await blocked_later(stub, einvoicing, irp, blocked.id)
    finally:
        await irp.control.outage(0)
    email = await _person(api, "operator")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, india_url, email)
        await page.get_by_role("link", name="E-invoices").click()
        await page.wait_for_load_state("load")
        # Failed ones first: the blocked invoice, with why and a Retry.
        row = page.locator(f'[data-testid=einvoice-row][data-document="{blocked.id}"]')
        assert await row.get_attribute("data-state") == "failed"
        text = await row.inner_text()
        assert "blocked before sending" in text and "30 days" in text and blocked.number in text, text
        await _checked(page, "operator-einvoices-failed", artefacts, figures, phone=True)

        # The registered one, by the state filter: its IRN and the IRP's Ack No.
        await page.get_by_label("State").select_option("registered")
        await page.get_by_role("button", name="Show").click()
        await page.wait_for_url(re.compile(r".*status=registered.*"))
        row = page.locator(f'[data-testid=einvoice-row][data-document="{invoice.id}"]')
        while not await row.count():  # the shared database holds other tests' registrations: page on to it
            await page.get_by_role("link", name="More registrations").click()
            await page.wait_for_load_state("load")
        assert await row.get_by_test_id("einvoice-irn").inner_text() == registered.irn
        assert await row.get_by_test_id("einvoice-ack").inner_text() == registered.ack_no
        await _checked(page, "operator-einvoices-registered", artefacts, figures)

        # Retry the blocked one (today it is within the limit): pending again, then registered by the IRP.
        await page.goto(f"{india_url}/app/operator/einvoices")
        row = page.locator(f'[data-testid=einvoice-row][data-document="{blocked.id}"]')
        await row.get_by_role("button", name=re.compile("^Retry")).click()
        await page.wait_for_url(re.compile(r".*retried=.*"))
        assert blocked.number in await page.get_by_test_id("einvoice-retried").inner_text()
        done = await registration(stub, blocked.id, REGISTERED)
        await page.goto(f"{india_url}/app/operator/organisations/{blocked.organisation_id}")
        shown = await page.get_by_test_id("organisation-einvoice").inner_text()
        assert done.irn in shown and done.ack_no in shown, shown
        await _checked(page, "operator-organisation-einvoiced", artefacts, figures, phone=True)
        # The retry is the API's: in the audit log.
        audit = (await api.get("/api/v1/admin/audit-log", params={"action": "einvoice.retry",
                                                                 "resource_id": blocked.id})).json()
        assert len(audit) == 1 and audit[0]["actor"].startswith("user:usr_"), audit
    finally:
        await context.close()

    # The invoice's own people see its IRN, Ack No and date on the invoice's page.
    member = await _person(api, "member", invoice.organisation_id)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, india_url, member)
        await page.goto(f"{india_url}/app/invoices/{invoice.id}")
        assert await page.get_by_test_id("invoice-irn").inner_text() == registered.irn
        assert await page.get_by_test_id("invoice-ack-no").inner_text() == registered.ack_no
        assert "IST" in await page.get_by_test_id("invoice-ack-date").inner_text()
        await _checked(page, "customer-invoice-einvoiced", artefacts, figures, phone=True)
    finally:
        await context.close()


async def test_an_owner_sets_up_auto_debit_on_the_sandbox_and_pauses_and_cancels_it(
    browser, india_url, api, invoicing, razorpay, artefacts, figures
):
    mine = await _customer(api, invoicing, role="owner")
    organisation_id = mine["organisation_id"]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    try:
        await _sign_in(page, india_url, mine["email"])
        await page.get_by_role("link", name="Auto-debit").click()
        await page.wait_for_load_state("load")
        assert await page.get_by_test_id("mandate-state").get_attribute("data-state") == "none"
        await _checked(page, "customer-auto-debit-none", artefacts, figures, phone=True)

        # Set up: UPI AutoPay up to ₹15,000 a debit, authorised on the sandbox's checkout.
        await page.get_by_label("Pay by").select_option("upi")
        await page.get_by_label("Most one debit may take (INR)").fill("15000.00")
        await page.get_by_role("button", name="Set up and authorise").click()
        await page.wait_for_url(re.compile(r".*/checkout/order_.*recurring=1.*"))
        await page.screenshot(path=str(artefacts / "sandbox-checkout-mandate.png"), full_page=True)
        await page.get_by_role("button", name="Pay by UPI").click()
        # Back on the page, which watches the mandate until Razorpay's token.confirmed has confirmed it.
        await page.wait_for_url(re.compile(r".*/app/auto-debit/authorised\?.*"))
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=mandate-state]').dataset.state === 'confirmed'",
            timeout=60_000)
        [mandate] = (await api.get(f"/api/v1/admin/organisations/{organisation_id}/mandates")).json()["data"]
        assert (mandate["state"], mandate["method"], mandate["max_amount"]) == ("confirmed", "upi", "15000.00")
        assert mandate["token_id"].startswith("token_")
        confirmations = [e for e in await razorpay.control.events() if e["event"] == "token.confirmed"
                         and e["body"]["payload"]["token"]["entity"]["id"] == mandate["token_id"]]
        assert len(confirmations) == 1  # the webhook, not the checkout's answer, confirmed it

        # November's invoice is debited on it: scheduled before its due date, shown as the next debit.
        started = await api.post("/api/v1/admin/invoice-runs",
                                 json={"period_key": "2026-11", "organisation_id": organisation_id})
        assert started.status_code == 202, started.text

        async def debits() -> list[dict]:
            found = await api.get(f"/api/v1/admin/mandates/{mandate['id']}/debits")
            return found.json()["data"] if found.status_code == 200 else []

        [debit] = await eventually(debits, timeout=60, what="the November invoice's debit")
        await page.goto(f"{india_url}/app/auto-debit")
        facts = await page.get_by_test_id("mandate-facts").inner_text()
        assert "₹15,000.00" in facts and "UPI AutoPay" in facts, facts
        coming = await page.get_by_test_id("next-debit").inner_text()
        assert coming.startswith("₹1,178.82 for invoice") or debit["state"] not in ("scheduled", "ordered",
                                                                                    "requested"), coming
        assert await page.get_by_test_id("debit-row").count() == 1
        await _checked(page, "customer-auto-debit", artefacts, figures, phone=True)

        # An operator sees the mandate and its debit on the organisation's page.
        operator = await _person(api, "operator")
        staff = await browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            staff_page = await staff.new_page()
            await _sign_in(staff_page, india_url, operator)
            await staff_page.goto(f"{india_url}/app/operator/organisations/{organisation_id}")
            shown = staff_page.get_by_test_id("organisation-mandate")
            assert await shown.get_attribute("data-state") == "confirmed"
            debit_row = await shown.get_by_test_id("mandate-debit").inner_text()
            assert debit["state"] in debit_row and "₹1,178.82" in debit_row, debit_row
            await _checked(staff_page, "operator-organisation-mandate", artefacts, figures)
        finally:
            await staff.close()

        # Paused (confirmed first), then cancelled for good.
        await page.get_by_test_id("pause").click()
        await page.wait_for_url(re.compile(r".*done=paused"))
        assert await page.get_by_test_id("mandate-state").get_attribute("data-state") == "paused"
        assert "cannot be resumed" in await page.get_by_test_id("mandate-state").inner_text()
        await _checked(page, "customer-auto-debit-paused", artefacts, figures)
        await page.get_by_test_id("cancel").click()
        await page.wait_for_url(re.compile(r".*done=cancelled"))
        assert await page.get_by_test_id("mandate-state").get_attribute("data-state") == "cancelled"
        [ended] = (await api.get(f"/api/v1/admin/organisations/{organisation_id}/mandates",
                                 params={"include_finished": "true"})).json()["data"]
        assert (ended["state"], ended["reason"]) == ("cancelled", "cancelled by the organisation")
        token = razorpay.sandbox.store.tokens[mandate["token_id"]]
        assert token["recurring_details"]["status"] == "cancelled"
        audit = (await api.get("/api/v1/admin/audit-log", params={"resource_id": mandate["id"]})).json()
        assert sorted(e["action"] for e in audit) == ["mandate.cancel", "mandate.create", "mandate.pause"], audit
        # A new mandate may be set up again.
        assert await page.get_by_role("button", name="Set up and authorise").count() == 1
        await _checked(page, "customer-auto-debit-cancelled", artefacts, figures)
    finally:
        await context.close()
