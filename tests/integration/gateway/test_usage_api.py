"""Usage through the gateway: events sent over REST and gRPC, counted once by the real metering service, read back
with the admin token or with the project's own API key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from billing.ingest.v1 import ingest_pb2
from billing_runtime.timestamps import to_timestamp
from tests.integration.gateway.conftest import eventually, new_project


async def create_metric(admin_http, organisation_id: str, code: str, aggregation: str) -> dict:
    response = await admin_http.post("/api/v1/admin/metrics", json={
        "organisation_id": organisation_id, "code": code, "name": code, "aggregation": aggregation})
    assert response.status_code == 201, response.text
    return response.json()


async def usage_when(client: httpx.AsyncClient, path: str, events: int, **params) -> dict:
    """The usage answer once metering has folded in ``events`` events (it consumes asynchronously)."""

    async def answer() -> dict:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    return await eventually(answer, lambda body: sum(row["event_count"] for row in body["rows"]) == events,
                            what=f"{events} events in {path} {params}")


def tokens(event_id: str, value, model: str, **fields) -> dict:
    return {"metricName": "tokens", "metricValue": value, "metadata": {"model": model}, "idempotencyKey": event_id,
            **fields}


async def test_duplicates_across_requests_and_across_rest_and_grpc_are_counted_once(
    admin_http, key_holder, ingest_stub, invoicing_stub, gateway_url
):
    organisation_id = key_holder.organisation_id
    await create_metric(admin_http, organisation_id, "tokens", "sum")
    distinct = [tokens(f"t{i}", 0.1, "small" if i % 2 else "large") for i in range(10)]

    first = (await key_holder.send([*distinct, tokens("t0", 5, "large")])).json()  # a repeat inside the request
    assert (first["accepted"], first["duplicates"]) == (10, 1)
    # The same request again. Without timestamps in it, its events carry a new receipt time, so ingest may
    # accept them again as a new batch; metering still counts each id once.
    resent = (await key_holder.send([*distinct, tokens("t0", 5, "large")])).json()
    assert (resent["accepted"] + resent["duplicates"], resent["rejected"]) == (11, 0)
    overlap = (await key_holder.send([tokens("t1", 7, "small"), tokens("t10", "0.1", "small")])).json()
    assert overlap["rejected"] == 0
    # The same ids over gRPC, straight to ingest: t3 again (with another value), and one new event.
    reply = await ingest_stub.IngestEvents(
        ingest_pb2.IngestEventsRequest(events=[
            ingest_pb2.Event(event_id="t3", metric="tokens", value="9", dimensions={"model": "small"}),
            ingest_pb2.Event(event_id="t11", metric="tokens", value="0.0000001", dimensions={"model": "large"}),
        ]),
        metadata=(("authorization", f"Bearer {key_holder.api_key}"),),
    )
    assert reply.outcome.rejected_count == 0

    body = await usage_when(admin_http, "/api/v1/admin/usage", 12, organisation_id=organisation_id, metric="tokens")
    (row,) = body["rows"]
    assert Decimal(row["value"]) == Decimal("1.1000001")  # 11 x 0.1 + 1e-7: exact, each id once
    assert body["metric"]["code"] == "tokens" and body["window"] == "whole"

    grouped = await usage_when(admin_http, "/api/v1/admin/usage", 12, organisation_id=organisation_id,
                               metric="tokens", group_by="model")
    by_model = {row["group_value"]: (Decimal(row["value"]), row["event_count"]) for row in grouped["rows"]}
    # large: t0 t2 t4 t6 t8 (0.1 each) and t11; small: t1 t3 t5 t7 t9 t10.
    assert by_model == {"large": (Decimal("0.5000001"), 6), "small": (Decimal("0.6"), 6)}

    # A second project of the organisation: in the organisation's usage, not in the first project's.
    _, other_project, other_key = await new_project(invoicing_stub, ingest_stub, organisation_id)
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {other_key}"}) as other:
        assert (await other.post("/api/v1/events", json=tokens("t0", 100, "large"))).json()["accepted"] == 1
    everything = await usage_when(admin_http, "/api/v1/admin/usage", 13, organisation_id=organisation_id,
                                  metric="tokens")
    assert Decimal(everything["rows"][0]["value"]) == Decimal("101.1000001")
    only_other = await usage_when(admin_http, "/api/v1/admin/usage", 1, organisation_id=organisation_id,
                                  project_id=other_project, metric="tokens")
    assert Decimal(only_other["rows"][0]["value"]) == Decimal("100")

    # The key holder sees their own project only, whatever they ask for.
    own = await usage_when(key_holder.http, "/api/v1/usage", 12, metric="tokens", organisation_id="org_other")
    assert own["project_id"] == key_holder.project_id and own["organisation_id"] == organisation_id
    assert Decimal(own["rows"][0]["value"]) == Decimal("1.1000001")


async def test_day_windows_start_in_the_requested_time_zone(admin_http, key_holder):
    await create_metric(admin_http, key_holder.organisation_id, "api_calls", "count")
    day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    # 17:00 and 19:00 UTC: one UTC day, but 22:30 and 00:30 the next day in India (UTC+05:30).
    sent = await key_holder.send([
        {"metricName": "api_calls", "metricValue": 1, "idempotencyKey": "evening",
         "timestamp": (day + timedelta(hours=17)).isoformat()},
        {"metricName": "api_calls", "metricValue": 1, "idempotencyKey": "late",
         "timestamp": int((day + timedelta(hours=19)).timestamp())},  # epoch seconds
    ])
    assert sent.json()["accepted"] == 2, sent.text
    query = {"organisation_id": key_holder.organisation_id, "metric": "api_calls", "window": "day",
             "from": (day - timedelta(days=1)).isoformat(), "to": (day + timedelta(days=2)).isoformat()}
    utc = await usage_when(admin_http, "/api/v1/admin/usage", 2, **query)
    assert [(row["start"][:10], row["value"]) for row in utc["rows"]] == [(day.date().isoformat(), "2")]
    india = await usage_when(admin_http, "/api/v1/admin/usage", 2, **query, time_zone="Asia/Kolkata")
    assert [row["value"] for row in india["rows"]] == ["1", "1"]
    starts = [datetime.fromisoformat(row["start"].replace("Z", "+00:00")) for row in india["rows"]]
    assert starts[1] - starts[0] == timedelta(days=1)
    assert starts[1].astimezone(UTC) == day + timedelta(hours=18, minutes=30)  # midnight in India


async def test_usage_errors_name_the_query_parameter(admin_http, key_holder, gateway_url):
    await create_metric(admin_http, key_holder.organisation_id, "calls", "count")
    base = {"organisation_id": key_holder.organisation_id, "metric": "calls"}
    cases = [
        ({**base, "time_zone": "Mars/Olympus"}, 400, "time_zone"),
        ({**base, "from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, 400, "to"),
        ({**base, "window": "fortnight"}, 400, "window"),
        ({**base, "metric": "nothing_here"}, 404, None),
        ({"metric": "calls"}, 400, "organisation_id"),
    ]
    for params, status, field in cases:
        response = await admin_http.get("/api/v1/admin/usage", params=params)
        assert response.status_code == status, (params, response.text)
        if field:
            assert response.json()["field"] == field, response.text
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        anonymous = await client.get("/api/v1/usage", params={"metric": "calls"})
        unknown = await client.get("/api/v1/usage", params={"metric": "calls"},
                                   headers={"Authorization": "Bearer bk_unknown_key"})
    assert anonymous.status_code == unknown.status_code == 401


async def test_a_naive_range_is_read_in_the_time_zone(admin_http, key_holder):
    await create_metric(admin_http, key_holder.organisation_id, "naive_calls", "count")
    response = await admin_http.get("/api/v1/admin/usage", params={
        "organisation_id": key_holder.organisation_id, "metric": "naive_calls", "from": "2025-01-01T00:00:00",
        "to": "2025-01-02T00:00:00", "time_zone": "Asia/Kolkata"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert datetime.fromisoformat(body["start"].replace("Z", "+00:00")) == datetime(2024, 12, 31, 18, 30, tzinfo=UTC)
    assert body["rows"] == []


async def test_values_of_every_shape_from_both_doors_add_up_exactly(admin_http, key_holder, ingest_stub):
    """Values of every shape, from both doors, add up exactly to their sum computed here."""
    await create_metric(admin_http, key_holder.organisation_id, "gb", "sum")
    values = ["0.1", "0.2", "0.3", "12345678901234.5678", "1E-7", "-0.05", "3"]
    rest = [{"metricName": "gb", "metricValue": value, "idempotencyKey": f"r{i}"} for i, value in enumerate(values)]
    assert (await key_holder.send(rest)).json()["accepted"] == len(values)
    now = to_timestamp(datetime.now(UTC))
    await ingest_stub.IngestEvents(
        ingest_pb2.IngestEventsRequest(events=[
            ingest_pb2.Event(event_id=f"g{i}", metric="gb", value=value, timestamp=now)
            for i, value in enumerate(values)
        ]),
        metadata=(("authorization", f"Bearer {key_holder.api_key}"),),
    )
    body = await usage_when(admin_http, "/api/v1/admin/usage", 2 * len(values),
                            organisation_id=key_holder.organisation_id, metric="gb")
    assert Decimal(body["rows"][0]["value"]) == 2 * sum(Decimal(v) for v in values)
