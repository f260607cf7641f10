"""The admin metric routes through the in-process gateway to the real metering service."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.gateway.conftest import eventually

METRIC = {"code": "api_calls", "name": "API calls", "unit": "requests", "aggregation": "count"}


async def observed(admin_http, organisation_id: str) -> dict[str, dict]:
    response = await admin_http.get("/api/v1/admin/metrics/observed", params={"organisation_id": organisation_id})
    assert response.status_code == 200, response.text
    return {row["code"]: row for row in response.json()}


async def test_metric_routes_need_the_admin_token(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for method, path in (("GET", "/api/v1/admin/metrics?organisation_id=x"), ("POST", "/api/v1/admin/metrics"),
                             ("GET", "/api/v1/admin/metrics/observed?organisation_id=x"),
                             ("GET", "/api/v1/admin/dead-letters"), ("GET", "/api/v1/admin/usage")):
            response = await client.request(method, path, headers={"Authorization": "Bearer bk_not_the_admin"})
            assert response.status_code == 401, (method, path)


async def test_create_get_list_and_archive_a_metric_with_an_audit_trail(admin_http, key_holder):
    organisation_id = key_holder.organisation_id
    body = {"organisation_id": organisation_id, **METRIC, "filters": {"region": ["eu", "us"]}}
    created = await admin_http.post("/api/v1/admin/metrics", json=body)
    assert created.status_code == 201, created.text
    metric = created.json()
    assert metric["id"].startswith("met_") and metric["state"] == "active" and metric["archived_at"] is None
    assert (metric["code"], metric["aggregation"], metric["filters"]) == ("api_calls", "count",
                                                                          {"region": ["eu", "us"]})
    assert (await admin_http.get(f"/api/v1/admin/metrics/{metric['id']}")).json() == metric

    listed = await admin_http.get("/api/v1/admin/metrics", params={"organisation_id": organisation_id})
    assert [m["id"] for m in listed.json()["data"]] == [metric["id"]]

    archived = await admin_http.post(f"/api/v1/admin/metrics/{metric['id']}/archive")
    assert archived.status_code == 200 and archived.json()["state"] == "archived"
    assert archived.json()["archived_at"]
    active = await admin_http.get("/api/v1/admin/metrics", params={"organisation_id": organisation_id})
    assert active.json()["data"] == []
    every = await admin_http.get("/api/v1/admin/metrics",
                                 params={"organisation_id": organisation_id, "include_archived": "true"})
    assert [m["state"] for m in every.json()["data"]] == ["archived"]

    # The code is free again once archived.
    again = await admin_http.post("/api/v1/admin/metrics", json={"organisation_id": organisation_id, **METRIC})
    assert again.status_code == 201 and again.json()["id"] != metric["id"]

    audit = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 50})).json()
    mine = [(e["action"], e["resource_id"]) for e in audit if e["resource_type"] == "metric"]
    assert ("metric.archive", metric["id"]) in mine and ("metric.create", metric["id"]) in mine
    assert ("metric.create", again.json()["id"]) in mine


async def test_a_gauge_metric_is_created_and_reads_back_as_weighted_sum(admin_http, key_holder):
    body = {"organisation_id": key_holder.organisation_id, "code": "storage_gb", "name": "Storage",
            "unit": "GB", "aggregation": "weighted_sum"}
    created = await admin_http.post("/api/v1/admin/metrics", json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["aggregation"], created.json()["unit"]) == ("weighted_sum", "GB")
    listed = await admin_http.get("/api/v1/admin/metrics", params={"organisation_id": key_holder.organisation_id})
    assert [m["aggregation"] for m in listed.json()["data"]] == ["weighted_sum"]


async def test_idempotency_key_replays_the_first_metric(admin_http, key_holder):
    body = {"organisation_id": key_holder.organisation_id, **METRIC, "code": "llm_tokens", "aggregation": "sum"}
    headers = {"Idempotency-Key": "create-llm-tokens"}
    first = await admin_http.post("/api/v1/admin/metrics", json=body, headers=headers)
    again = await admin_http.post("/api/v1/admin/metrics", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"aggregation": "average"}, 400, "aggregation"),  # checked by the gateway's schema
        ({"code": "Bad Code"}, 400, "code"),  # checked by metering, named through the gateway
        ({"name": ""}, 400, "name"),
        ({"unique_dimension": "user"}, 400, "unique_dimension"),  # only for unique_count
        ({"aggregation": "weighted_sum", "filters": {"region": ["eu"]}}, 400, "filters"),  # a gauge has none
        ({"organisation_id": "org_missing"}, 400, "organisation_id"),
        ({"surprise": 1}, 400, "surprise"),
    ],
)
async def test_bad_metrics_answer_400_naming_the_field(admin_http, key_holder, change, status, field):
    body = {"organisation_id": key_holder.organisation_id, **METRIC, "code": "bad_case", **change}
    response = await admin_http.post("/api/v1/admin/metrics", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    listed = await admin_http.get("/api/v1/admin/metrics",
                                  params={"organisation_id": key_holder.organisation_id, "include_archived": True})
    assert listed.json()["data"] == []


async def test_unknown_metric_is_404(admin_http):
    response = await admin_http.get("/api/v1/admin/metrics/met_00000000000000000000000000")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_events_for_an_undefined_code_are_observed_then_counted_by_a_new_metric(admin_http, key_holder):
    sent = await key_holder.send([{"metricName": "search_requests", "metricValue": 1, "idempotencyKey": f"s{i}"}
                                  for i in range(5)])
    assert sent.json()["accepted"] == 5
    rows = await eventually(
        lambda: _observed_code(admin_http, key_holder.organisation_id, "search_requests", 5),
        what="metering to report the observed code",
    )
    assert rows["defined"] is False and rows["metric_id"] == ""
    assert rows["first_event_at"] and rows["last_event_at"]

    created = await admin_http.post("/api/v1/admin/metrics", json={
        "organisation_id": key_holder.organisation_id, "code": "search_requests", "name": "Searches",
        "aggregation": "count"})
    now_defined = (await observed(admin_http, key_holder.organisation_id))["search_requests"]
    assert now_defined["defined"] is True and now_defined["metric_id"] == created.json()["id"]
    usage = await admin_http.get("/api/v1/admin/usage", params={
        "organisation_id": key_holder.organisation_id, "metric": "search_requests"})
    assert usage.status_code == 200, usage.text
    assert [row["value"] for row in usage.json()["rows"]] == ["5"]


async def _observed_code(admin_http, organisation_id: str, code: str, count: int) -> dict | None:
    row = (await observed(admin_http, organisation_id)).get(code)
    return row if row and row["event_count"] == count else None


async def test_dead_letters_are_listed_as_a_page(admin_http):
    response = await admin_http.get("/api/v1/admin/dead-letters", params={"page_size": 10})
    assert response.status_code == 200, response.text
    page = response.json()
    assert isinstance(page["data"], list) and "next_page_token" in page
    for letter in page["data"]:
        assert letter["reason"] and letter["source_stream"]
