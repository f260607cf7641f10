"""Prepaid credit through the in-process gateway to the real invoicing service: an idempotent, audited grant, a
refusal naming the field, the credit lines of an invoice run over REST, voiding a grant, a top-up's invoice, and
the organisation reading its own balance with its key."""

from __future__ import annotations

import secrets

from tests.integration.gateway.billing_setup import only_invoice, run_period, subscribed
from tests.integration.gateway.test_coupons_api import audited


async def test_grant_spend_void_and_read_over_rest(admin_http, invoicing, key_holder):
    organisation_id = await subscribed(admin_http, invoicing)  # on 999 INR + 0.05 a call since 1 October
    path = f"/api/v1/admin/organisations/{organisation_id}/credits"
    headers = {"Idempotency-Key": f"grant-{secrets.token_hex(4)}"}
    body = {"amount_minor": 50000, "currency": "INR", "priority": 1, "description": "Welcome credit"}
    first = await admin_http.post(f"{path}/grants", json=body, headers=headers)
    again = await admin_http.post(f"{path}/grants", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    grant = first.json()
    assert again.json()["id"] == grant["id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert (grant["amount"], grant["status"], grant["source"], grant["remaining_minor"]) == (
        "500.00", "available", "granted", 50000)
    [entry] = await audited(admin_http, grant["id"])
    assert (entry["action"], entry["after"]["amount_minor"]) == ("credit.grant", 50000)
    wrong = await admin_http.post(f"{path}/grants", json=body | {"currency": "USD"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "currency"
    spare = (await admin_http.post(f"{path}/grants", json={"amount_minor": 900, "currency": "INR",
                                                           "priority": 9})).json()

    run = await run_period(admin_http, organisation_id)
    assert (run["invoiced"], run["failed"]) == (1, 0), run
    invoice = await only_invoice(admin_http, organisation_id)
    # 999.00 + CGST and SGST 9 % (89.91 each) = 1178.82; the 500.00 grant then 9.00 of the spare pay 509.00.
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("999.00", "179.82", "1178.82")
    assert [(line["kind"], line["amount"], line["credit_grant_id"]) for line in invoice["credit_lines"]] == [
        ("credit", "-500.00", grant["id"]), ("credit", "-9.00", spare["id"])]
    assert (invoice["credits"], invoice["amount_due"]) == ("509.00", "669.82")

    voided = await admin_http.post(f"{path}/grants/{spare['id']}/void", json={"reason": "test"})
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    statement = (await admin_http.get(path)).json()
    assert statement["balances"] == [{"currency": "INR", "available_minor": 0, "available": "0.00",
                                      "pending_minor": 0}]
    assert sorted(c["amount_minor"] for c in statement["consumptions"]) == [900, 50000]
    assert {(c["kind"], c["refund_id"]) for c in statement["consumptions"]} == {("invoice", "")}
    assert [g["clawed_back_minor"] for g in statement["grants"]] == [0, 0]

    top_up = await admin_http.post(f"{path}/top-ups", json={"amount_minor": 100000, "currency": "INR"})
    assert top_up.status_code == 201, top_up.text
    assert top_up.json()["grant"]["status"] == "pending" and top_up.json()["invoice"]["status"] == "issued"
    assert top_up.json()["invoice"]["lines"][0]["kind"] == "credit_purchase"

    own = await key_holder.http.get("/api/v1/credits")
    assert own.status_code == 200 and own.json()["grants"] == []  # the key's organisation has none
    assert (await key_holder.http.get(path)).status_code == 401
