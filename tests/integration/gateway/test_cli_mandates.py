"""billing mandates create | list | pause | cancel, run with typer's CliRunner against the gateway in front of the
real payments service and a Razorpay sandbox (no webhooks reach payments here: a mandate stays created until the
test confirms it through the webhook path elsewhere, tests/integration/payments/test_autodebit.py)."""

from __future__ import annotations

import json

from tests.integration.gateway.billing_setup import billing, organisation


async def test_create_list_pause_and_cancel_a_mandate(payments_gateway, admin, invoicing, razorpay):
    organisation_id = await organisation(admin, invoicing)
    create = ("mandates", "create", "--organisation", organisation_id, "--method", "upi", "--max-amount", "15000.00",
              "--contact", "+919000090000")
    status, out = await billing(payments_gateway, *create, "--json")
    assert status == 0, out
    [made] = json.loads(out)
    assert (made["state"], made["method"], made["max_amount_minor"]) == ("created", "upi", 1_500_000)
    assert made["checkout_url"].startswith(f"{razorpay.url}/checkout/order_") and "recurring=1" in made["checkout_url"]
    order = razorpay.sandbox.store.orders[made["authorisation_order_id"]]
    assert (order["_method"], order["_token"]["max_amount"], order["_token"]["frequency"]) == (
        "upi", 1_500_000, "as_presented")
    customer = razorpay.sandbox.store.customers[made["customer_id"]]
    assert customer["email"] == "billing@acme.example"  # the organisation's billing email
    status, again = await billing(payments_gateway, *create, "--json")
    assert status == 0 and json.loads(again)[0]["id"] == made["id"]  # the derived key replays

    status, table = await billing(payments_gateway, "mandates", "list", "--organisation", organisation_id)
    assert status == 0 and made["id"] in table and "INR 15000.00" in table and "created" in table
    status, out = await billing(payments_gateway, "mandates", "create", "--organisation", organisation_id,
                                "--method", "emandate", "--max-amount", "100000")
    assert status == 1 and "cancel it before making another" in out
    status, out = await billing(payments_gateway, "mandates", "pause", made["id"])
    assert status == 1 and "only a confirmed mandate can be paused" in out

    status, out = await billing(payments_gateway, "mandates", "cancel", made["id"])
    assert status == 0 and f"Mandate {made['id']} cancelled" in out
    status, out = await billing(payments_gateway, "mandates", "list", "--organisation", organisation_id, "--json")
    assert json.loads(out) == []
    status, out = await billing(payments_gateway, "mandates", "list", "--organisation", organisation_id, "--all",
                                "--json")
    assert [m["state"] for m in json.loads(out)] == ["cancelled"]
    audit = (await admin.get("/api/v1/admin/audit-log", params={"action": "mandate."})).json()
    assert {(e["action"], e["resource_id"]) for e in audit} >= {("mandate.create", made["id"]),
                                                                ("mandate.cancel", made["id"])}
