"""billing einvoices without a server: what each command sends to the gateway and how it reads the answer."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

URL = "http://gateway.test/api/v1/admin/einvoices"
ROW = {
    "document_id": "inv_1",
    "invoice_id": "inv_1",
    "document_type": "INV",
    "document_number": "INV/2627/00001",
    "irn": "a" * 64,
    "status": "failed",
    "attempts": 1,
    "ack_no": "",
    "acknowledged_at": None,
    "next_attempt_at": None,
    "cancelled_at": None,
    "last_error": "blocked before sending: more than 30 days",
}


def test_list_failed_by_default_across_pages(gateway):
    gateway.answer(200, {"data": [ROW], "next_page_token": "inv_1"})
    gateway.answer(200, {"data": [{**ROW, "document_id": "inv_2"}], "next_page_token": ""})
    code, out = billing("einvoices", "list", "--json")
    assert code == 0, out
    assert [r["document_id"] for r in json.loads(out)] == ["inv_1", "inv_2"]
    assert gateway.sent[0]["url"] == URL and gateway.sent[0]["params"]["status"] == "failed"
    assert gateway.sent[1]["params"]["page_token"] == "inv_1"


def test_list_as_a_table_and_a_bad_status(gateway):
    gateway.answer(200, {"data": [ROW], "next_page_token": ""})
    code, out = billing("einvoices", "list")
    assert code == 0 and "30 days" in out and "billing einvoices retry" in out
    code, out = billing("einvoices", "list", "--status", "lost")
    assert code == 1 and "--status must be one of" in out and len(gateway.sent) == 1


def test_retry_posts(gateway):
    gateway.answer(200, {**ROW, "status": "pending", "last_error": ""})
    code, out = billing("einvoices", "retry", "inv_1")
    assert code == 0 and "queued again" in out
    assert gateway.sent[0]["method"] == "POST" and gateway.sent[0]["url"] == f"{URL}/inv_1/retry"


def test_void_sends_the_irn_cancel_reason_only_when_given(gateway):
    invoice = {"id": "inv_1", "number": "INV/2627/00001", "status": "void"}
    gateway.answer(200, invoice)
    gateway.answer(200, invoice)
    billing("invoices", "void", "inv_1", "--reason", "wrong customer", "--irn-cancel-reason", "2", "--json")
    billing("invoices", "void", "inv_1", "--reason", "wrong customer", "--json")
    assert gateway.sent[0]["json"] == {"reason": "wrong customer", "irn_cancel_reason": "2"}
    assert gateway.sent[1]["json"] == {"reason": "wrong customer"}
