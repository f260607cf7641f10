"""billing payments | refunds without a server: what each command sends to the gateway (amounts as the decimal
text typed, the refund's idempotency key) and how it reads the answer. The gateway's HTTP is replaced by a
recorder; the commands against real services are in tests/integration/gateway/test_cli_payments.py."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

PAYMENT = {"id": "pmt_1", "invoice_id": "inv_1", "organisation_id": "org_1", "provider": "offline",
           "provider_payment_id": "", "provider_order_id": "", "status": "captured", "currency": "INR",
           "amount_minor": 100000, "amount": "1000.00", "amount_refunded_minor": 0, "amount_refunded": "0.00",
           "method": "bank_transfer", "email": "", "contact": "", "error_code": "", "error_description": "",
           "error_reason": "", "reference": "UTR123", "note": "", "created_at": None, "authorized_at": None,
           "captured_at": "2026-11-05T05:00:00Z", "failed_at": None}
REFUND = {"id": "rfd_1", "payment_id": "pmt_1", "invoice_id": "inv_1", "organisation_id": "org_1",
          "provider_refund_id": "", "status": "processed", "currency": "INR", "amount_minor": 25050,
          "amount": "250.50", "reason": "Goodwill", "idempotency_key": "k", "error": None, "created_at": None,
          "processed_at": None}


def test_record_sends_the_amount_as_the_text_typed(gateway):
    gateway.answer(201, PAYMENT)
    code, out = billing("payments", "record", "inv_1", "--amount", "1000.10", "--currency", "INR", "--method",
                        "bank_transfer", "--reference", "UTR123", "--note", "NEFT", "--received-at",
                        "2026-11-05T10:30:00")
    assert code == 0, out
    (sent,) = gateway.sent
    assert (sent["method"], sent["url"]) == ("POST", "http://gateway.test/api/v1/admin/invoices/inv_1/offline-payments")
    # "1000.10" stays text: never 1000.1 through a float, and the gateway checks its decimals against INR.
    assert sent["json"] == {"amount": "1000.10", "currency": "INR", "method": "bank_transfer", "reference": "UTR123",
                            "note": "NEFT", "received_at": "2026-11-05T10:30:00Z"}
    assert "Payment pmt_1 recorded" in out and "UTR123" in out and "billing payments invoice inv_1" in out


def test_record_again_says_nothing_new_was_recorded(gateway):
    gateway.answer(200, PAYMENT, {"Idempotent-Replayed": "true"})
    code, out = billing("payments", "record", "inv_1", "--amount", "1000", "--currency", "INR", "--method", "cash",
                        "--reference", "UTR123")
    assert code == 0 and "Already recorded" in out and "nothing new" in out


def test_record_refuses_an_unknown_method_before_asking(gateway):
    code, out = billing("payments", "record", "inv_1", "--amount", "1", "--currency", "INR", "--method", "upi",
                        "--reference", "R")
    assert code == 1 and "bank_transfer, cheque, cash" in out and gateway.sent == []
    code, _ = billing("payments", "record", "inv_1", "--currency", "INR", "--method", "cash", "--reference", "R")
    assert code == 2 and gateway.sent == []  # --amount is required


def test_the_gateways_refusal_is_one_line_naming_the_field(gateway):
    gateway.answer(400, {"error": "invalid_argument", "detail": "amount: has 3 decimals but INR has 2",
                         "field": "amount"})
    code, out = billing("payments", "record", "inv_1", "--amount", "10.005", "--currency", "INR", "--method",
                        "cash", "--reference", "R")
    assert (code, out) == (1, "400: amount: has 3 decimals but INR has 2")


def test_refund_generates_a_key_sends_it_and_prints_it(gateway):
    gateway.answer(201, REFUND)
    code, out = billing("refunds", "create", "pmt_1", "--amount", "250.50", "--reason", "Goodwill")
    assert code == 0, out
    (sent,) = gateway.sent
    key = sent["headers"]["Idempotency-Key"]
    assert key.startswith("cli-refund-") and f"--idempotency-key {key}" in out
    assert sent["json"] == {"reason": "Goodwill", "amount": "250.50"}
    assert sent["url"].endswith("/api/v1/admin/payments/pmt_1/refunds") and "Refund rfd_1 requested" in out


def test_refund_keys_differ_per_run_unless_given(gateway):
    for _ in range(3):
        gateway.answer(201, REFUND)
    billing("refunds", "create", "pmt_1", "--reason", "x")
    billing("refunds", "create", "pmt_1", "--reason", "x")
    billing("refunds", "create", "pmt_1", "--reason", "x", "--idempotency-key", "mine-1")
    keys = [s["headers"]["Idempotency-Key"] for s in gateway.sent]
    assert keys[0] != keys[1] and keys[2] == "mine-1"
    assert gateway.sent[0]["json"] == {"reason": "x"}  # no amount: everything left


def test_a_failed_refund_says_which_key_to_retry_with(gateway):
    code, out = billing("refunds", "create", "pmt_1", "--reason", "x", "--idempotency-key", "k-42")
    assert code == 1 and "cannot reach the gateway" in out and "--idempotency-key k-42" in out


def test_a_replayed_refund_says_so_and_json_is_the_apis(gateway):
    gateway.answer(200, REFUND, {"Idempotent-Replayed": "true"})
    gateway.answer(200, REFUND, {"Idempotent-Replayed": "true"})
    code, out = billing("refunds", "create", "pmt_1", "--reason", "x", "--idempotency-key", "k")
    assert code == 0 and "Already requested with this key: refund rfd_1" in out
    code, out = billing("refunds", "create", "pmt_1", "--reason", "x", "--idempotency-key", "k", "--json")
    assert json.loads(out) == REFUND


def test_lists_pass_their_filters_and_follow_pages(gateway):
    gateway.answer(200, {"data": [PAYMENT], "next_page_token": "t2"})
    gateway.answer(200, {"data": [{**PAYMENT, "id": "pmt_2"}], "next_page_token": ""})
    code, out = billing("payments", "list", "--organisation", "org_1", "--invoice", "inv_1", "--json")
    assert code == 0 and [p["id"] for p in json.loads(out)] == ["pmt_1", "pmt_2"]
    assert gateway.sent[0]["params"] == {"organisation_id": "org_1", "invoice_id": "inv_1", "page_size": 500,
                                         "page_token": ""}
    assert gateway.sent[1]["params"]["page_token"] == "t2"
    gateway.answer(200, {"data": [REFUND], "next_page_token": ""})
    code, out = billing("refunds", "list", "--payment", "pmt_1")
    assert code == 0 and "rfd_1" in out and "250.50" in out
    assert gateway.sent[2]["params"]["payment_id"] == "pmt_1" and "invoice_id" not in gateway.sent[2]["params"]
    gateway.answer(200, {"data": [], "next_page_token": ""})
    code, out = billing("payments", "webhooks", "--event-type", "refund.processed", "--limit", "10")
    assert code == 0 and gateway.sent[3]["params"] == {"page_size": 10, "event_type": "refund.processed"}


def test_invoice_collection_says_why_the_order_failed(gateway):
    gateway.answer(200, {
        "invoice_id": "inv_1", "currency": "INR", "total_minor": 118000, "total": "1180.00",
        "amount_captured_minor": 100000, "amount_captured": "1000.00", "amount_refunded_minor": 0,
        "amount_refunded": "0.00", "amount_credited_minor": 0, "amount_credited": "0.00", "amount_due_minor": 18000,
        "amount_due": "180.00", "due_date": "2026-11-15", "payments": [PAYMENT], "refunds": [], "payment_links": [],
        "order": {"invoice_id": "inv_1", "organisation_id": "org_1", "invoice_number": "INV/1", "status": "failed",
                  "status_reason": "refused by the provider", "provider_order_id": "", "currency": "INR",
                  "amount_minor": 118000, "amount": "1180.00", "create_attempts": 3, "created_at": None,
                  "error": {"http_status": 400, "code": "BAD_REQUEST_ERROR", "description": "amount too large",
                            "field": "amount", "reason": "", "source": "", "step": ""}}})
    code, out = billing("payments", "invoice", "inv_1")
    assert code == 0, out
    assert "total 1180.00 INR, captured 1000.00, refunded 0.00, still due 180.00 (due date 2026-11-15)" in out
    assert "failed, refused by the provider; the provider said: 400 BAD_REQUEST_ERROR amount too large" in out
    assert "(field amount) after 3 attempts" in out and "UTR123" in out


def test_invoice_collection_shows_what_credit_notes_took_off_and_what_is_still_due(gateway):
    gateway.answer(200, {
        "invoice_id": "inv_1", "currency": "INR", "total_minor": 241417, "total": "2414.17",
        "amount_captured_minor": 50000, "amount_captured": "500.00", "amount_refunded_minor": 0,
        "amount_refunded": "0.00", "amount_credited_minor": 41417, "amount_credited": "414.17",
        "amount_due_minor": 150000, "amount_due": "1500.00", "due_date": "", "payments": [PAYMENT], "refunds": [],
        "payment_links": [], "order": None})
    code, out = billing("payments", "invoice", "inv_1")
    assert code == 0, out
    assert ("Invoice inv_1: total 2414.17 INR, captured 500.00, refunded 0.00, credited 414.17, still due 1500.00"
            in out) and "due date" not in out


def test_checkout_shows_checkouts_options_and_the_hosted_page(gateway):
    gateway.answer(200, {"key_id": "rzp_test_abc", "order_id": "order_1", "amount_minor": 118000,
                         "amount": "1180.00", "currency": "INR", "name": "Billing Platform", "description": "INV/1",
                         "prefill": {"name": "Acme", "email": "a@acme.example", "contact": ""},
                         "invoice_id": "inv_1", "invoice_number": "INV/1",
                         "checkout_url": "http://127.0.0.1:9/checkout/order_1"})
    code, out = billing("payments", "checkout", "inv_1")
    assert code == 0 and "rzp_test_abc" in out and "118000 (1180.00 INR)" in out
    assert "name=Acme, email=a@acme.example" in out and "Pay it at http://127.0.0.1:9/checkout/order_1" in out


LINK = {"id": "plk_1", "invoice_id": "inv_1", "provider_link_id": "plink_1", "short_url": "https://rzp.io/i/abc",
        "status": "created", "currency": "INR", "amount_minor": 117882, "amount": "1178.82", "created_at": None,
        "expires_at": "2026-11-15T18:30:00Z"}
ITEM = {"id": "rvw_1", "invoice_id": "inv_1", "organisation_id": "org_1", "kind": "over_payment",
        "detail": "over-payment: 100.00 INR more than was due", "event_id": "evt_1", "currency": "INR",
        "amount_minor": 10000, "amount": "100.00", "state": "open", "created_at": None, "resolved_at": None,
        "resolution": "", "resolved_by": ""}


def test_link_says_whether_it_was_made_or_still_open(gateway):
    gateway.answer(201, LINK)
    gateway.answer(200, LINK)
    code, out = billing("payments", "link", "inv_1")
    assert code == 0 and "Payment link made for 1178.82 INR: https://rzp.io/i/abc" in out, out
    assert "expires 2026-11-15T18:30:00Z" in out
    code, out = billing("payments", "link", "inv_1")
    assert "open payment link (made before)" in out
    assert [(s["method"], s["url"]) for s in gateway.sent] == [
        ("POST", "http://gateway.test/api/v1/admin/invoices/inv_1/payment-link")] * 2


def test_review_lists_open_items_unless_all_and_resolves_with_a_note(gateway):
    resolved = {**ITEM, "state": "resolved", "resolution": "Refunded the excess as rfd_1", "resolved_by": "admin"}
    gateway.answer(200, {"data": [ITEM], "next_page_token": ""})
    gateway.answer(200, {"data": [resolved], "next_page_token": ""})
    gateway.answer(200, resolved)
    code, out = billing("payments", "review")
    assert code == 0 and "1 open review item(s)" in out and "over_payment" in out and "100.00" in out, out
    assert "billing payments review resolve ID" in out
    assert gateway.sent[0]["params"] == {"state": "open", "page_size": 500, "page_token": ""}
    code, out = billing("payments", "review", "--all", "--organisation", "org_1", "--json")
    assert json.loads(out) == [resolved]
    assert gateway.sent[1]["params"] == {"state": "all", "organisation_id": "org_1", "page_size": 500,
                                         "page_token": ""}
    code, out = billing("payments", "review", "resolve", "rvw_1", "--note", "Refunded the excess as rfd_1")
    assert code == 0 and "Review item rvw_1 resolved" in out and "admin" in out, out
    assert (gateway.sent[2]["url"], gateway.sent[2]["json"]) == (
        "http://gateway.test/api/v1/admin/review-items/rvw_1/resolve", {"resolution": "Refunded the excess as rfd_1"})
    assert len(gateway.sent) == 3  # resolving does not list first


def test_invoice_history_is_its_status_changes(gateway):
    gateway.answer(200, [{"invoice_id": "inv_1", "from_status": None, "to_status": "issued",
                          "changed_at": "2026-11-01T00:00:00Z", "reason": "issued as INV/1", "cause": "invoice run r1"},
                         {"invoice_id": "inv_1", "from_status": "issued", "to_status": "paid",
                          "changed_at": "2026-11-05T00:00:00Z", "reason": "payment pmt_1 captured",
                          "cause": "payment.captured:pay_1"}])
    code, out = billing("invoices", "history", "inv_1")
    assert code == 0 and "Status history of invoice inv_1" in out and "payment pmt_1 captured" in out, out
    assert out.index("issued as INV/1") < out.index("payment pmt_1 captured")  # oldest first, as the API has them
    assert gateway.sent[0]["url"] == "http://gateway.test/api/v1/admin/invoices/inv_1/status-changes"


def test_provider_shows_sets_and_clears_an_organisations_choice(gateway):
    url = "http://gateway.test/api/v1/admin/organisations/org_1/payment-provider"
    gateway.answer(200, {"organisation_id": "org_1", "provider": "razorpay", "own": False,
                         "available": ["razorpay", "stripe"]})
    code, out = billing("payments", "provider", "org_1")
    assert code == 0 and "collects through razorpay (the default); configured here: razorpay, stripe" in out
    gateway.answer(200, {"organisation_id": "org_1", "provider": "stripe", "own": True, "available": []})
    code, out = billing("payments", "provider", "org_1", "--set", "stripe")
    assert code == 0 and "collects through stripe (its own choice)" in out
    gateway.answer(200, {"organisation_id": "org_1", "provider": "razorpay", "own": False, "available": []})
    assert billing("payments", "provider", "org_1", "--clear")[0] == 0
    assert [(s["method"], s["url"], s.get("json")) for s in gateway.sent] == [
        ("GET", url, None), ("PUT", url, {"provider": "stripe"}), ("DELETE", url, None)]


def test_provider_refuses_what_is_no_provider_before_asking(gateway):
    assert billing("payments", "provider", "org_1", "--set", "paypal") == (
        1, "--set must be razorpay or stripe; not 'paypal'")
    assert billing("payments", "provider", "org_1", "--set", "stripe", "--clear")[0] == 1
    assert gateway.sent == []
