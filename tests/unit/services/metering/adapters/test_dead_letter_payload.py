"""A dead letter's payload shown as JSON: an event batch decoded, cut at the bound, or why it does not decode."""

from __future__ import annotations

import json

from billing.ingest.v1 import events_pb2, ingest_pb2
from services.metering.adapters.dead_letters import decode_payload, replay_message_id


def batch(events: int) -> bytes:
    return events_pb2.EventBatchAccepted(
        organisation_id="org_1", project_id="prj_1",
        events=[ingest_pb2.Event(event_id=f"e{i}", metric="api.calls", value="1") for i in range(events)],
    ).SerializeToString()


def test_an_event_batch_is_its_events_as_json() -> None:
    decoded = decode_payload(batch(2))
    assert not decoded.truncated and not decoded.error
    body = json.loads(decoded.json)
    assert body["organisation_id"] == "org_1" and [e["event_id"] for e in body["events"]] == ["e0", "e1"]


def test_a_large_batch_is_cut_at_the_bound() -> None:
    decoded = decode_payload(batch(5000), limit=1000)
    assert decoded.truncated and len(decoded.json) == 1000 and not decoded.error


def test_what_does_not_decode_says_so() -> None:
    decoded = decode_payload(b"\xff\xfe not a protobuf")
    assert decoded.json == "" and decoded.error == "not an EventBatchAccepted protobuf"


def test_every_replay_of_a_letter_has_the_same_message_id() -> None:
    assert replay_message_id(7) == replay_message_id(7) != replay_message_id(8)
