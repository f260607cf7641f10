"""Credit notes through the in-process gateway to the real invoicing service: a partial and then a whole credit
of an invoice issued by a run over REST, idempotent and audited, over-credit refused naming the field, the PDF, the
invoice owing less and then nothing, and the organisation's own key reading its credit notes (and not another's)."""

from __future__ import annotations

import httpx

from tests.integration.gateway.billing_setup import issued_invoice
from tests.integration.gateway.conftest import new_project

INVOICE_TOTAL = 117_882  # 999.00 + 9 % CGST 89.91 + 9 % SGST 89.91


async def test_partial_then_whole_credit_over_rest(admin_http, gateway_url, invoicing, invoicing_stub, ingest_stub):
    organisation_id, invoice = await issued_invoice(admin_http, invoicing)
    assert invoice["total_minor"] == INVOICE_TOTAL
    path = f"/api/v1/admin/invoices/{invoice['id']}/credit-notes"
    body = {"lines": [{"line_number": 1, "amount_minor": 9_990}], "reason_code": "billing_error",
            "reason": "Charged for a day the service was down", "outcome": "credit"}
    headers = {"Idempotency-Key": f"cn-{invoice['id']}"}
    first = await admin_http.post(path, json=body, headers=headers)
    again = await admin_http.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    note = first.json()
    assert again.json() == note and again.headers.get("Idempotent-Replayed") == "true"
    assert (note["subtotal"], note["tax"], note["total"]) == ("99.90", "17.98", "117.88")
    assert [(t["kind"], t["rate"], t["amount_minor"]) for t in note["tax_lines"]] == [
        ("cgst", "9", 899), ("sgst", "9", 899)]
    assert (note["invoice_number"], note["applied_to_due_minor"], note["refund_state"]) == (
        invoice["number"], 11_788, "not_needed")
    entries = (await admin_http.get("/api/v1/admin/audit-log", params={"resource_id": note["id"]})).json()
    assert [(e["action"], e["after"]["total_minor"]) for e in entries] == [("credit_note.create", 11_788)]

    over = await admin_http.post(path, json=body | {"lines": [{"line_number": 1, "amount_minor": 99_900 - 9_990 + 1}]})
    assert over.status_code == 400 and over.json()["field"] == "lines[0].amount_minor"
    unknown = await admin_http.post(path, json=body | {"lines": [{"line_number": 7, "amount_minor": 1}]})
    assert unknown.status_code == 400 and unknown.json()["field"] == "lines[0].line_number"
    after = (await admin_http.get(f"/api/v1/admin/invoices/{invoice['id']}")).json()
    assert (after["status"], after["amount_due_minor"], after["amount_credited_minor"]) == (
        "issued", INVOICE_TOTAL - 11_788, 11_788)

    whole = await admin_http.post(path, json={"whole": True, "reason_code": "cancellation", "reason": "Cancelled",
                                              "outcome": "credit"})
    assert whole.status_code == 201, whole.text
    assert whole.json()["total_minor"] == INVOICE_TOTAL - 11_788
    settled = (await admin_http.get(f"/api/v1/admin/invoices/{invoice['id']}")).json()
    assert (settled["status"], settled["amount_due_minor"], settled["amount_credited"]) == ("paid", 0, "1178.82")
    nothing_left = await admin_http.post(path, json={"whole": True, "reason_code": "other", "reason": "again",
                                                     "outcome": "credit"})
    assert nothing_left.status_code == 422

    listed = (await admin_http.get(path)).json()["data"]
    assert [n["id"] for n in listed] == [whole.json()["id"], note["id"]]
    by_org = (await admin_http.get(f"/api/v1/admin/organisations/{organisation_id}/credit-notes")).json()["data"]
    assert len(by_org) == 2
    pdf = await admin_http.get(f"/api/v1/admin/credit-notes/{note['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert note["number"].replace("/", "-") in pdf.headers["content-disposition"]

    _, _, secret = await new_project(invoicing_stub, ingest_stub, organisation_id)
    _, _, stranger = await new_project(invoicing_stub, ingest_stub)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        own = {"Authorization": f"Bearer {secret}"}
        assert (await http.get(f"/api/v1/credit-notes/{note['id']}", headers=own)).json()["number"] == note["number"]
        assert len((await http.get("/api/v1/credit-notes", headers=own)).json()["data"]) == 2
        assert len((await http.get(f"/api/v1/invoices/{invoice['id']}/credit-notes", headers=own)).json()["data"]) == 2
        mine = await http.get(f"/api/v1/credit-notes/{note['id']}/pdf", headers=own)
        assert mine.status_code == 200 and mine.content.startswith(b"%PDF")
        other = {"Authorization": f"Bearer {stranger}"}
        for url in (f"/api/v1/credit-notes/{note['id']}", f"/api/v1/credit-notes/{note['id']}/pdf",
                    f"/api/v1/invoices/{invoice['id']}/credit-notes"):
            assert (await http.get(url, headers=other)).status_code == 404, url
        assert (await http.get("/api/v1/credit-notes", headers=other)).json()["data"] == []
        assert (await http.post(path, headers=own, json=body)).status_code == 401
