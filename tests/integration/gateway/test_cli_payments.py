"""billing payments | refunds, and Razorpay Checkout for a key holder, against the real invoicing and payments
services, with payments pointed at the Razorpay sandbox: an invoice is issued, payments makes its order, a
person pays on the sandbox's hosted page, the key holder hands Checkout's signed answer on, and the operator
refunds; offline payments and their refunds too."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from billing_runtime.service import Runtime
from sandboxes.razorpay import RunningSandbox, running_sandbox
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import running_service
from tests.integration.gateway.billing_setup import billing, only_invoice, run_period, subscribed
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually, new_project

KEY_ID = "rzp_test_CliPayments001"
KEY_SECRET = "cli_payments_key_secret"


# Module-scoped: a payments service left running would make orders for later modules' invoices at this
# module's sandbox (they share the database and the invoice stream).
@pytest.fixture(scope="module")
async def razorpay() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(key_id=KEY_ID, key_secret=KEY_SECRET, webhook_secret="unused") as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
async def payments(database_url, nats_url, invoicing, razorpay) -> AsyncIterator[Runtime]:
    # No webhooks reach payments here (the sandbox keeps them in its log): a payment known from Checkout's
    # answer is fetched from the provider at once (capture_after 0), as it is when a webhook is late.
    async with running_service(
        PAYMENTS, database_url, nats_url, razorpay_key_id=KEY_ID, razorpay_key_secret=KEY_SECRET,
        razorpay_base_url=razorpay.url, checkout_url_template=f"{razorpay.url}/checkout/{{order_id}}",
        capture_after_seconds=0, worker_interval_seconds=0.1, provider_retry_base_seconds=0.2,
        daily_reconciliation=False, invoice_events_durable=f"payments-cli-{secrets.token_hex(3)}",
    ) as runtime:
        yield runtime


@pytest.fixture(scope="module")
async def payments_gateway(database_url, nats_url, ingest, invoicing, metering, payments) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=payments.address,
    ) as runtime:
        yield runtime.http_address


@pytest.fixture
async def admin(payments_gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=payments_gateway, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as client:
        yield client


async def issued_invoice(admin: httpx.AsyncClient, invoicing) -> tuple[str, dict]:
    """(organisation id, invoice) of an organisation invoiced for October: 999.00 + 18 % GST = 1178.82 INR."""
    organisation_id = await subscribed(admin, invoicing)
    run = await run_period(admin, organisation_id)
    assert run["invoiced"] == 1, run
    return organisation_id, await only_invoice(admin, organisation_id)


async def known_to_payments(gateway: str, invoice_id: str) -> str:
    """`billing payments invoice`, once payments has consumed invoice.issued."""

    async def shown() -> str | None:
        code, out = await billing(gateway, "payments", "invoice", invoice_id)
        return out if code == 0 else None

    return await eventually(shown, what=f"payments to know invoice {invoice_id}")


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
    assert (options["key_id"], options["amount_minor"], options["currency"]) == (KEY_ID, 117882, "INR")
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
