"""Demo usage: the same metrics and the same event ids on every start, sent the way a client would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.demo import DemoData, DemoDataError
from devstack.demo_usage import DEMO_METRICS, demo_events, ensure_demo_usage

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DEMO = DemoData("org_1", "prj_1", "key_1", "bk_demo_secret")


def test_demo_events_have_fixed_unique_ids_and_recent_timestamps():
    events = demo_events(NOW)
    again = demo_events(NOW + timedelta(days=1))
    assert [e["idempotencyKey"] for e in events] == [e["idempotencyKey"] for e in again]
    assert len({e["idempotencyKey"] for e in events}) == len(events)
    assert {e["metricName"] for e in events} == {m["code"] for m in DEMO_METRICS}
    for event in events:
        when = datetime.fromisoformat(event["timestamp"])
        assert NOW - timedelta(days=3, seconds=1) <= when <= NOW
    assert all(isinstance(e["metricValue"], str) for e in events if e["metricName"] == "storage_gb")


class FakeGateway:
    def __init__(self, events_status: int = 202) -> None:
        self.events_status = events_status
        self.metric_keys: list[str] = []
        self.event_bodies: list[list[dict]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/admin/metrics":
            assert request.headers["authorization"] == "Bearer admin-token"
            self.metric_keys.append(request.headers["idempotency-key"])
            return httpx.Response(201, json={"id": "met_1", **json.loads(request.content)})
        if request.url.path == "/api/v1/events":
            assert request.headers["authorization"] == f"Bearer {DEMO.api_key}"
            body = json.loads(request.content)
            self.event_bodies.append(body)
            if self.events_status != 202:
                return httpx.Response(self.events_status, json={"error": "unauthenticated", "detail": "no"})
            results = [{"index": i, "eventId": e["idempotencyKey"], "status": "accepted"} for i, e in enumerate(body)]
            return httpx.Response(202, json={"accepted": len(body), "duplicates": 0, "rejected": 0,
                                             "results": results})
        return httpx.Response(404, json={"error": "not_found", "detail": request.url.path})


def test_metrics_are_created_with_stable_idempotency_keys_and_events_sent_with_the_demo_key():
    gateway = FakeGateway()
    for _ in range(2):  # two starts
        usage = ensure_demo_usage("http://gateway.test", "admin-token", DEMO, lambda _: None, now=NOW,
                                  transport=httpx.MockTransport(gateway.handle))
    assert gateway.metric_keys == [f"demo-metric-{m['code']}" for m in DEMO_METRICS] * 2
    assert gateway.event_bodies[0] == gateway.event_bodies[1] == demo_events(NOW)
    assert usage.events_sent == usage.accepted == len(demo_events(NOW))


def test_a_refused_event_request_is_an_error():
    with pytest.raises(DemoDataError, match="HTTP 401"):
        ensure_demo_usage("http://gateway.test", "admin-token", DEMO, lambda _: None, now=NOW,
                          transport=httpx.MockTransport(FakeGateway(events_status=401).handle))
