"""The operators' pages in a browser, against a gateway in front of the real invoicing, metering and payments
services (payments pointed at the Razorpay sandbox): an operator sees a payment needing review (a bank transfer
of ₹1,300.00 on an invoice of ₹1,178.82), refunds the ₹121.18 excess with a reason and finds the refund in the
audit log, resolves the review item, runs a reconciliation and reads its report, and replays a dead letter; an
admin adds a user, changes their role and disables them; a customer opens none of these pages. Every page passes
axe-core with no serious or critical violation, paints first within a second, and is photographed
(``<basetemp>/dashboard-artefacts/``)."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from billing_runtime import messaging
from services.gateway.__main__ import DEFINITION as GATEWAY
from tests.conftest import running_service
from tests.integration.dashboard.test_dashboard import PASSWORD, _checked, _sign_in
from tests.integration.gateway.billing_setup import issued_invoice
from tests.integration.gateway.conftest import (  # payments and razorpay: module fixtures used here
    GATEWAY_ADMIN_TOKEN,
    eventually,
    payments,  # noqa: F401
    razorpay,  # noqa: F401
)
from tests.integration.gateway.test_dead_letters_api import event_batch, letter

NEW_OPERATOR_PAGES = ("/app/operator/payments", "/app/operator/reconciliation", "/app/operator/dead-letters",
                      "/app/operator/users")


@pytest.fixture(scope="module")
async def operator_url(database_url, nats_url, ingest, invoicing, metering, payments,  # noqa: F811
                       refused_address) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0, cookie_secure=False,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=payments.address, notification_address=refused_address,
    ) as runtime:
        yield runtime.http_address


@pytest.fixture
async def api(operator_url) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=operator_url, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as client:
        yield client


async def _person(api, role: str, organisation_id: str | None = None) -> str:
    email = f"{role}-{secrets.token_hex(4)}@billing.example"
    body = {"email": email, "name": role.title(), "role": role, "password": PASSWORD}
    if organisation_id:
        body["organisation_id"] = organisation_id
    created = await api.post("/api/v1/admin/users", json=body)
    assert created.status_code == 201, created.text
    return email


async def _overpaid_invoice(api, invoicing) -> tuple[str, str]:
    """(organisation id, invoice id) of an October invoice of ₹1,178.82 paid ₹1,300.00 by bank transfer."""
    organisation_id, invoice = await issued_invoice(api, invoicing)
    invoice_id = invoice["id"]

    async def known():
        return (await api.get(f"/api/v1/admin/invoices/{invoice_id}/payments")).status_code

    await eventually(known, lambda status: status == 200, what="payments to know the invoice")
    recorded = await api.post(f"/api/v1/admin/invoices/{invoice_id}/offline-payments", json={
        "amount": "1300.00", "currency": "INR", "method": "bank_transfer", "reference": f"UTR{secrets.token_hex(4)}",
        "note": "NEFT from HDFC"})
    assert recorded.status_code == 201, recorded.text

    async def flagged():
        items = (await api.get("/api/v1/admin/review-items", params={"organisation_id": organisation_id})).json()
        return [i for i in items["data"] if i["kind"] == "over_payment"]

    (item,) = await eventually(flagged, what="settlement to flag the over-payment")
    assert (item["amount"], item["invoice_id"]) == ("121.18", invoice_id)
    return organisation_id, invoice_id


async def test_an_operator_reviews_payments_refunds_with_a_reason_and_replays_a_dead_letter(
    browser, operator_url, api, invoicing, nats_url, artefacts, figures
):
    organisation_id, invoice_id = await _overpaid_invoice(api, invoicing)
    # Another organisation: its October invoice unpaid (dunning scheduled), ₹1,23,456.78 of prepaid credit since.
    unpaid_id, unpaid = await issued_invoice(api, invoicing)
    granted = await api.post(f"/api/v1/admin/organisations/{unpaid_id}/credits/grants",
                             json={"amount_minor": 12345678, "currency": "INR", "description": "Goodwill"})
    assert granted.status_code == 201, granted.text

    async def dunning():
        return (await api.get(f"/api/v1/admin/invoices/{unpaid['id']}/dunning")).status_code

    await eventually(dunning, lambda status: status == 200, what="payments to start the invoice's dunning")
    nc = await messaging.connect(nats_url, name="dashboard-dead-letters")
    try:
        sequence = await letter(nc.jetstream(), event_batch(f"dash-{secrets.token_hex(4)}"))
    finally:
        await nc.close()
    email = await _person(api, "operator")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, operator_url, email)
        await page.goto(f"{operator_url}/app/operator/organisations")
        assert await page.get_by_test_id("organisation-row").count() >= 1
        # Each row asks for its current period once drawn.
        await page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=organisation-period]')].every("
            "cell => !cell.textContent.includes('…'))")
        # (The database is shared with other tests: the first page may hold organisations without a plan.)
        periods = await page.get_by_test_id("organisation-period").all_inner_texts()
        assert periods and all(re.search(r"\d{4}", text) or text.strip() == "—" for text in periods), periods
        await _checked(page, "operator-organisations-balances", artefacts, figures)

        # The organisation's page: its plan, the current period, its invoice (paid) and what it has due.
        await page.goto(f"{operator_url}/app/operator/organisations/{organisation_id}")
        subscription = await page.get_by_test_id("subscription-row").inner_text()
        assert "v1" in subscription and "active" in subscription, subscription
        assert "nothing" in await page.get_by_test_id("amount-due").inner_text()
        assert "paid" in await page.get_by_test_id("organisation-invoice").inner_text()
        await _checked(page, "operator-organisation", artefacts, figures, phone=True)

        # An unpaid one: what it has due, its dunning, its credit in Indian grouping.
        await page.goto(f"{operator_url}/app/operator/organisations/{unpaid_id}")
        assert await page.get_by_test_id("amount-due").inner_text() == "₹1,178.82"
        assert await page.get_by_test_id("credit-balance").inner_text() == "₹1,23,456.78"
        assert "scheduled" in await page.get_by_test_id("organisation-invoice").inner_text()
        await _checked(page, "operator-organisation-unpaid", artefacts, figures)

        # The payment needing review: ₹121.18 more than the invoice.
        await page.get_by_role("link", name="Payments", exact=True).click()
        await page.wait_for_load_state("load")
        review = page.get_by_test_id("review-item").filter(has_text=invoice_id)
        assert "over payment" in await review.inner_text() and "₹121.18" in await review.inner_text()
        await _checked(page, "operator-payments", artefacts, figures, phone=True)

        # Refund the excess with a reason, confirmed: back on the invoice's payments, saying so.
        await review.get_by_role("link").first.click()
        await page.wait_for_load_state("load")
        assert await page.get_by_test_id("dunning").inner_text()
        await page.get_by_text("Refund this payment").click()
        await page.get_by_label(re.compile("^Amount in INR")).fill("121.18")
        reason = f"Paid 121.18 more than the invoice ({secrets.token_hex(3)})"
        await page.get_by_label(re.compile("^Reason")).fill(reason)
        await page.get_by_role("button", name="Refund", exact=True).click()
        # Not confirmed: the browser keeps the form (required box), nothing is refunded.
        assert "refunded=" not in page.url
        await page.get_by_label(re.compile("^I confirm")).check()
        await page.get_by_role("button", name="Refund", exact=True).click()
        await page.wait_for_url(re.compile(r".*refunded=rfd_.*"))
        done = await page.get_by_test_id("refund-done").inner_text()
        assert "₹121.18" in done and reason in done, done
        assert reason in await page.get_by_test_id("refund-row").inner_text()
        await _checked(page, "operator-invoice-payments", artefacts, figures, phone=True)

        # The refund is in the audit log, with its reason and who did it.
        await page.get_by_role("link", name="audit log", exact=True).click()
        await page.wait_for_load_state("load")
        rows = await page.get_by_test_id("audit-row").all_inner_texts()
        assert len(rows) == 1 and "refund.create" in rows[0] and reason in rows[0], rows
        await _checked(page, "operator-audit-log-refund", artefacts, figures)

        # The review item, resolved saying what was done: it leaves the list.
        await page.get_by_role("link", name="Payments", exact=True).click()
        await page.wait_for_load_state("load")
        review = page.get_by_test_id("review-item").filter(has_text=invoice_id)
        await review.get_by_label(re.compile("^What was done")).fill("Refunded the excess of 121.18")
        await review.get_by_role("button", name=re.compile("^Resolve")).click()
        await page.wait_for_url(re.compile(r".*resolved=.*"))
        assert "resolved" in await page.get_by_test_id("review-resolved").inner_text()
        assert await page.get_by_test_id("review-item").filter(has_text=invoice_id).count() == 0

        # A reconciliation over yesterday and today: completed, its report on its own page.
        await page.get_by_role("link", name="Reconciliation").click()
        await page.wait_for_load_state("load")
        await page.get_by_role("button", name="Run the reconciliation").click()
        await page.wait_for_url(re.compile(r".*/app/operator/reconciliation/.+"), timeout=60_000)
        report = await page.get_by_test_id("reconciliation-report").inner_text()
        assert "completed" in report, report
        await _checked(page, "operator-reconciliation-run", artefacts, figures)
        await page.get_by_role("link", name="Reconciliation").first.click()
        await page.wait_for_load_state("load")
        assert await page.get_by_test_id("reconciliation-run").count() >= 1
        await _checked(page, "operator-reconciliation", artefacts, figures)

        # The dead letter, replayed from its row.
        await page.get_by_role("link", name="Dead letters").click()
        await page.wait_for_load_state("load")
        row = page.locator(f"#letter-{sequence}")
        assert await row.get_attribute("data-state") == "pending"
        await _checked(page, "operator-dead-letters", artefacts, figures, phone=True)
        await row.get_by_role("button", name=re.compile("^Replay")).click()
        await page.wait_for_function(
            f"() => document.querySelector('#letter-{sequence}').dataset.state === 'replayed'")
        assert "Replayed as #" in await page.locator(f"#letter-{sequence}").inner_text()
        await page.locator(f"#letter-{sequence}").get_by_role("link").click()
        await page.wait_for_load_state("load")
        assert "replayed" in await page.get_by_test_id("dead-letter-facts").inner_text()
        assert '"event_id"' in await page.locator("pre.payload").inner_text()
        await _checked(page, "operator-dead-letter", artefacts, figures)

        # Users are for admins: an operator is refused.
        response = await page.goto(f"{operator_url}/app/operator/users")
        assert response.status == 403
    finally:
        await context.close()


async def test_an_admin_manages_users_and_a_customer_opens_no_operator_page(
    browser, operator_url, api, invoicing, artefacts, figures
):
    admin_email = await _person(api, "admin")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, operator_url, admin_email)
        await page.goto(f"{operator_url}/app/operator/users")
        new = f"viewer-{secrets.token_hex(4)}@billing.example"
        await page.get_by_label("Email").fill(new)
        await page.get_by_label("Name").fill("Vik")
        await page.get_by_label("Role", exact=True).select_option("viewer")
        await page.get_by_role("button", name="Add the user").click()
        await page.wait_for_url(re.compile(r".*done=created.*"))
        row = page.locator(f'[data-testid=user-row][data-email="{new}"]')
        await row.get_by_label(f"Role of {new}").select_option("operator")
        await row.get_by_role("button", name=re.compile("^Change")).click()
        await page.wait_for_url(re.compile(r".*done=role.*"))
        assert "is operator" in await page.get_by_test_id("users-done").inner_text()
        row = page.locator(f'[data-testid=user-row][data-email="{new}"]')
        await row.get_by_role("button", name=re.compile("^Disable")).click()
        await page.wait_for_url(re.compile(r".*disabled.*"))
        assert "disabled" in await page.locator(f'[data-testid=user-row][data-email="{new}"]').inner_text()
        await _checked(page, "operator-users", artefacts, figures, phone=True)
    finally:
        await context.close()

    organisation = (await api.get("/api/v1/admin/organisations", params={"page_size": 1})).json()["data"][0]
    member = await _person(api, "member", organisation["id"])
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, operator_url, member)
        for path in (*NEW_OPERATOR_PAGES, f"/app/operator/organisations/{organisation['id']}"):
            response = await page.goto(f"{operator_url}{path}")
            assert response.status == 403, path
        assert "does not grant" in await page.locator("main").inner_text()
    finally:
        await context.close()
