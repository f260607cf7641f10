"""POST /api/v1/events where the organisation's plan has a quota: the IETF RateLimit fields on every answer,
per-event refusals, and 429 with Retry-After when every event is over a hard cap. Through the in-process gateway,
the real ingest, metering and invoicing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from billing.metering.v1 import metering_pb2 as pb
from billing_runtime.timestamps import from_timestamp
from tests.integration.helpers import stored_events
from tests.integration.quota_tenant import CODE, tenant

pytestmark = pytest.mark.usefixtures("metering")


def body(count: int, prefix: str) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"events": [{"metricName": CODE, "metricValue": 1, "timestamp": now, "idempotencyKey": f"{prefix}{i}"}
                       for i in range(count)]}


async def test_over_a_hard_cap_the_gateway_answers_429_with_retry_after_and_the_ratelimit_fields(
        gateway_url, invoicing, invoicing_stub, ingest_stub, metering_stub):
    organisation, _, key = await tenant(
        invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_HARD", "3", enforce_quotas_at_ingest=True)
    status = (await metering_stub.CheckQuota(pb.CheckQuotaRequest(
        organisation_id=organisation, metric_code=CODE, quantity="0"))).status
    window = int((from_timestamp(status.reset_time) - from_timestamp(status.period_start)).total_seconds())
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}) as http:
        first = await http.post("/api/v1/events", json=body(2, "a"))
        assert first.status_code == 202, first.text
        assert first.headers["RateLimit-Policy"] == f'"{CODE}";q=3;w={window}'
        assert re.fullmatch(rf'"{re.escape(CODE)}";r=1;t=\d+', first.headers["RateLimit"])
        assert "Retry-After" not in first.headers

        second = await http.post("/api/v1/events", json=body(2, "b"))
        assert second.status_code == 202, second.text
        result = second.json()
        assert (result["accepted"], result["rejected"]) == (1, 1)
        refused = result["results"][1]
        assert (refused["status"], refused["field"]) == ("rejected", "metricName")
        assert refused["reason"].startswith("quota exceeded: hard cap of 3 api.calls per billing period")
        assert second.headers["RateLimit"].startswith(f'"{CODE}";r=0;')

        third = await http.post("/api/v1/events", json=body(2, "c"))
        assert third.status_code == 429, third.text
        assert third.json()["error"] == "quota_exceeded"
        assert third.json()["detail"].startswith("quota exceeded: hard cap of 3 api.calls")
        retry_after = int(third.headers["Retry-After"])
        expected = (from_timestamp(status.reset_time) - datetime.now(UTC)).total_seconds()
        assert abs(retry_after - expected) < 60
        assert third.headers["RateLimit"].startswith(f'"{CODE}";r=0;t=')
        assert third.headers["RateLimit-Policy"] == f'"{CODE}";q=3;w={window}'


async def test_a_soft_cap_accepts_and_still_carries_the_fields(
        gateway_url, invoicing, invoicing_stub, ingest_stub, metering_stub):
    _, _, key = await tenant(
        invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_SOFT", "1", enforce_quotas_at_ingest=True)
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}) as http:
        response = await http.post("/api/v1/events", json=body(3, "s"))
    assert response.status_code == 202 and response.json()["accepted"] == 3
    assert response.headers["RateLimit"].startswith(f'"{CODE}";r=0;')


async def test_without_a_quota_no_ratelimit_fields_are_sent(key_holder):
    response = await key_holder.send(body(1, "n"))
    assert response.status_code == 202
    assert "RateLimit" not in response.headers and "RateLimit-Policy" not in response.headers


async def test_over_the_projects_event_rate_the_request_is_429_rate_limited_and_nothing_is_written(
        gateway_url, ingest, invoicing, invoicing_stub, ingest_stub, metering_stub):
    _, project, key = await tenant(invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_SOFT",
                                   "1000000", ingest_rate_limit={"events_per_second": 1, "burst": 5})
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}) as http:
        first = await http.post("/api/v1/events", json=body(5, "r"))
        assert first.status_code == 202 and first.json()["accepted"] == 5, first.text
        over = await http.post("/api/v1/events", json=body(2, "s"))
        assert over.status_code == 429, over.text
        assert over.json()["error"] == "rate_limited"
        assert over.json()["detail"].startswith(f"rate limit: project {project.id} may send 1 events/s with bursts")
        assert over.headers["Retry-After"] == "2"
    stored = {event.event_id for event in await stored_events(ingest, project.id)}
    assert stored == {f"r{i}" for i in range(5)}
