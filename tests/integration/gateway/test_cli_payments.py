"""billing payments | refunds, and Razorpay Checkout for a key holder, against the real invoicing and payments
services, with payments pointed at the Razorpay sandbox: an invoice is issued, payments makes its order, a
person pays on the sandbox's hosted page, the key holder hands Checkout's signed answer on, and the operator
refunds; offline payments and their refunds too."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.integration.gateway.billing_setup import billing, issued_invoice, known_to_payments
from tests.integration.gateway.conftest import RAZORPAY_KEY_ID, eventually, new_project


async def test_offline_payment_recorded_once_then_refunded(payments_gateway, admin, invoicing):
    _, invoice = await issued_invoice(admin, invoicing)
    invoice_id = invoice["id"]
    assert "total 1178.82 INR, captured 0.00" in await known_to_payments(payments_gateway, invoice_id)

    reference = f"UTR{secrets.token_hex(4)}"
    record = ("payments", "record", invoice_id, "--amount", "1000.00", "--currency", "INR", "--method",
              "bank_transfer", "--reference", reference, "--note", "NEFT from HDFC")
    code, out = await billing(payments_gateway, *record)
    assert code == 0 and "recorded" in out and reference in out, out
    code, out = await billing(payments_gateway, *record)
    assert code == 0 and "Already recorded" in out, out
    code, out = await billing(payments_gateway, "payments", "record", invoice_id, "--amount", "10.005", "--currency",
                              "INR", "--method", "cash", "--reference", "R-2")
    assert code == 1 and out == "400: amount: has 3 decimals but INR has 2"

    code, out = await billing(payments_gateway, "payments", "list", "--invoice", invoice_id, "--json")
    (payment,) = json.loads(out)
    assert (payment["provider"], payment["status"], payment["amount_minor"], payment["method"]) == (
        "offline", "captured", 100000, "bank_transfer")

    code, out = await billing(payments_gateway, "refunds", "create", payment["id"], "--amount", "250.50",
                              "--reason", "Overpaid", "--idempotency-key", f"k-{reference}")
    assert code == 0 and "requested" in out and "250.50" in out, out
    code, out = await billing(payments_gateway, "refunds", "create", payment["id"], "--amount", "250.50",
                              "--reason", "Overpaid", "--idempotency-key", f"k-{reference}")
    assert code == 0 and "Already requested with this key" in out, out
    code, out = await billing(payments_gateway, "refunds", "create", payment["id"], "--amount", "900.00",
                              "--reason", "Too much")
    assert code == 1 and out.startswith("422"), out  # 749.50 is left

    code, out = await billing(payments_gateway, "refunds", "list", "--payment", payment["id"], "--json")
    (refund,) = json.loads(out)
    assert (refund["amount_minor"], refund["status"]) == (25050, "processed")  # offline: paid back by hand
    code, out = await billing(payments_gateway, "payments", "show", payment["id"])
    assert code == 0 and refund["id"] in out and "NEFT from HDFC" in out
    code, out = await billing(payments_gateway, "payments", "invoice", invoice_id)
    assert "captured 1000.00, refunded 250.50" in out


async def test_key_holder_pays_through_checkout_and_the_operator_refunds(
    payments_gateway, admin, invoicing, invoicing_stub, ingest_stub, razorpay
):
    organisation_id, invoice = await issued_invoice(admin, invoicing)
    invoice_id = invoice["id"]

    async def checkout() -> tuple[int, str]:
        return await billing(payments_gateway, "payments", "checkout", invoice_id, "--json")

    # Payments makes the order in the background after invoice.issued; until then checkout is 422.
    code, out = await eventually(checkout, lambda result: result[0] == 0, what="the invoice's order")
    options = json.loads(out)
    assert (options["key_id"], options["amount_minor"], options["currency"]) == (RAZORPAY_KEY_ID, 117882, "INR")
    assert options["checkout_url"] == f"{razorpay.url}/checkout/{options['order_id']}"

    _, _, secret = await new_project(invoicing_stub, ingest_stub, organisation_id)
    _, _, stranger = await new_project(invoicing_stub, ingest_stub)
    async with httpx.AsyncClient(base_url=payments_gateway, timeout=30) as http:
        mine = await http.get(f"/api/v1/invoices/{invoice_id}/checkout", headers={"Authorization": f"Bearer {secret}"})
        assert mine.status_code == 200 and mine.json() == options
        assert mine.json()["prefill"]["email"] == "billing@acme.example"
        theirs = await http.get(f"/api/v1/invoices/{invoice_id}/checkout",
                                headers={"Authorization": f"Bearer {stranger}"})
        assert theirs.status_code == 404

        # A person pays on the sandbox's hosted page; Checkout hands the browser a signed answer.
        paid = await http.post(f"{options['checkout_url']}/pay", data={
            "method": "upi", "vpa": "success@razorpay", "callback_url": "https://merchant.example/return",
            "callback_method": "get"})
        assert paid.status_code == 303, paid.text
        answer = {name: values[0] for name, values in parse_qs(urlsplit(paid.headers["location"]).query).items()}
        forged = await http.post(f"/api/v1/invoices/{invoice_id}/checkout/verify",
                                 headers={"Authorization": f"Bearer {secret}"},
                                 json={**answer, "razorpay_signature": "0" * 64})
        assert forged.status_code == 400 and forged.json()["field"] == "razorpay_signature"
        verified = await http.post(f"/api/v1/invoices/{invoice_id}/checkout/verify",
                                   headers={"Authorization": f"Bearer {secret}"}, json=answer)
        assert verified.status_code == 200, verified.text
        assert verified.json()["provider_payment_id"] == answer["razorpay_payment_id"]

    async def captured() -> dict | None:
        code, out = await billing(payments_gateway, "payments", "invoice", invoice_id, "--json")
        found = json.loads(out) if code == 0 else {}
        return found if found.get("amount_captured_minor") == 117882 else None

    collection = await eventually(captured, what="the payment fetched from the provider as captured")
    (payment,) = collection["payments"]
    assert (payment["status"], payment["method"], payment["provider"]) == ("captured", "upi", "razorpay")

    code, out = await billing(payments_gateway, "refunds", "create", payment["id"], "--amount", "100.00", "--reason",
                              "Goodwill")
    assert code == 0 and "--idempotency-key cli-refund-" in out, out
    code, out = await billing(payments_gateway, "refunds", "list", "--invoice", invoice_id, "--json")
    (refund,) = json.loads(out)
    assert refund["amount_minor"] == 10000 and refund["status"] in ("requested", "pending", "processed")

    code, out = await billing(payments_gateway, "payments", "webhooks", "--json")
    assert code == 0 and isinstance(json.loads(out), list)
