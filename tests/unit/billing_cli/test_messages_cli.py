"""billing messages without a server: what each command sends to the gateway (filters, the resend's idempotency
key, the recipients' lists) and how it reads the answer. The gateway's HTTP is replaced by a recorder; the
commands against a real notification service are in tests/integration/gateway/test_messages.py."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

MESSAGE = {"id": "msg_1", "organisation_id": "org_1", "invoice_id": "inv_1", "kind": "invoice_issued",
           "recipient": "billing@acme.example", "cc": ["cfo@acme.example"], "subject": "Invoice INV/2026/0001",
           "state": "failed", "event_id": "evt_1", "message_id_header": "<abc@billing.example>", "attempts": 1,
           "last_reply": "550 5.1.1 no such user", "created_at": "2026-11-15T18:30:00Z", "sent_at": None,
           "next_attempt_at": None}
ATTEMPT = {"number": 1, "started_at": "2026-11-15T18:30:00Z", "ended_at": "2026-11-15T18:30:01Z",
           "outcome": "permanent", "reply": "550 5.1.1 no such user"}
RECIPIENTS = {"organisation_id": "org_1", "cc": ["cfo@acme.example"], "opted_out": ["payment_retry"]}
ADMIN_RECIPIENTS = "http://gateway.test/api/v1/admin/organisations/org_1/recipients"


def test_list_passes_its_filters_and_follows_pages(gateway):
    gateway.answer(200, {"data": [MESSAGE], "next_page_token": "t2"})
    gateway.answer(200, {"data": [{**MESSAGE, "id": "msg_2"}], "next_page_token": ""})
    code, out = billing("messages", "list", "--organisation", "org_1", "--invoice", "inv_1", "--kind",
                        "invoice_issued", "--state", "failed", "--json")
    assert code == 0 and [m["id"] for m in json.loads(out)] == ["msg_1", "msg_2"]
    assert gateway.sent[0]["url"] == "http://gateway.test/api/v1/admin/messages"
    assert gateway.sent[0]["params"] == {"organisation_id": "org_1", "invoice_id": "inv_1", "kind": "invoice_issued",
                                         "state": "failed", "page_size": 500, "page_token": ""}
    assert gateway.sent[1]["params"]["page_token"] == "t2"


def test_list_as_a_table_sends_no_empty_filters(gateway):
    gateway.answer(200, {"data": [MESSAGE], "next_page_token": ""})
    code, out = billing("messages", "list")
    assert code == 0 and "1 message(s)" in out and "msg_1" in out and "cfo@acme.example" in out
    assert gateway.sent[0]["params"] == {"page_size": 500, "page_token": ""}


def test_an_unknown_kind_is_the_gateways_one_line_refusal(gateway):
    gateway.answer(400, {"error": "invalid_argument", "field": "kind",
                         "detail": "kind: Input should be 'invoice_issued', 'payment_receipt' ..."})
    code, out = billing("messages", "list", "--kind", "reminder")
    assert code == 1 and out.startswith("400: kind:")


def test_show_has_the_attempts_and_says_what_to_do_about_a_failure(gateway):
    gateway.answer(200, {**MESSAGE, "delivery_attempts": [ATTEMPT]})
    code, out = billing("messages", "show", "msg_1")
    assert code == 0, out
    assert gateway.sent[0]["url"] == "http://gateway.test/api/v1/admin/messages/msg_1"
    assert "Delivery attempts of msg_1" in out and "550 5.1.1 no such user" in out and "permanent" in out
    assert "billing messages resend msg_1" in out and "<abc@billing.example>" in out


def test_show_of_an_unknown_message_asks_the_operator_to_check(gateway):
    gateway.answer(200, {**MESSAGE, "state": "unknown", "delivery_attempts": [{**ATTEMPT, "outcome": "unknown"}]})
    code, out = billing("messages", "show", "msg_1")
    assert code == 0 and "check with the recipient" in out


def test_show_json_is_the_apis(gateway):
    body = {**MESSAGE, "state": "queued", "next_attempt_at": "2026-11-15T18:31:00Z", "delivery_attempts": []}
    gateway.answer(200, body)
    code, out = billing("messages", "show", "msg_1", "--json")
    assert code == 0 and json.loads(out) == body


PREVIEW = {"subject": "Invoice INV/2026/0001", "html": "<html><body><p>Dear Acme [1]</p></body></html>",
           "text": "Dear Acme [1],\nyour invoice is attached.", "attachments": ["INV-2026-0001.pdf"]}


def test_preview_prints_subject_attachments_and_text_as_written(gateway):
    gateway.answer(200, PREVIEW)
    code, out = billing("messages", "preview", "msg_1")
    assert code == 0, out
    assert gateway.sent[0]["url"] == "http://gateway.test/api/v1/admin/messages/msg_1/preview"
    assert "Subject: Invoice INV/2026/0001" in out and "Attachments: INV-2026-0001.pdf" in out
    assert "Dear Acme [1],\nyour invoice is attached." in out  # [1] is text, not rich markup
    assert "<html>" not in out


def test_preview_writes_the_html_when_asked(gateway, tmp_path):
    gateway.answer(200, PREVIEW)
    target = tmp_path / "preview.html"
    code, out = billing("messages", "preview", "msg_1", "--html", str(target))
    assert code == 0 and target.read_text(encoding="utf-8") == PREVIEW["html"]
    assert f"HTML written to {target}" in out.replace("\n", "")


def test_preview_to_a_file_that_cannot_be_written_is_one_line(gateway, tmp_path):
    gateway.answer(200, PREVIEW)
    code, out = billing("messages", "preview", "msg_1", "--html", str(tmp_path / "missing" / "p.html"))
    assert code == 1 and out.startswith("cannot write")


def test_resend_generates_a_key_sends_it_and_prints_it(gateway):
    gateway.answer(201, {**MESSAGE, "id": "msg_2", "state": "queued", "attempts": 0})
    code, out = billing("messages", "resend", "msg_1")
    assert code == 0, out
    (sent,) = gateway.sent
    key = sent["headers"]["Idempotency-Key"]
    assert (sent["method"], sent["url"]) == ("POST", "http://gateway.test/api/v1/admin/messages/msg_1/resend")
    assert key.startswith("cli-resend-") and f"--idempotency-key {key}" in out
    assert "Message msg_2 queued, a copy of msg_1" in out


def test_resend_keys_differ_per_run_unless_given(gateway):
    for _ in range(3):
        gateway.answer(201, MESSAGE)
    billing("messages", "resend", "msg_1")
    billing("messages", "resend", "msg_1")
    billing("messages", "resend", "msg_1", "--idempotency-key", "ops-7")
    keys = [s["headers"]["Idempotency-Key"] for s in gateway.sent]
    assert keys[0] != keys[1] and keys[2] == "ops-7"


def test_a_replayed_resend_says_so_and_a_failed_one_names_the_key(gateway):
    gateway.answer(200, {**MESSAGE, "id": "msg_2"}, {"Idempotent-Replayed": "true"})
    code, out = billing("messages", "resend", "msg_1", "--idempotency-key", "k")
    assert code == 0 and "Already resent with this key: message msg_2" in out
    code, out = billing("messages", "resend", "msg_1", "--idempotency-key", "k-42")
    assert code == 1 and "cannot reach the gateway" in out and "--idempotency-key k-42" in out


def test_recipients_are_shown_without_options(gateway):
    gateway.answer(200, RECIPIENTS)
    code, out = billing("messages", "recipients", "org_1")
    assert code == 0 and "cfo@acme.example" in out and "payment_retry" in out
    assert [(s["method"], s["url"]) for s in gateway.sent] == [("GET", ADMIN_RECIPIENTS)]


def test_cc_alone_keeps_the_opt_outs(gateway):
    gateway.answer(200, RECIPIENTS)
    gateway.answer(200, {**RECIPIENTS, "cc": ["a@acme.example", "b@acme.example"]})
    code, out = billing("messages", "recipients", "org_1", "--cc", "a@acme.example, b@acme.example")
    assert code == 0, out
    assert [s["method"] for s in gateway.sent] == ["GET", "PUT"]
    assert gateway.sent[1]["json"] == {"cc": ["a@acme.example", "b@acme.example"], "opted_out": ["payment_retry"]}
    assert "Recipients set" in out


def test_both_options_replace_both_without_reading_first(gateway):
    gateway.answer(200, RECIPIENTS)
    code, _ = billing("messages", "recipients", "org_1", "--cc", "", "--opt-out", "payment_retry,invoice_overdue",
                      "--json")
    assert code == 0
    (sent,) = gateway.sent
    assert sent["method"] == "PUT" and sent["json"] == {"cc": [], "opted_out": ["payment_retry", "invoice_overdue"]}


def test_clear_empties_both_and_refuses_other_options(gateway):
    gateway.answer(200, {**RECIPIENTS, "cc": [], "opted_out": []})
    code, out = billing("messages", "recipients", "org_1", "--clear")
    assert code == 0 and "Recipients cleared" in out and "every reminder is sent" in out
    assert gateway.sent[0]["json"] == {"cc": [], "opted_out": []}
    code, out = billing("messages", "recipients", "org_1", "--clear", "--cc", "a@acme.example")
    assert code == 1 and "choose one" in out and len(gateway.sent) == 1


def test_a_transactional_opt_out_is_the_gateways_refusal_naming_the_field(gateway):
    gateway.answer(200, RECIPIENTS)
    gateway.answer(400, {"error": "invalid_argument", "field": "opted_out",
                         "detail": "opted_out: invoice_issued cannot be opted out of: it is a document or a receipt"})
    code, out = billing("messages", "recipients", "org_1", "--opt-out", "invoice_issued")
    assert code == 1 and out.startswith("400: opted_out: invoice_issued cannot be opted out of")
