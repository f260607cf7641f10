"""billing dead-letters without a server: what each command sends to the gateway and how it reads the answer.
The gateway's HTTP is replaced by a recorder; the routes against a real metering service are in
tests/integration/gateway/test_dead_letters_api.py."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

URL = "http://gateway.test/api/v1/admin/dead-letters"
LETTER = {"sequence": 42, "source_stream": "BILLING_INGEST", "source_sequence": 7,
          "subject": "billing.ingest.v1.event_batch.accepted", "reason": "CheckViolationError: events_value_finite",
          "delivery_count": 1, "dead_lettered_at": "2026-11-15T18:30:00Z", "payload_size": 120, "state": "pending",
          "state_changed_at": None, "discard_reason": ""}
EVENTS = {"organisation_id": "org_1", "events": [{"event_id": "e1", "value": "NaN"}]}


def test_list_filters_by_state_across_pages_up_to_the_limit(gateway):
    gateway.answer(200, {"data": [LETTER, {**LETTER, "sequence": 41, "state": "replayed"}], "next_page_token": "41"})
    gateway.answer(200, {"data": [{**LETTER, "sequence": 40}, {**LETTER, "sequence": 39}], "next_page_token": "39"})
    code, out = billing("dead-letters", "list", "--state", "pending", "--limit", "2", "--json")
    assert code == 0, out
    assert [d["sequence"] for d in json.loads(out)] == [42, 40]
    assert gateway.sent[0]["url"] == URL and gateway.sent[0]["params"] == {"page_size": 500, "page_token": ""}
    assert gateway.sent[1]["params"]["page_token"] == "41" and len(gateway.sent) == 2  # the limit stops paging


def test_list_as_a_table_and_a_bad_state(gateway):
    gateway.answer(200, {"data": [LETTER], "next_page_token": ""})
    code, out = billing("dead-letters", "list")
    assert code == 0 and "1 dead letter(s)" in out and "events_value_finite" in out and "pending" in out
    code, out = billing("dead-letters", "list", "--state", "lost")
    assert code == 1 and "--state must be one of" in out and len(gateway.sent) == 1


def test_show_prints_the_events_and_what_to_do_next(gateway):
    gateway.answer(200, {**LETTER, "payload": json.dumps(EVENTS), "payload_truncated": False, "payload_error": ""})
    code, out = billing("dead-letters", "show", "42")
    assert code == 0, out
    assert gateway.sent[0]["url"] == f"{URL}/42" and gateway.sent[0]["method"] == "GET"
    assert '"event_id": "e1"' in out and "billing dead-letters replay 42" in out


def test_show_of_a_discarded_letter_that_did_not_decode(gateway):
    gateway.answer(200, {**LETTER, "state": "discarded", "state_changed_at": "2026-11-16T09:00:00Z",
                         "discard_reason": "garbage [test]", "payload": "", "payload_truncated": False,
                         "payload_error": "not an EventBatchAccepted protobuf"})
    code, out = billing("dead-letters", "show", "42")
    assert code == 0 and "garbage [test]" in out and "not decoded: not an EventBatchAccepted protobuf" in out
    assert "replay 42" not in out


def test_replay_posts_and_says_whether_it_was_a_repeat(gateway):
    gateway.answer(200, {"dead_letter": {**LETTER, "state": "replayed"}, "replay_sequence": 99, "duplicate": False})
    gateway.answer(200, {"dead_letter": {**LETTER, "state": "replayed"}, "replay_sequence": 99, "duplicate": True})
    code, out = billing("dead-letters", "replay", "42")
    assert code == 0 and "replayed as stream sequence 99" in out
    assert gateway.sent[0]["method"] == "POST" and gateway.sent[0]["url"] == f"{URL}/42/replay"
    code, out = billing("dead-letters", "replay", "42")
    assert code == 0 and "was already replayed" in out


def test_replay_of_a_discarded_letter_is_the_gateways_refusal(gateway):
    gateway.answer(422, {"error": "failed_precondition",
                         "detail": "sequence: the dead letter was discarded and cannot be replayed"})
    code, out = billing("dead-letters", "replay", "42")
    assert code == 1 and out.startswith("422:") and "discarded" in out


def test_discard_sends_the_reason_and_requires_one(gateway):
    gateway.answer(200, {**LETTER, "state": "discarded", "discard_reason": "duplicate of batch 7"})
    code, out = billing("dead-letters", "discard", "42", "--reason", "duplicate of batch 7")
    assert code == 0 and "discarded: duplicate of batch 7" in out
    assert gateway.sent[0]["method"] == "POST" and gateway.sent[0]["url"] == f"{URL}/42/discard"
    assert gateway.sent[0]["json"] == {"reason": "duplicate of batch 7"}
    code, out = billing("dead-letters", "discard", "42", "--reason", "  ")
    assert code == 1 and "--reason" in out and len(gateway.sent) == 1
    code, out = billing("dead-letters", "discard", "42")
    assert code != 0 and len(gateway.sent) == 1
