"""Coupons through the in-process gateway to the real invoicing service: the admin routes with idempotent writes
and an audit trail, refusals as 4xx naming the field, the discount line on an invoice run over REST, and a quote
with a discount."""

from __future__ import annotations

import secrets

import httpx

from tests.integration.gateway.billing_setup import only_invoice, run_period, subscribed


def unique(code: str) -> str:
    return f"{code}-{secrets.token_hex(3).upper()}"


async def audited(admin_http, resource_id: str) -> list[dict]:
    entries = (await admin_http.get("/api/v1/admin/audit-log", params={"resource_id": resource_id})).json()
    return sorted(entries, key=lambda e: e["id"])


async def test_coupon_routes_need_a_staff_credential(gateway_url, key_holder):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for method, path in (("POST", "/api/v1/admin/coupons"), ("GET", "/api/v1/admin/coupons"),
                             ("POST", "/api/v1/admin/organisations/org_x/coupons"),
                             ("DELETE", "/api/v1/admin/organisations/org_x/coupons/cpr_x")):
            for headers in ({}, {"Authorization": f"Bearer {key_holder.api_key}"}):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)


async def test_create_is_idempotent_audited_once_and_bad_terms_name_the_field(admin_http):
    code = unique("LAUNCH20")
    body = {"code": code.lower(), "name": "Launch offer", "percent_off": 20, "duration": "repeating",
            "duration_periods": 3}
    headers = {"Idempotency-Key": f"create-{code}"}
    first = await admin_http.post("/api/v1/admin/coupons", json=body, headers=headers)
    again = await admin_http.post("/api/v1/admin/coupons", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    coupon = first.json()
    assert again.json() == coupon and again.headers.get("Idempotent-Replayed") == "true"
    assert (coupon["code"], coupon["percent_off"], coupon["amount_off"], coupon["duration"]) == (
        code, "20", None, "repeating")
    assert (coupon["duration_periods"], coupon["max_redemptions"], coupon["times_redeemed"]) == (3, None, 0)
    [entry] = await audited(admin_http, coupon["id"])
    assert (entry["action"], entry["resource_type"], entry["after"]["code"]) == ("coupon.create", "coupon", code)
    taken = await admin_http.post("/api/v1/admin/coupons", json=body)
    assert taken.status_code == 409 and taken.json()["field"] == "code"
    assert (await admin_http.get(f"/api/v1/admin/coupons/{coupon['id']}")).json() == coupon
    assert (await admin_http.get("/api/v1/admin/coupons", params={"code": code})).json()["data"] == [coupon]
    assert (await admin_http.get("/api/v1/admin/coupons", params={"code": "NOPE"})).json()["data"] == []

    for bad, field in (({"percent_off": "120"}, "percent_off"),
                       ({"percent_off": None, "amount_off": "10.005", "currency": "INR"}, "amount_off"),
                       ({"percent_off": None, "amount_off": "10", "currency": ""}, "currency"),
                       ({"duration": "weekly"}, "duration"),
                       ({"duration": "once"}, "duration_periods"),
                       ({"duration_periods": 241}, "duration_periods"),
                       ({"max_redemptions": 0}, "max_redemptions"),
                       ({"plan_codes": ["Not A Code"]}, "plan_codes[0]")):
        response = await admin_http.post("/api/v1/admin/coupons", json=body | {"code": unique("BAD")} | bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["field"] == field, (bad, response.json())


async def test_apply_remove_and_archive_with_an_audit_trail_and_the_discount_on_a_run(admin_http, invoicing):
    organisation_id = await subscribed(admin_http, invoicing)  # on 999 INR + 0.05 a call since 1 October
    code = unique("HALF")
    coupon = (await admin_http.post("/api/v1/admin/coupons", json={
        "code": code, "name": "Half off", "percent_off": "50", "duration": "once"})).json()
    path = f"/api/v1/admin/organisations/{organisation_id}/coupons"
    headers = {"Idempotency-Key": f"apply-{code}"}
    applied = await admin_http.post(path, json={"coupon_code": code.lower(), "start_period_key": "2026-10"},
                                    headers=headers)
    assert applied.status_code == 201, applied.text
    redemption = applied.json()
    assert (redemption["state"], redemption["start_period_key"], redemption["periods_remaining"]) == (
        "active", "2026-10", 1)
    assert redemption["coupon"]["id"] == coupon["id"]
    replay = await admin_http.post(path, json={"coupon_code": code.lower(), "start_period_key": "2026-10"},
                                   headers=headers)
    assert replay.json()["id"] == redemption["id"] and replay.headers.get("Idempotent-Replayed") == "true"
    twice = await admin_http.post(path, json={"coupon_code": code})
    assert twice.status_code == 409 and twice.json()["field"] == "coupon_code"
    unknown = await admin_http.post(path, json={"coupon_code": "NO-SUCH-COUPON"})
    assert unknown.status_code == 404
    bad_period = await admin_http.post(path, json={"coupon_code": code, "start_period_key": "October"})
    assert bad_period.status_code == 400 and bad_period.json()["field"] == "start_period_key"
    dollars = (await admin_http.post("/api/v1/admin/coupons", json={
        "code": unique("USD"), "name": "Ten dollars", "amount_off": "10", "currency": "USD",
        "duration": "forever"})).json()
    mismatch = await admin_http.post(path, json={"coupon_code": dollars["code"]})
    assert mismatch.status_code == 422 and "billed in INR" in mismatch.json()["detail"]

    run = await run_period(admin_http, organisation_id)
    assert (run["invoiced"], run["failed"]) == (1, 0), run
    invoice = await only_invoice(admin_http, organisation_id)
    # 999.00 base fee, no calls: half off is 499.50 before tax; CGST and SGST 9% of 499.50 = 44.955 -> 44.96.
    assert [(line["kind"], line["amount_minor"], line["amount"]) for line in invoice["lines"]] == [
        ("base_fee", 99900, "999.00"), ("usage", 0, "0.00"), ("discount", -49950, "-499.50")]
    discount = invoice["lines"][2]
    assert (discount["description"], discount["coupon_code"], discount["coupon_redemption_id"]) == (
        f"Half off ({code}): 50% off", code, redemption["id"])
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("499.50", "89.92", "589.42")
    [listed] = (await admin_http.get(path)).json()["data"]
    assert (listed["state"], listed["used_period_keys"], listed["periods_remaining"]) == ("completed", ["2026-10"], 0)

    removed = await admin_http.delete(f"{path}/{redemption['id']}")
    assert removed.status_code == 200 and removed.json()["state"] == "removed"
    archived = await admin_http.post(f"/api/v1/admin/coupons/{coupon['id']}/archive")
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert (await admin_http.post(path, json={"coupon_code": code})).status_code == 422  # archived
    assert [e["action"] for e in await audited(admin_http, redemption["id"])] == ["coupon.apply", "coupon.remove"]
    assert [e["action"] for e in await audited(admin_http, coupon["id"])] == ["coupon.create", "coupon.archive"]
    assert (await admin_http.delete(f"/api/v1/admin/organisations/{organisation_id}/coupons/cpr_nope")
            ).status_code == 404


async def test_a_quote_shows_what_a_discount_takes_off(admin_http):
    response = await admin_http.post("/api/v1/pricing/quote", json={
        "currency": "INR", "charge": {"model": "per_unit", "unit_price": "0.05"}, "quantity": 12345,
        "percent_off": "15"})
    assert response.status_code == 200, response.text
    quote = response.json()
    assert (quote["total"], quote["discount"], quote["discounted_total"]) == ("617.25", "92.59", "524.66")
