"""The credit note routes in front of a fake invoicing stub: what each asks invoicing, what it answers, what it
audits, who may call them, and an organisation seeing only its own credit notes."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

NOTE = pb.CreditNote(
    id="cn_1", invoice_id="inv_1", organisation_id="org_1", number="CN/2627/00001", currency="INR",
    issue_date="2026-11-20", reason_code=pb.CREDIT_NOTE_REASON_SERVICE_ISSUE, reason="Outage",
    outcome=pb.CREDIT_NOTE_OUTCOME_REFUND,
    lines=[pb.CreditNoteLine(invoice_line_number=1, description="Base fee", quantity="0", unit_price="10000",
                             amount_minor=250_000, gst_rate="18")],
    tax_lines=[pb.TaxLine(kind=pb.TAX_KIND_IGST, rate="18", taxable_minor=250_000, amount_minor=45_000)],
    subtotal_minor=250_000, tax_minor=45_000, total_minor=295_000, invoice_number="INV/2627/00001",
    invoice_issue_date="2026-11-01", tax_regime=pb.TAX_REGIME_INTER_STATE, refund_minor=295_000,
    refund_state=pb.CREDIT_NOTE_REFUND_STATE_REQUESTED, refund_ids=["rfd_1"],
)


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def test_create_sends_the_lines_answers_the_credit_note_and_is_audited_once(gateway):
    gateway.invoicing.answer("CreateCreditNote", pb.CreateCreditNoteResponse(credit_note=NOTE, created=True),
                             pb.CreateCreditNoteResponse(credit_note=NOTE, created=False))
    body = {"lines": [{"line_number": 1, "amount_minor": 250000}], "reason_code": "service_issue",
            "reason": "Outage", "outcome": "refund"}
    headers = {**ADMIN, "Idempotency-Key": "k1"}
    first = gateway.http.post("/api/v1/admin/invoices/inv_1/credit-notes", headers=headers, json=body)
    assert first.status_code == 201, first.text
    got = first.json()
    assert (got["number"], got["total"], got["tax"], got["tax_lines"][0]["kind"], got["refund_state"]) == (
        "CN/2627/00001", "2950.00", "450.00", "igst", "requested")
    sent = gateway.invoicing.requests["CreateCreditNote"][0]
    assert (sent.invoice_id, sent.lines[0].amount_minor, sent.reason_code, sent.outcome, sent.idempotency_key) == (
        "inv_1", 250_000, pb.CREDIT_NOTE_REASON_SERVICE_ISSUE, pb.CREDIT_NOTE_OUTCOME_REFUND, "k1")
    replay = gateway.http.post("/api/v1/admin/invoices/inv_1/credit-notes", headers=headers, json=body)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert gateway.audited() == [("credit_note.create", "cn_1")]


def test_refusals_pass_through_naming_the_field_and_nothing_is_audited(gateway):
    gateway.invoicing.answer("CreateCreditNote", InvalidArgument("is more than is left", field="lines[0].amount_minor"),
                             FailedPrecondition("nothing is left to credit"))
    body = {"whole": True, "reason_code": "goodwill", "reason": "x", "outcome": "credit"}
    first = gateway.http.post("/api/v1/admin/invoices/inv_1/credit-notes", headers=ADMIN, json=body)
    assert first.status_code == 400 and first.json()["field"] == "lines[0].amount_minor"
    second = gateway.http.post("/api/v1/admin/invoices/inv_1/credit-notes", headers=ADMIN, json=body)
    assert second.status_code == 422
    bad = gateway.http.post("/api/v1/admin/invoices/inv_1/credit-notes", headers=ADMIN,
                            json=body | {"outcome": "cash"})
    assert bad.status_code == 400
    assert gateway.audited() == []


def test_reads_and_renders(gateway):
    gateway.invoicing.answer("ListCreditNotes", pb.ListCreditNotesResponse(credit_notes=[NOTE]),
                             pb.ListCreditNotesResponse(credit_notes=[NOTE]))
    listed = gateway.http.get("/api/v1/admin/invoices/inv_1/credit-notes", headers=ADMIN)
    assert listed.json()["data"][0]["id"] == "cn_1"
    assert gateway.http.get("/api/v1/admin/organisations/org_1/credit-notes", headers=ADMIN).status_code == 200
    sent = gateway.invoicing.requests["ListCreditNotes"]
    assert (sent[0].invoice_id, sent[1].organisation_id) == ("inv_1", "org_1")
    gateway.invoicing.answer("GetCreditNote", pb.GetCreditNoteResponse(credit_note=NOTE))
    assert gateway.http.get("/api/v1/admin/credit-notes/cn_1", headers=ADMIN).json()["reason_code"] == "service_issue"
    gateway.invoicing.answer("RenderCreditNote", pb.RenderCreditNoteResponse(
        content=b"%PDF-1.4", content_type="application/pdf", filename="CN-2627-00001.pdf"))
    pdf = gateway.http.get("/api/v1/admin/credit-notes/cn_1/pdf", headers=ADMIN)
    assert pdf.content == b"%PDF-1.4" and 'filename="CN-2627-00001.pdf"' in pdf.headers["content-disposition"]


def test_a_viewer_reads_but_cannot_create(gateway):
    viewer = gateway.staff("viewer")
    response = gateway.http.post("/api/v1/admin/invoices/inv_1/credit-notes", headers=viewer, json={})
    assert response.status_code == 403
    assert "CreateCreditNote" not in gateway.invoicing.requests


def test_an_organisation_sees_only_its_own_credit_notes(gateway):
    gateway.add_key("bk_mine", "org_1")
    key = {"Authorization": "Bearer bk_mine"}
    other = pb.CreditNote(id="cn_2", organisation_id="org_2", invoice_id="inv_2", currency="INR")
    gateway.invoicing.answer("GetCreditNote", pb.GetCreditNoteResponse(credit_note=other),
                             pb.GetCreditNoteResponse(credit_note=other), NotFound("no credit note"))
    assert gateway.http.get("/api/v1/credit-notes/cn_2", headers=key).status_code == 404
    assert gateway.http.get("/api/v1/credit-notes/cn_2/pdf", headers=key).status_code == 404
    assert gateway.http.get("/api/v1/credit-notes/cn_gone", headers=key).status_code == 404
    assert "RenderCreditNote" not in gateway.invoicing.requests

    gateway.invoicing.answer("ListCreditNotes", pb.ListCreditNotesResponse(credit_notes=[NOTE]))
    mine = gateway.http.get("/api/v1/credit-notes", headers=key)
    assert mine.status_code == 200 and gateway.invoicing.requests["ListCreditNotes"][0].organisation_id == "org_1"
    member = gateway.org_user("member", "org_1")
    gateway.invoicing.replies["GetCreditNote"].clear()
    gateway.invoicing.answer("GetCreditNote", pb.GetCreditNoteResponse(credit_note=NOTE))
    own = gateway.http.get("/api/v1/credit-notes/cn_1", headers=member)
    assert own.status_code == 200, own.text
    assert own.json()["id"] == "cn_1"
    gateway.invoicing.answer("GetInvoice", pb.GetInvoiceResponse(
        invoice=pb.Invoice(id="inv_2", organisation_id="org_2", status=pb.INVOICE_STATUS_ISSUED, currency="INR")))
    assert gateway.http.get("/api/v1/invoices/inv_2/credit-notes", headers=key).status_code == 404
