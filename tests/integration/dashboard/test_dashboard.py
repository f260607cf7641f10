"""The dashboard in a browser: a customer signs in, watches a meter move as events arrive through the REST API,
sees the projected invoice with GST in rupees (Indian grouping), downloads an invoice's PDF, and cannot open
another organisation's invoice or the operators' pages; an operator signs in, starts an invoice run and watches
it finish, and filters the audit log. Every page passes axe-core with no serious or critical violation, paints
first within a second, and is photographed (``<basetemp>/dashboard-artefacts/``), at a phone's width too."""

from __future__ import annotations

import asyncio
import calendar
import re
import secrets
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import httpx
from axe_playwright_python.async_playwright import Axe

from services.gateway.entrypoints.web.formatting import Presentation
from tests.integration.gateway.billing_setup import TERMS, organisation, run_period

PASSWORD = "correct horse battery staple"
QUOTA = 10
PHONE = {"width": 390, "height": 844}


async def _plan_with_quota(admin) -> str:
    terms = {**TERMS, "gst_rate": "18", "listed": True,
             "quotas": [{"metric_code": "api_calls", "limit": str(QUOTA), "cap": "soft"}]}
    created = await admin.post("/api/v1/admin/plans", json={
        "code": f"dash-{secrets.token_hex(4)}", "name": "Standard", "terms": terms})
    assert created.status_code == 201, created.text
    return created.json()["code"]


async def _customer(admin, invoicing, role: str = "member", provider: str = "") -> dict:
    """An organisation (Bengaluru, INR) on a plan with a quota of 10 API calls, a metric, a project key, an issued
    October invoice, and a member who signs in with a password. ``provider``: the one it chose (``stripe``)
    before the invoice was issued; otherwise the deployment's default."""
    organisation_id = await organisation(admin, invoicing, since=datetime(2026, 9, 1, tzinfo=UTC))
    if provider:
        chosen = await admin.put(f"/api/v1/admin/organisations/{organisation_id}/payment-provider",
                                 json={"provider": provider})
        assert chosen.status_code == 200, chosen.text
    plan = await _plan_with_quota(admin)
    assert (await admin.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_code": plan, "start_date": "2026-10-01"})).status_code == 201
    assert (await admin.post("/api/v1/admin/metrics", json={
        "organisation_id": organisation_id, "code": "api_calls", "name": "API calls",
        "aggregation": "count"})).status_code == 201
    project = (await admin.post("/api/v1/admin/projects", json={
        "organisation_id": organisation_id, "name": "web"})).json()
    key = (await admin.post("/api/v1/admin/api-keys", json={"project_id": project["id"]})).json()["secret"]
    rule = await admin.post("/api/v1/admin/alert-rules", json={
        "organisation_id": organisation_id, "kind": "threshold", "name": "API calls at 80 % of quota",
        "metric_code": "api_calls", "basis": "quota_percent", "levels": ["80"]})
    assert rule.status_code == 201, rule.text
    run = await run_period(admin, organisation_id)
    assert run["invoiced"] == 1, run
    invoice = (await admin.get("/api/v1/admin/invoices", params={"organisation_id": organisation_id})).json()
    email = f"member-{secrets.token_hex(4)}@acme.example"
    user = await admin.post("/api/v1/admin/users", json={
        "email": email, "name": "Meera", "role": role, "organisation_id": organisation_id, "password": PASSWORD})
    assert user.status_code == 201, user.text
    return {"organisation_id": organisation_id, "key": key, "email": email,
            "invoice_id": invoice["data"][0]["id"]}


async def _checked(page, name: str, artefacts, figures, *, phone: bool = False) -> None:
    """Screenshot, first paint and axe-core: no serious or critical violation."""
    await page.wait_for_load_state("load")
    # The paint entry is recorded once the browser has painted, which may come just after "load".
    await page.wait_for_function("() => performance.getEntriesByName('first-contentful-paint').length > 0",
                                 timeout=5_000)
    paint = await page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")
    results = await Axe().run(page)
    violations = results.response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
               if v["impact"] in ("serious", "critical")]
    figures[name] = {"first_contentful_paint_ms": paint, "axe_violations": len(violations),
                     "axe_serious_or_critical": len(serious)}
    await page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)
    if phone:
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=str(artefacts / f"{name}-phone.png"), full_page=True)
        wide = await page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth + 1")
        assert not wide, f"{name} scrolls sideways at a phone's width"
        await page.set_viewport_size({"width": 1280, "height": 900})
    assert serious == [], f"{name}: axe found {serious}"
    assert paint is not None and paint < 1000, f"{name}: first contentful paint {paint} ms"


async def _sign_in(page, base: str, email: str) -> None:
    await page.goto(f"{base}/app/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state("load")


async def test_a_customer_watches_usage_and_invoices_and_sees_only_their_own(
    browser, dashboard_url, admin, invoicing, artefacts, figures
):
    mine = await _customer(admin, invoicing)
    other = await _customer(admin, invoicing)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    try:
        # Signed out, a page leads to the sign-in form; a wrong password is refused there.
        await page.goto(f"{dashboard_url}/app/overview")
        assert page.url.startswith(f"{dashboard_url}/app/login")
        await _checked(page, "login", artefacts, figures, phone=True)
        await page.get_by_label("Email").fill(mine["email"])
        await page.get_by_label("Password").fill("not the password at all")
        await page.get_by_role("button", name="Sign in").click()
        assert await page.get_by_role("alert").inner_text() == "email or password is wrong"

        await _sign_in(page, dashboard_url, mine["email"])
        assert page.url == f"{dashboard_url}/app/overview"
        meter = page.get_by_test_id("meter-api_calls")
        assert "0 / 10" in await meter.inner_text()

        # Eight events through the REST API with the project's key: the meter moves to 8 of 10 and turns amber.
        async with httpx.AsyncClient(base_url=dashboard_url, timeout=30,
                                     headers={"Authorization": f"Bearer {mine['key']}"}) as api:
            sent = await api.post("/api/v1/events", json=[
                {"metricName": "api_calls", "metricValue": 1, "eventId": f"e-{i}",
                 "metadata": {"region": "south" if i % 2 else "north"}} for i in range(8)])
            assert sent.status_code == 202, sent.text
        alert = page.get_by_test_id("meter-api_calls-alert")
        for _ in range(100):
            await page.reload()
            if "8 / 10" in await meter.inner_text() and await alert.count():
                break
            await asyncio.sleep(0.2)
        assert "8 / 10" in await meter.inner_text()
        # The 80 % rule fired on the eighth call, and the meter says so.
        assert "API calls at 80 % of quota" in await alert.inner_text()
        assert "band-warning" in (await meter.get_attribute("class"))
        assert await page.get_by_role("progressbar").get_attribute("aria-valuenow") == "80"
        # The projected invoice: base fee ₹999 + 8 × ₹0.05 = ₹999.40; GST 18 % within Karnataka as CGST 9 % and
        # SGST 9 %, ₹89.95 each (89.946 rounded per tax line): ₹1,179.30.
        total = await page.get_by_test_id("invoice-total").inner_text()
        assert total == "₹1,179.30", total
        assert "CGST" in await page.locator("table.lines").inner_text()
        await _checked(page, "customer-overview", artefacts, figures, phone=True)

        await page.get_by_role("link", name="Usage").click()
        await page.get_by_label("Group by dimension").fill("region")
        await page.get_by_role("button", name="Show").click()
        await page.wait_for_load_state("load")
        table = await page.locator("table").inner_text()
        assert "north" in table and "south" in table
        await page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length === 1")
        await _checked(page, "customer-usage", artefacts, figures)

        await page.get_by_role("link", name="Invoices", exact=True).click()
        await page.wait_for_load_state("load")
        assert await page.get_by_test_id("invoice-row").count() == 1
        await _checked(page, "customer-invoices", artefacts, figures, phone=True)
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name=re.compile("^PDF")).click()
        download = await download_info.value
        saved = artefacts / "customer-invoice.pdf"
        await download.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")

        # Another organisation's invoice is not found, exactly like a made-up one; operators' pages are refused.
        for path in (f"/app/invoices/{other['invoice_id']}", f"/app/invoices/{other['invoice_id']}/pdf",
                     "/app/invoices/inv_madeup000000"):
            response = await page.goto(f"{dashboard_url}{path}")
            assert response.status == 404, path
        response = await page.goto(f"{dashboard_url}/app/operator/organisations")
        assert response.status == 403
        await _checked(page, "customer-refused", artefacts, figures)

        # Signing out ends the session: the overview leads back to the sign-in form.
        await page.goto(f"{dashboard_url}/app/overview")
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(re.compile(r".*/app/login$"))
        await page.goto(f"{dashboard_url}/app/overview")
        assert "/app/login" in page.url
    finally:
        await context.close()


async def test_an_operator_starts_an_invoice_run_watches_it_and_filters_the_audit_log(
    browser, dashboard_url, admin, invoicing, artefacts, figures
):
    await _customer(admin, invoicing)
    email = f"operator-{secrets.token_hex(4)}@billing.example"
    created = await admin.post("/api/v1/admin/users", json={
        "email": email, "name": "Ola", "role": "operator", "password": PASSWORD})
    assert created.status_code == 201, created.text
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await _sign_in(page, dashboard_url, email)
        assert page.url == f"{dashboard_url}/app/operator/organisations"
        # Measured on a load of its own: the landing after the form includes the sign-in's argon2 check.
        await page.goto(f"{dashboard_url}/app/operator/organisations")
        assert await page.get_by_test_id("organisation-row").count() >= 1
        await _checked(page, "operator-organisations", artefacts, figures, phone=True)

        await page.get_by_role("link", name="Invoice runs").click()
        await page.wait_for_load_state("load")
        await page.get_by_label("Period (YYYY-MM)").fill("2026-11")
        await page.get_by_role("button", name="Start the run").click()
        newest = page.get_by_test_id("invoice-run").first
        await newest.wait_for()
        # The row polls itself until the run is done.
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=invoice-run]').dataset.state === 'completed'",
            timeout=60_000)
        await asyncio.sleep(2.5)  # no poll in flight may bring back an older state
        assert await newest.get_attribute("data-state") == "completed"
        progress = await newest.get_by_test_id("run-progress").inner_text()
        done, total = re.fullmatch(r"(\d+) of (\d+)", progress).groups()
        assert done == total and int(total) >= 1
        await _checked(page, "operator-invoice-runs", artefacts, figures)

        await page.get_by_role("link", name="Audit log").click()
        await page.wait_for_load_state("load")
        await page.get_by_label("Action starts with").fill("invoice_run.")
        await page.get_by_role("button", name="Filter").click()
        await page.wait_for_load_state("load")
        rows = page.get_by_test_id("audit-row")
        assert await rows.count() >= 1
        texts = await rows.all_inner_texts()
        assert all("invoice_run.start" in text for text in texts), texts
        assert any(created.json()["id"] in text for text in texts), texts  # the operator started one
        await _checked(page, "operator-audit-log", artefacts, figures, phone=True)
    finally:
        await context.close()


async def _pro_plan(admin) -> dict:
    """A plan to move to, listed for customers: ₹3,100 a month (₹100 a day in a 31-day month), API calls at
    ₹0.02, a quota of 1,000 and single sign-on."""
    created = await admin.post("/api/v1/admin/plans", json={
        "code": f"pro-{secrets.token_hex(4)}", "name": "Pro", "terms": {
            "currency": "INR", "base_fee": "3100", "gst_rate": "18", "entitlements": {"sso": True}, "listed": True,
            "charges": [{"metric_code": "api_calls", "display_name": "API calls",
                         "charge": {"model": "per_unit", "unit_price": "0.02"}}],
            "quotas": [{"metric_code": "api_calls", "limit": "1000", "cap": "soft"}]}})
    assert created.status_code == 201, created.text
    return created.json()


async def test_an_owner_changes_plan_pays_an_invoice_on_the_sandbox_and_keeps_the_keys(
    browser, dashboard_url, admin, invoicing, artefacts, figures
):
    """The plan change priced before it is confirmed; the October invoice paid on the sandbox's checkout and seen
    paid; a key minted (its secret shown once, and working) and revoked (and refused from then on); an alert rule
    added and deleted."""
    mine = await _customer(admin, invoicing, role="owner")
    pro = await _pro_plan(admin)
    # Payments learns of the October invoice as it is issued; Pay needs its order.
    for _ in range(150):
        if (await admin.get(f"/api/v1/admin/invoices/{mine['invoice_id']}/payments")).status_code == 200:
            break
        await asyncio.sleep(0.2)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    try:
        await _sign_in(page, dashboard_url, mine["email"])

        # The plan picker: Standard in force beside Pro; the move priced first.
        await page.goto(f"{dashboard_url}/app/plan")
        assert "Standard" in await page.get_by_test_id("current-plan").inner_text()
        compare = await page.locator("table.compare").inner_text()
        assert "₹3,100.00" in compare and "₹0.02 each" in compare and "1,000 (soft cap)" in compare
        await page.get_by_test_id(f"preview-{pro['code']}").click()
        preview = page.get_by_test_id("plan-preview")
        await preview.wait_for()
        # Today in Bengaluru splits this month: its first days on Standard (₹999 a month), the rest on Pro.
        today = datetime.now(ZoneInfo("Asia/Kolkata")).date()
        month_days = calendar.monthrange(today.year, today.month)[1]
        before = today.day - 1
        show = Presentation.of("IN", "Asia/Kolkata")
        fee = lambda monthly, n: (Decimal(monthly) * n / month_days).quantize(Decimal("0.01"), ROUND_HALF_UP)  # noqa: E731
        shown = await preview.inner_text()
        assert show.money(fee("3100", month_days - before), "INR") in shown, shown
        if before:
            assert show.money(fee("999", before), "INR") in shown, shown
        assert "As it stands" in shown and "After the change" in shown
        await _checked(page, "customer-plan", artefacts, figures, phone=True)
        await page.get_by_test_id("confirm-change").click()
        await page.wait_for_url(re.compile(r".*/app/plan\?changed="))
        assert "Pro" in await page.get_by_test_id("current-plan").inner_text()
        assert "Pro" in await page.get_by_test_id("plan-changed").inner_text()

        # Pay the October invoice on the sandbox's checkout, and come back to it paid.
        await page.goto(f"{dashboard_url}/app/invoices/{mine['invoice_id']}")
        assert await page.get_by_test_id("invoice-state").get_attribute("data-status") == "issued"
        await _checked(page, "customer-invoice", artefacts, figures, phone=True)
        await page.get_by_test_id("pay").click()
        await page.wait_for_load_state("load")
        assert "/checkout/" in page.url  # the sandbox's hosted checkout
        await page.screenshot(path=str(artefacts / "sandbox-checkout.png"), full_page=True)
        await page.get_by_role("button", name="Pay by UPI").click()
        await page.wait_for_url(re.compile(r".*/app/invoices/.*/checkout-return\?.*"))
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=invoice-state]').dataset.status === 'paid'", timeout=60_000)
        await page.goto(f"{dashboard_url}/app/invoices/{mine['invoice_id']}")
        assert await page.get_by_test_id("invoice-state").get_attribute("data-status") == "paid"
        assert await page.get_by_test_id("pay").count() == 0
        payments = await page.get_by_test_id("payment-row").all_inner_texts()
        assert len(payments) == 1 and "captured" in payments[0] and "upi" in payments[0], payments
        await _checked(page, "customer-invoice-paid", artefacts, figures)

        # API keys: minted with the secret shown once (and working), then revoked (and refused).
        await page.goto(f"{dashboard_url}/app/api-keys")
        await page.get_by_label("Name (optional)").fill("ci-pipeline")
        await page.get_by_role("button", name="Make the key").click()
        secret = await page.get_by_test_id("new-secret").input_value()
        assert secret.startswith("bk_")
        await _checked(page, "customer-api-key-created", artefacts, figures)
        async with httpx.AsyncClient(base_url=dashboard_url, timeout=30,
                                     headers={"Authorization": f"Bearer {secret}"}) as api:
            assert (await api.get("/api/v1/quota", params={"metric": "api_calls"})).status_code == 200
            await page.goto(f"{dashboard_url}/app/api-keys")
            assert secret not in await page.content()  # never shown again
            rows = page.get_by_test_id("api-key-row")
            assert await rows.count() == 2
            await _checked(page, "customer-api-keys", artefacts, figures, phone=True)
            new_key = rows.filter(has_text="ci-pipeline")
            await new_key.get_by_role("button", name=re.compile("^Revoke")).click()
            await page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=api-key-row][data-state=revoked]').length === 1")
            assert (await api.get("/api/v1/quota", params={"metric": "api_calls"})).status_code == 403

        # The other account pages: credit, alerts, webhooks, emails.
        for name, path in (("customer-credits", "/app/credits"), ("customer-alerts", "/app/alerts"),
                           ("customer-webhooks", "/app/webhooks"), ("customer-emails", "/app/emails")):
            response = await page.goto(f"{dashboard_url}{path}")
            assert response.status == 200, path
            await _checked(page, name, artefacts, figures)
        # An alert rule of the owner's own, added and deleted on the page.
        await page.goto(f"{dashboard_url}/app/alerts")
        rules = page.get_by_test_id("alert-rule-row")
        assert await rules.count() == 1
        await page.get_by_label("Name").fill("Half the quota")
        await page.get_by_label("Metric code").fill("api_calls")
        await page.get_by_label("Levels (comma-separated, ascending)").fill("50, 90")
        await page.get_by_role("button", name="Add the alert").click()
        await page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-rule-row]').length === 2")
        assert "50, 90 % of quota" in await rules.filter(has_text="Half the quota").inner_text()
        await rules.filter(has_text="Half the quota").get_by_role("button", name=re.compile("^Delete")).click()
        await page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-rule-row]').length === 1")
    finally:
        await context.close()
