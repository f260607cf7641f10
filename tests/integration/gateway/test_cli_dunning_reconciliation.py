"""billing dunning | reconciliation | payments link | payments review | invoices history against the real invoicing
and payments services, with payments pointed at the Razorpay sandbox: an issued invoice's dunning and its
organisation's policy, a payment link, then the invoice paid on the sandbox's hosted page and its amount changed
there behind our back, which a reconciliation run over the CLI reports (exit 1) until it is resolved."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.integration.gateway.billing_setup import billing, issued_invoice, known_to_payments
from tests.integration.gateway.conftest import eventually, new_project


async def pay_through_checkout(gateway: str, invoice_id: str, api_key: str) -> dict:
    """Pay the invoice's order on the sandbox's hosted page, hand Checkout's answer on with the organisation's key,
    and wait for payments to hold the payment as captured; the payment, as `billing payments invoice` has it."""

    async def options() -> tuple[int, str]:
        return await billing(gateway, "payments", "checkout", invoice_id, "--json")

    _, out = await eventually(options, lambda result: result[0] == 0, what="the invoice's order")
    checkout_url = json.loads(out)["checkout_url"]
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        paid = await http.post(f"{checkout_url}/pay", data={
            "method": "upi", "vpa": "success@razorpay", "callback_url": "https://merchant.example/return",
            "callback_method": "get"})
        assert paid.status_code == 303, paid.text
        answer = {name: values[0] for name, values in parse_qs(urlsplit(paid.headers["location"]).query).items()}
        verified = await http.post(f"/api/v1/invoices/{invoice_id}/checkout/verify", json=answer,
                                   headers={"Authorization": f"Bearer {api_key}"})
        assert verified.status_code == 200, verified.text

    async def captured() -> dict | None:
        code, out = await billing(gateway, "payments", "invoice", invoice_id, "--json")
        found = json.loads(out) if code == 0 else {}
        return found["payments"][0] if found.get("amount_captured_minor") == 117882 else None

    return await eventually(captured, what="the payment fetched from the provider as captured")


async def test_dunning_and_its_policy(payments_gateway, admin, invoicing):
    organisation_id, invoice = await issued_invoice(admin, invoicing)
    invoice_id = invoice["id"]
    await known_to_payments(payments_gateway, invoice_id)

    # Issued today and due later: scheduled, no attempt made yet, the default policy (three attempts).
    code, out = await billing(payments_gateway, "dunning", "show", invoice_id, "--json")
    assert code == 0, out
    dunning = json.loads(out)
    assert (dunning["invoice_id"], dunning["state"], dunning["attempts"]) == (invoice_id, "scheduled", 0)
    assert dunning["due_at"] is not None and dunning["policy"]["max_attempts"] == 3
    code, out = await billing(payments_gateway, "dunning", "show", invoice_id)
    assert code == 0 and f"Dunning of invoice {invoice_id}" in out and "0 of 3" in out, out

    code, out = await billing(payments_gateway, "dunning", "policy", organisation_id)
    assert code == 0 and "default" in out and "at most 14d apart" in out, out
    code, out = await billing(payments_gateway, "dunning", "policy", organisation_id, "--set", "--retry-days",
                              "1,3,7")
    assert code == 0 and "Dunning policy set" in out and "days 1, 3, 7 after the due date" in out, out
    code, out = await billing(payments_gateway, "dunning", "policy", organisation_id, "--json")
    assert json.loads(out) == {"organisation_id": organisation_id, "own": True, "policy": {
        "max_attempts": 3, "retry_days": [1, 3, 7], "base_seconds": 86400, "factor": "2", "cap_seconds": 1209600}}
    code, out = await billing(payments_gateway, "dunning", "policy", organisation_id, "--set", "--max-attempts", "2",
                              "--retry-days", "1")
    assert (code, out) == (1, "400: retry_days: must give one day per attempt (as many as max_attempts)")
    code, out = await billing(payments_gateway, "dunning", "policy", organisation_id, "--clear", "--json")
    assert code == 0 and json.loads(out)["own"] is False
    code, out = await billing(payments_gateway, "dunning", "policy", "org_does_not_exist")
    assert code == 1 and out.startswith("404"), out

    # The invoice in dunning keeps the policy it started with.
    code, out = await billing(payments_gateway, "dunning", "show", invoice_id, "--json")
    assert json.loads(out)["policy"] == dunning["policy"]


async def test_a_tampered_payment_is_reported_by_reconciliation_until_resolved(
    payments_gateway, admin, invoicing, invoicing_stub, ingest_stub, razorpay
):
    organisation_id, invoice = await issued_invoice(admin, invoicing)
    invoice_id = invoice["id"]
    await known_to_payments(payments_gateway, invoice_id)

    code, out = await billing(payments_gateway, "payments", "link", invoice_id)
    assert code == 0 and "Payment link made for 1178.82 INR" in out, out
    code, again = await billing(payments_gateway, "payments", "link", invoice_id)
    assert code == 0 and "open payment link (made before)" in again, again
    code, out = await billing(payments_gateway, "payments", "link", invoice_id, "--json")
    link = json.loads(out)
    assert link["short_url"] in again and (link["amount_minor"], link["status"]) == (117882, "created")

    # The window is this test's own (whole seconds, as the provider lists by them), so nothing of other tests'
    # is in it.
    start = datetime.now(UTC).replace(microsecond=0)
    _, _, api_key = await new_project(invoicing_stub, ingest_stub, organisation_id)
    payment = await pay_through_checkout(payments_gateway, invoice_id, api_key)
    await asyncio.sleep(1)  # so the end, in whole seconds, is after the payment
    end = datetime.now(UTC).replace(microsecond=0)
    window = ("--from", start.isoformat(), "--to", end.isoformat())

    code, out = await billing(payments_gateway, "reconciliation", "run", *window)
    assert code == 0 and "clean: no discrepancies" in out, out

    # Behind our back, the provider now says less was paid.
    await razorpay.control.tamper_payment(payment["provider_payment_id"], amount=100000)
    window = ("--from", (start - timedelta(seconds=1)).isoformat(), "--to", end.isoformat())
    code, out = await billing(payments_gateway, "reconciliation", "run", *window)
    assert code == 1, out  # so a cron job notices
    assert "amount_mismatch" in out and "amount: ours 117882, the provider's 100000 minor units" in out, out
    assert payment["provider_payment_id"] in out and payment["id"] in out
    # Run again, the open discrepancy is found again: still one.
    code, out = await billing(payments_gateway, "reconciliation", "run", *window, "--json")
    latest = json.loads(out)
    assert code == 1 and len(latest["discrepancies"]) == 1, out

    code, out = await billing(payments_gateway, "reconciliation", "discrepancies", "--json")
    (found,) = [d for d in json.loads(out) if d["provider_id"] == payment["provider_payment_id"]]
    assert (found["kind"], found["our_id"], found["resolved"]) == ("amount_mismatch", payment["id"], False)
    code, out = await billing(payments_gateway, "reconciliation", "resolve", found["id"], "--note",
                              "Provider corrected the amount")
    assert code == 0 and f"Discrepancy {found['id']} resolved" in out, out
    code, out = await billing(payments_gateway, "reconciliation", "discrepancies", "--json")
    assert found["id"] not in {d["id"] for d in json.loads(out)}
    # A discrepancy is listed under the last run that found it.
    code, out = await billing(payments_gateway, "reconciliation", "show", latest["id"])
    assert code == 0 and "Provider corrected the amount" in out, out
    code, out = await billing(payments_gateway, "reconciliation", "show", found["run_id"])
    assert code == 0 and "found again by a later run" in out, out
    code, out = await billing(payments_gateway, "reconciliation", "list", "--json")
    assert {found["run_id"], latest["id"]} <= {r["id"] for r in json.loads(out)}

    # Invoicing settled the invoice from the payment: its history says so, dunning stopped, nothing to review.
    async def paid() -> str | None:
        code, out = await billing(payments_gateway, "invoices", "history", invoice_id, "--json")
        return out if code == 0 and json.loads(out)[-1]["to_status"] == "paid" else None

    history = json.loads(await eventually(paid, what="invoicing to settle the invoice"))
    assert "issued" in [c["to_status"] for c in history] and history[-1]["from_status"] == "issued"
    code, out = await billing(payments_gateway, "invoices", "history", invoice_id)
    assert code == 0 and f"Status history of invoice {invoice_id}" in out

    async def stopped() -> dict | None:
        _, out = await billing(payments_gateway, "dunning", "show", invoice_id, "--json")
        dunning = json.loads(out)
        return dunning if dunning["state"] == "stopped" else None

    await eventually(stopped, what="dunning to stop once paid")
    code, out = await billing(payments_gateway, "payments", "review", "--organisation", organisation_id, "--json")
    assert (code, json.loads(out)) == (0, [])
