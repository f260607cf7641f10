"""Price overrides through the in-process gateway to the real invoicing service: set (idempotent, audited), a bad
price refused naming the field with nothing stored, the invoice priced with the override and saying so, the
version shown on the subscription, listed, and cleared."""

from __future__ import annotations

import httpx

from tests.integration.gateway.billing_setup import SEPTEMBER, only_invoice, organisation, plan, run_period


async def test_price_override_routes_need_a_staff_credential(gateway_url, key_holder):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for method, path in (("GET", "/api/v1/admin/organisations/org_x/price-overrides"),
                             ("PUT", "/api/v1/admin/organisations/org_x/price-overrides/standard"),
                             ("DELETE", "/api/v1/admin/organisations/org_x/price-overrides/standard")):
            for headers in ({}, {"Authorization": f"Bearer {key_holder.api_key}"}):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)


async def test_an_override_prices_the_invoice_and_shows_on_the_subscription(admin_http, invoicing):
    organisation_id = await organisation(admin_http, invoicing, since=SEPTEMBER)
    code = (await plan(admin_http))["code"]
    subscribed = await admin_http.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_code": code, "start_date": "2026-10-01"})
    assert subscribed.status_code == 201, subscribed.text
    path = f"/api/v1/admin/organisations/{organisation_id}/price-overrides"

    bad = await admin_http.put(f"{path}/{code}", json={"charges": [{"metric_code": "api_calls", "charge": {
        "model": "graduated", "tiers": [{"up_to": "100", "unit_price": "1"}, {"up_to": "50", "unit_price": "1"},
                                        {"up_to": None, "unit_price": "1"}]}}]})
    assert bad.status_code == 400 and bad.json()["field"] == "charges[0].charge.tiers[1].up_to", bad.text
    assert (await admin_http.get(path)).json()["data"] == []

    body = {"base_fee": "500", "effective_date": "2026-10-01",
            "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.02"}}]}
    headers = {"Idempotency-Key": f"po-{organisation_id}"}
    first = await admin_http.put(f"{path}/{code}", json=body, headers=headers)
    again = await admin_http.put(f"{path}/{code}", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    override = first.json()
    assert (override["version"], override["plan_code"], override["currency"], override["base_fee"]) == (
        1, code, "INR", "500")
    (charge,) = override["charges"]
    assert (charge["metric_code"], charge["charge"]["model"], charge["charge"]["unit_price"]) == (
        "api_calls", "per_unit", "0.02")
    entries = (await admin_http.get("/api/v1/admin/audit-log", params={"resource_id": organisation_id})).json()
    (entry,) = [e for e in entries if e["action"] == "price_override.set"]
    assert entry["after"]["version"] == 1 and entry["after"]["base_fee"] == "500"

    run = await run_period(admin_http, organisation_id)
    assert run["invoiced"] == 1, run
    invoice = await only_invoice(admin_http, organisation_id)
    base, calls = invoice["lines"]
    assert base["description"] == "Standard plan base fee, price agreed for this organisation (override v1)"
    assert (base["amount_minor"], base["price_override_version"], base["price_override_id"]) == (
        50000, 1, override["id"])
    assert calls["price_override_version"] == 1 and calls["unit_price"] in ("0.02", "0")

    subscription_id = (await admin_http.get("/api/v1/admin/subscriptions",
                                            params={"organisation_id": organisation_id})).json()["data"][0]["id"]
    shown = (await admin_http.get(f"/api/v1/admin/subscriptions/{subscription_id}")).json()
    assert shown["price_override"]["version"] == 1

    cleared = await admin_http.delete(f"{path}/{code}", params={"effective_date": "2026-11-01"})
    assert cleared.status_code == 200 and cleared.json()["cleared"] and cleared.json()["version"] == 2
    listed = (await admin_http.get(path, params={"plan_code": code})).json()["data"]
    assert [(o["version"], o["cleared"]) for o in listed] == [(1, False), (2, True)]
    shown = (await admin_http.get(f"/api/v1/admin/subscriptions/{subscription_id}")).json()
    assert shown["price_override"] is None
