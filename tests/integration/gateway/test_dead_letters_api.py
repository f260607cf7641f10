"""The admin dead-letter routes through the in-process gateway to the real metering service: show, replay and
discard, each write in the audit log."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nats.js import JetStreamContext

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing_runtime import messaging
from billing_runtime.timestamps import to_timestamp
from services.metering.adapters.dead_letters import STREAM, DeadLetters

SUBJECT = "billing.ingest.v1.event_batch.accepted"


@pytest.fixture
async def jetstream(nats_url) -> AsyncIterator[JetStreamContext]:
    nc = await messaging.connect(nats_url, name="gateway-dead-letter-tests")
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def letter(js: JetStreamContext, payload: bytes) -> int:
    """A dead letter put there by hand, as the consumer would; its sequence."""
    dead_letters = DeadLetters(js)
    await dead_letters.ensure_stream()
    await dead_letters.publish(payload, reason="failed for a transient reason", source_stream="BILLING_INGEST",
                               source_sequence=10**12 + secrets.randbelow(10**9), source_subject=SUBJECT,
                               delivery_count=3)
    return (await js.stream_info(STREAM)).state.last_seq


def event_batch(event_id: str) -> bytes:
    return events_pb2.EventBatchAccepted(
        batch_id=f"bat_{secrets.token_hex(6)}", organisation_id="org_gateway_dead_letters",
        project_id=f"prj_test{secrets.token_hex(8)}",
        events=[ingest_pb2.Event(event_id=event_id, metric="gw.dead_letters", value="1",
                                 timestamp=to_timestamp(datetime.now(UTC) - timedelta(minutes=1)))],
    ).SerializeToString()


async def audited(admin_http) -> list[tuple[str, str, str]]:
    entries = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
    assert all(e["actor"] and e["created_at"] for e in entries if e["resource_type"] == "dead_letter")
    return [(e["action"], e["resource_type"], e["resource_id"]) for e in entries]


async def test_dead_letter_routes_need_the_admin_token(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for method, path in (("GET", "/api/v1/admin/dead-letters/1"), ("POST", "/api/v1/admin/dead-letters/1/replay"),
                             ("POST", "/api/v1/admin/dead-letters/1/discard")):
            response = await client.request(method, path, headers={"Authorization": "Bearer bk_not_the_admin"})
            assert response.status_code == 401, (method, path)


async def test_show_and_replay_a_dead_letter_with_an_audit_entry(admin_http, jetstream):
    sequence = await letter(jetstream, event_batch("gw1"))
    shown = await admin_http.get(f"/api/v1/admin/dead-letters/{sequence}")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["sequence"] == sequence and body["state"] == "pending" and not body["payload_truncated"]
    assert [e["event_id"] for e in json.loads(body["payload"])["events"]] == ["gw1"]

    replayed = await admin_http.post(f"/api/v1/admin/dead-letters/{sequence}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["dead_letter"]["state"] == "replayed" and not replayed.json()["duplicate"]
    again = await admin_http.post(f"/api/v1/admin/dead-letters/{sequence}/replay")
    assert again.json()["duplicate"] and again.json()["replay_sequence"] == replayed.json()["replay_sequence"]
    listed = (await admin_http.get("/api/v1/admin/dead-letters", params={"page_size": 500})).json()["data"]
    assert {d["sequence"]: d["state"] for d in listed}[sequence] == "replayed"

    refused = await admin_http.post(f"/api/v1/admin/dead-letters/{sequence}/discard", json={"reason": "too late"})
    assert refused.status_code == 422 and refused.json()["error"] == "failed_precondition"
    assert (await audited(admin_http)).count(("dead_letter.replay", "dead_letter", str(sequence))) == 2
    assert ("dead_letter.discard", "dead_letter", str(sequence)) not in await audited(admin_http)


async def test_discard_needs_a_bounded_reason_and_is_audited(admin_http, jetstream):
    sequence = await letter(jetstream, b"\xff not a protobuf")
    shown = (await admin_http.get(f"/api/v1/admin/dead-letters/{sequence}")).json()
    assert shown["payload"] == "" and shown["payload_error"] == "not an EventBatchAccepted protobuf"

    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "ok", "extra": 1}):
        refused = await admin_http.post(f"/api/v1/admin/dead-letters/{sequence}/discard", json=body)
        assert refused.status_code == 400, (body, refused.text)
    discarded = await admin_http.post(f"/api/v1/admin/dead-letters/{sequence}/discard",
                                      json={"reason": "garbage from a test client"})
    assert discarded.status_code == 200, discarded.text
    assert discarded.json()["state"] == "discarded"
    assert discarded.json()["discard_reason"] == "garbage from a test client" and discarded.json()["state_changed_at"]

    refused = await admin_http.post(f"/api/v1/admin/dead-letters/{sequence}/replay")
    assert refused.status_code == 422 and refused.json()["error"] == "failed_precondition"
    entries = await audited(admin_http)
    assert ("dead_letter.discard", "dead_letter", str(sequence)) in entries
    assert ("dead_letter.replay", "dead_letter", str(sequence)) not in entries  # refused writes are not audited


async def test_unknown_and_malformed_sequences(admin_http):
    assert (await admin_http.get("/api/v1/admin/dead-letters/999999999999")).status_code == 404
    assert (await admin_http.post("/api/v1/admin/dead-letters/999999999999/replay")).status_code == 404
    for path in ("/api/v1/admin/dead-letters/0", "/api/v1/admin/dead-letters/abc"):
        assert (await admin_http.get(path)).status_code == 400, path
