"""billing webhooks without a server: what each command sends to the gateway (the PATCH body of only the options
given, the rotation's overlap, the replay's idempotency key) and how it reads the answer (the secret printed on
create and rotate only, with a line saying it is shown once). The gateway's HTTP is replaced by a recorder; the
commands against a real notification service are in tests/integration/gateway/test_webhook_endpoints.py."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

ADMIN = "http://gateway.test/api/v1/admin"
SECRET = "whsec_c2VjcmV0LXNob3duLW9uY2U="
ENDPOINT = {"id": "wep_1", "organisation_id": "org_1", "url": "https://hooks.acme.example/billing",
            "event_types": ["invoice.issued", "invoice.paid"], "description": "ERP", "enabled": True,
            "disabled_reason": "", "created_at": "2026-11-15T18:30:00Z", "updated_at": "2026-11-15T18:30:00Z",
            "disabled_at": None, "previous_secret_expires_at": None}
DELIVERY = {"id": "dlv_1", "endpoint_id": "wep_1", "organisation_id": "org_1", "event_id": "test_1",
            "event_type": "webhook.test", "webhook_id": "msg_0123", "state": "failed", "attempts": 1,
            "last_status_code": 503, "last_error": "", "payload": '{"type": "webhook.test", "data": [1]}',
            "created_at": "2026-11-15T18:30:00Z", "delivered_at": None, "next_attempt_at": None}
ATTEMPT = {"number": 1, "started_at": "2026-11-15T18:30:00Z", "ended_at": "2026-11-15T18:30:01Z",
           "status_code": 503, "response_body": "[maintenance]", "duration_ms": 120, "error": ""}


# --- endpoints -----------------------------------------------------------------------------------------------


def test_create_sends_the_endpoint_and_prints_the_secret_once(gateway):
    gateway.answer(201, {**ENDPOINT, "secret": SECRET})
    code, out = billing("webhooks", "endpoints", "create", "org_1", "--url", "https://hooks.acme.example/billing",
                        "--event-types", "invoice.issued, invoice.paid", "--description", "ERP")
    assert code == 0, out
    sent = gateway.sent[0]
    assert (sent["method"], sent["url"]) == ("POST", f"{ADMIN}/organisations/org_1/webhook-endpoints")
    assert sent["json"] == {"url": "https://hooks.acme.example/billing",
                            "event_types": ["invoice.issued", "invoice.paid"], "description": "ERP"}
    assert SECRET in out and "shown once" in out and "billing webhooks endpoints test wep_1" in out


def test_create_without_event_types_subscribes_to_all_and_json_is_the_apis(gateway):
    created = {**ENDPOINT, "event_types": [], "secret": SECRET}
    gateway.answer(201, created)
    code, out = billing("webhooks", "endpoints", "create", "org_1", "--url", "https://a.example/", "--json")
    assert code == 0 and json.loads(out) == created
    assert gateway.sent[0]["json"]["event_types"] == []


def test_a_refused_url_is_the_gateways_one_line_refusal(gateway):
    gateway.answer(400, {"error": "invalid_argument", "field": "url", "detail": "url: 10.0.0.7 is a private address"})
    code, out = billing("webhooks", "endpoints", "create", "org_1", "--url", "http://10.0.0.7/")
    assert code == 1 and out == "400: url: 10.0.0.7 is a private address"


def test_list_follows_pages_and_never_prints_a_secret(gateway):
    gateway.answer(200, {"data": [ENDPOINT], "next_page_token": "t2"})
    gateway.answer(200, {"data": [{**ENDPOINT, "id": "wep_2", "event_types": []}], "next_page_token": ""})
    code, out = billing("webhooks", "endpoints", "list", "--organisation", "org_1")
    assert code == 0 and "2 webhook endpoint(s)" in out and "wep_2" in out and "(all)" in out, out
    assert "secret" not in out.lower()
    assert gateway.sent[0]["url"] == f"{ADMIN}/webhook-endpoints"
    assert gateway.sent[0]["params"] == {"organisation_id": "org_1", "page_size": 500, "page_token": ""}
    assert gateway.sent[1]["params"]["page_token"] == "t2"


def test_show_says_how_to_enable_a_disabled_endpoint_and_until_when_the_old_secret_signs(gateway):
    gateway.answer(200, {**ENDPOINT, "enabled": False, "disabled_reason": "gone: the endpoint answered 410",
                         "previous_secret_expires_at": "2026-11-16T18:30:00Z"})
    code, out = billing("webhooks", "endpoints", "show", "wep_1")
    assert code == 0, out
    assert gateway.sent[0]["url"] == f"{ADMIN}/webhook-endpoints/wep_1"
    assert "until 2026-11-16T18:30:00Z" in out and "billing webhooks endpoints update wep_1 --enable" in out
    assert "whsec_" not in out


def test_update_sends_only_the_options_given(gateway):
    gateway.answer(200, {**ENDPOINT, "enabled": False})
    code, out = billing("webhooks", "endpoints", "update", "wep_1", "--disable", "--event-types", "")
    assert code == 0 and "updated" in out, out
    assert (gateway.sent[0]["method"], gateway.sent[0]["url"]) == ("PATCH", f"{ADMIN}/webhook-endpoints/wep_1")
    assert gateway.sent[0]["json"] == {"event_types": [], "enabled": False}
    gateway.answer(200, ENDPOINT)
    billing("webhooks", "endpoints", "update", "wep_1", "--url", "https://b.example/", "--enable")
    assert gateway.sent[1]["json"] == {"url": "https://b.example/", "enabled": True}


def test_update_with_nothing_to_change_asks_nothing(gateway):
    code, out = billing("webhooks", "endpoints", "update", "wep_1")
    assert code == 1 and "nothing to change" in out and gateway.sent == []


def test_delete_sends_delete_and_says_the_history_stays(gateway):
    gateway.answer(204, None)
    code, out = billing("webhooks", "endpoints", "delete", "wep_1")
    assert code == 0 and "wep_1 deleted" in out, out
    assert (gateway.sent[0]["method"], gateway.sent[0]["url"]) == ("DELETE", f"{ADMIN}/webhook-endpoints/wep_1")


def test_rotate_sends_the_overlap_and_prints_the_new_secret_once(gateway):
    gateway.answer(200, {**ENDPOINT, "secret": SECRET, "previous_secret_expires_at": "2026-11-15T19:30:00Z"})
    code, out = billing("webhooks", "endpoints", "rotate", "wep_1", "--overlap", "3600")
    assert code == 0, out
    assert gateway.sent[0]["url"] == f"{ADMIN}/webhook-endpoints/wep_1/rotate-secret"
    assert gateway.sent[0]["json"] == {"overlap_seconds": 3600}
    assert SECRET in out and "shown once" in out and "until 2026-11-15T19:30:00Z" in out


def test_rotate_without_an_overlap_leaves_it_to_the_service(gateway):
    gateway.answer(200, {**ENDPOINT, "secret": SECRET})
    code, out = billing("webhooks", "endpoints", "rotate", "wep_1")
    assert code == 0 and gateway.sent[0]["json"] == {} and "no longer signs" in out


def test_test_queues_a_delivery_and_says_how_to_follow_it(gateway):
    gateway.answer(201, {**DELIVERY, "state": "pending", "attempts": 0, "last_status_code": 0})
    code, out = billing("webhooks", "endpoints", "test", "wep_1")
    assert code == 0 and "billing webhooks deliveries show dlv_1" in out, out
    assert (gateway.sent[0]["method"], gateway.sent[0]["url"]) == ("POST", f"{ADMIN}/webhook-endpoints/wep_1/test")


# --- deliveries ----------------------------------------------------------------------------------------------


def test_deliveries_list_passes_its_filters(gateway):
    gateway.answer(200, {"data": [DELIVERY], "next_page_token": ""})
    code, out = billing("webhooks", "deliveries", "list", "--endpoint", "wep_1", "--organisation", "org_1",
                        "--state", "failed", "--json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == ["dlv_1"]
    assert gateway.sent[0]["url"] == f"{ADMIN}/webhook-deliveries"
    assert gateway.sent[0]["params"] == {"endpoint_id": "wep_1", "organisation_id": "org_1", "state": "failed",
                                         "page_size": 500, "page_token": ""}


def test_deliveries_show_prints_the_body_and_attempts_as_text_and_says_what_to_do(gateway):
    gateway.answer(200, {**DELIVERY, "delivery_attempts": [ATTEMPT]})
    code, out = billing("webhooks", "deliveries", "show", "dlv_1")
    assert code == 0, out
    assert gateway.sent[0]["url"] == f"{ADMIN}/webhook-deliveries/dlv_1"
    assert '"data": [1]' in out and "[maintenance]" in out and "503" in out  # brackets are text, not markup
    assert "msg_0123" in out and "billing webhooks deliveries replay dlv_1" in out


def test_replay_generates_a_key_and_prints_it(gateway):
    gateway.answer(201, {**DELIVERY, "id": "dlv_2", "state": "pending"})
    code, out = billing("webhooks", "deliveries", "replay", "dlv_1")
    assert code == 0, out
    key = gateway.sent[0]["headers"]["Idempotency-Key"]
    assert key.startswith("cli-replay-") and f"--idempotency-key {key}" in out
    assert gateway.sent[0]["url"] == f"{ADMIN}/webhook-deliveries/dlv_1/replay"
    assert "dlv_2 queued, a replay of dlv_1" in out


def test_replay_with_a_used_key_says_so(gateway):
    gateway.answer(200, {**DELIVERY, "id": "dlv_2"}, {"Idempotent-Replayed": "true"})
    code, out = billing("webhooks", "deliveries", "replay", "dlv_1", "--idempotency-key", "ops-7")
    assert code == 0 and "Already replayed with this key" in out
    assert gateway.sent[0]["headers"]["Idempotency-Key"] == "ops-7"


def test_a_failed_replay_says_which_key_to_retry_with(gateway):
    code, out = billing("webhooks", "deliveries", "replay", "dlv_1", "--idempotency-key", "ops-8")
    assert code == 1 and "retry with --idempotency-key ops-8" in out
