"""POST /api/v1/events through the in-process gateway into the real ingest service and JetStream."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from billing.ingest.v1 import ingest_pb2
from billing_runtime.timestamps import to_timestamp
from tests.integration.gateway.conftest import EVENTS_MAX_BODY_BYTES
from tests.integration.helpers import stored_events


def event(event_id: str | None = None, metric: str = "api_calls", value=1, **fields) -> dict:
    body = {"metricName": metric, "metricValue": value, "timestamp": datetime.now(UTC).isoformat(), **fields}
    if event_id is not None:
        body["idempotencyKey"] = event_id
    return body


@pytest.mark.parametrize(
    ("shape", "path"),
    [("object", "/api/v1/events"), ("list", "/api/v1/events"), ("events", "/api/v1/events"),
     ("list", "/api/v1/ingest")],
)
async def test_each_body_shape_is_accepted_and_durable(ingest, key_holder, shape, path):
    one = event("e-1", unit="requests", metadata={"endpoint": "/search", "cached": False})
    body = {"object": one, "list": [one], "events": {"events": [one]}}[shape]
    response = await key_holder.send(body, path)
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 1, "duplicates": 0, "rejected": 0,
        "results": [{"index": 0, "eventId": "e-1", "status": "accepted"}],
    }
    (stored,) = await stored_events(ingest, key_holder.project_id)
    assert (stored.event_id, stored.metric, stored.value, stored.unit) == ("e-1", "api_calls", "1", "requests")
    assert dict(stored.dimensions) == {"endpoint": "/search", "cached": "false"}


async def test_event_id_alias_and_generated_ids(ingest, key_holder):
    body = [
        {"metricName": "api_calls", "metricValue": 1, "eventId": "from-alias"},
        {"metricName": "api_calls", "metricValue": 1},  # no id, no timestamp
    ]
    response = await key_holder.send(body)
    assert response.status_code == 202, response.text
    first, second = response.json()["results"]
    assert first == {"index": 0, "eventId": "from-alias", "status": "accepted"}
    assert second["status"] == "accepted" and second["eventIdGenerated"] is True and second["eventId"]
    stored = {e.event_id: e for e in await stored_events(ingest, key_holder.project_id)}
    assert set(stored) == {"from-alias", second["eventId"]}
    assert abs(stored[second["eventId"]].timestamp.seconds - datetime.now(UTC).timestamp()) < 60


async def test_values_reach_jetstream_as_exact_decimals(ingest, key_holder):
    raw = (
        b'[{"metricName": "m", "metricValue": 0.1, "idempotencyKey": "tenth"},'
        b' {"metricName": "m", "metricValue": 1e-7, "idempotencyKey": "tiny"},'
        b' {"metricName": "m", "metricValue": 123456789012345678901234567, "idempotencyKey": "big"},'
        b' {"metricName": "m", "metricValue": "2.50", "idempotencyKey": "string"}]'
    )
    response = await key_holder.http.post("/api/v1/events", content=raw)
    assert response.status_code == 202 and response.json()["accepted"] == 4, response.text
    stored = {e.event_id: e.value for e in await stored_events(ingest, key_holder.project_id)}
    assert stored == {"tenth": "0.1", "tiny": "1E-7", "big": "123456789012345678901234567", "string": "2.50"}


async def test_bad_events_are_rejected_by_index_and_the_rest_are_sent(ingest, key_holder):
    raw = (
        b'[{"metricName": "m", "metricValue": 1, "idempotencyKey": "ok-0"},'
        b' {"metricName": "m", "metricValue": NaN, "idempotencyKey": "nan"},'
        b' {"metricName": "m", "metricValue": Infinity, "idempotencyKey": "inf"},'
        b' {"metricName": "m", "metricValue": {"n": 1}, "idempotencyKey": "object"},'
        b' {"metricName": "Not A Code", "metricValue": 1, "idempotencyKey": "bad-name"},'
        b' {"metricName": "m", "metricValue": "1,5", "idempotencyKey": "comma"},'
        b' {"metricName": "m", "metricValue": 2, "metadata": {"deep": {"x": 1}}, "idempotencyKey": "nested"},'
        b' {"metricName": "m", "metricValue": 3, "idempotencyKey": "ok-7"}]'
    )
    response = await key_holder.http.post("/api/v1/events", content=raw)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 6)
    statuses = [(r["index"], r["eventId"], r["status"], r.get("field")) for r in body["results"]]
    assert statuses == [
        (0, "ok-0", "accepted", None),
        (1, "nan", "rejected", "metricValue"),
        (2, "inf", "rejected", "metricValue"),
        (3, "object", "rejected", "metricValue"),
        (4, "bad-name", "rejected", "metricName"),  # ingest's rule, reported in the client's field names
        (5, "comma", "rejected", "metricValue"),
        (6, "nested", "rejected", "metadata.deep"),
        (7, "ok-7", "accepted", None),
    ]
    assert all(r["reason"] for r in body["results"] if r["status"] == "rejected")
    assert sorted(e.event_id for e in await stored_events(ingest, key_holder.project_id)) == ["ok-0", "ok-7"]


async def test_duplicates_within_a_request_and_across_requests(ingest, key_holder):
    batch = [event("a"), event("b"), event("a", value=5)]
    first = (await key_holder.send(batch)).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    assert [r["status"] for r in first["results"]] == ["accepted", "accepted", "duplicate"]
    again = (await key_holder.send(batch)).json()  # a retry of the same request
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 0)
    assert sorted(e.event_id for e in await stored_events(ingest, key_holder.project_id)) == ["a", "b"]


async def test_a_body_that_is_not_json_or_not_a_shape_is_a_400(key_holder):
    for raw in (b'{"metricName": "m",', b'"api_calls"', b'{"events": 3}'):
        response = await key_holder.http.post("/api/v1/events", content=raw)
        assert response.status_code == 400, raw
        assert response.json()["error"] == "invalid_argument"


async def test_more_events_than_ingest_takes_is_a_400_naming_the_limit(ingest, key_holder):
    body = [{"metricName": "m", "metricValue": 1, "idempotencyKey": str(i)} for i in range(10_001)]
    response = await key_holder.send(body)
    assert response.status_code == 400, response.text
    assert "10000" in response.json()["detail"].replace(",", "")
    assert await stored_events(ingest, key_holder.project_id) == []


async def test_a_body_past_the_size_limit_is_a_413(key_holder):
    raw = b"[" + b",".join([b'{"metricName": "m", "metricValue": 1}'] * 40_000) + b"]"
    assert len(raw) > EVENTS_MAX_BODY_BYTES
    response = await key_holder.http.post("/api/v1/events", content=raw)
    assert response.status_code == 413
    assert str(EVENTS_MAX_BODY_BYTES) in response.json()["detail"]

    async def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(4):
            yield raw[: len(raw) // 3]

    streamed = await key_holder.http.post("/api/v1/events", content=chunks())
    assert streamed.status_code == 413


async def test_missing_and_unknown_keys_are_401(gateway_url, key_holder):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        missing = await client.post("/api/v1/events", json=event("x"))
        unknown = await client.post("/api/v1/events", json=event("x"),
                                    headers={"Authorization": "Bearer bk_nothing_here"})
        # Every event bad and the key unknown: the key is still checked.
        all_bad = await client.post("/api/v1/events", json=[{"metricValue": {}}],
                                    headers={"Authorization": "Bearer bk_nothing_here"})
        by_header = await client.post("/api/v1/events", json=event("via-x-api-key"),
                                      headers={"X-Api-Key": key_holder.api_key})
    for response in (missing, unknown, all_bad):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert by_header.status_code == 202


async def test_revoked_and_expired_keys_are_403(gateway_url, ingest_stub, key_holder):
    soon = to_timestamp(datetime.now(UTC) + timedelta(seconds=1))
    expiring = await ingest_stub.CreateApiKey(
        ingest_pb2.CreateApiKeyRequest(project_id=key_holder.project_id, expire_time=soon)
    )
    keys = await ingest_stub.ListApiKeys(ingest_pb2.ListApiKeysRequest(project_id=key_holder.project_id))
    first_key = next(k for k in keys.api_keys if k.id != expiring.api_key.id)
    assert (await key_holder.send(event("before"))).status_code == 202
    await ingest_stub.RevokeApiKey(ingest_pb2.RevokeApiKeyRequest(api_key_id=first_key.id))
    await asyncio.sleep(1.2)  # past the second key's expiry
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for secret, word in ((key_holder.api_key, "revoked"), (expiring.secret, "expired")):
            response = await client.post("/api/v1/events", json=event("after"),
                                         headers={"Authorization": f"Bearer {secret}"})
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "permission_denied" and word in response.json()["detail"]


async def test_the_answer_carries_the_request_id(key_holder):
    response = await key_holder.http.post("/api/v1/events", json=event("rid"), headers={"X-Request-Id": "req-42"})
    assert response.status_code == 202 and response.headers["X-Request-Id"] == "req-42"
    assert json.loads(response.content)["results"][0]["eventId"] == "rid"


async def test_the_openapi_document_describes_the_events_route(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        document = (await client.get("/openapi.json")).json()
    route = document["paths"]["/api/v1/events"]["post"]
    assert set(route["responses"]) >= {"202", "400", "401", "403", "413"}
    assert "metricValue" in json.dumps(route["requestBody"])
