"""A credit note reaching payments through JetStream: an unpaid invoice credited in full is no longer collected
(dunning stopped, its order cancelled). (A partial credit lowering what is collected:
tests/integration/payments/test_partial_credit.py.)"""

from __future__ import annotations

import json

from tests.integration.gateway.billing_setup import billing, issued_invoice, known_to_payments
from tests.integration.gateway.conftest import eventually


async def test_an_unpaid_invoice_credited_in_full_is_not_dunned(payments_gateway, admin, invoicing):
    _, invoice = await issued_invoice(admin, invoicing)
    invoice_id = invoice["id"]
    await known_to_payments(payments_gateway, invoice_id)
    path = f"/api/v1/admin/invoices/{invoice_id}/credit-notes"
    partial = await admin.post(path, json={"lines": [{"line_number": 1, "amount_minor": 100}],
                                           "reason_code": "goodwill", "reason": "rounding", "outcome": "credit"})
    assert partial.status_code == 201, partial.text
    whole = await admin.post(path, json={"whole": True, "reason_code": "cancellation", "reason": "cancelled",
                                         "outcome": "credit"})
    assert whole.status_code == 201, whole.text
    number = whole.json()["number"]

    async def stopped() -> dict | None:
        code, out = await billing(payments_gateway, "dunning", "show", invoice_id, "--json")
        found = json.loads(out) if code == 0 else {}
        return found if found.get("state") == "stopped" else None

    dunning = await eventually(stopped, what="dunning stopped by the credit note")
    assert number in json.dumps(dunning)
    settled = (await admin.get(f"/api/v1/admin/invoices/{invoice_id}")).json()
    assert (settled["status"], settled["amount_due_minor"]) == ("paid", 0)
