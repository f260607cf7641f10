"""The gateway's admin REST API over real HTTP, calling real ingest and invoicing services over gRPC."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.gateway.__main__ import DEFINITION as GATEWAY
from tests.conftest import running_service

ADMIN_TOKEN = "test-admin-token-0123456789"
ORGANISATION = {
    "name": "Acme Analytics Pvt Ltd",
    "billing_email": "billing@acme.example",
    "billing_currency": "INR",
    "country": "IN",
    "state_code": "29",
    "gstin": "29ABCDE1234F1ZW",
    "timezone": "Asia/Kolkata",
}


@pytest.fixture(scope="module")
async def gateway(database_url, nats_url, ingest, invoicing, refused_address) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY,
        database_url,
        nats_url,
        admin_token=ADMIN_TOKEN,
        http_port=0,
        ingest_address=ingest.address,
        invoicing_address=invoicing.address,
        # Down in this module, whatever runs on their default ports (a developer's `make run`).
        metering_address=refused_address,
        payments_address=refused_address,
        notification_address=refused_address,
    ) as runtime:
        yield runtime.http_address


@pytest.fixture
async def admin(gateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=10) as client:
        yield client


async def organisation_count(admin: httpx.AsyncClient) -> int:
    total, token = 0, ""
    while True:
        response = await admin.get("/api/v1/admin/organisations", params={"page_size": 500, "page_token": token})
        assert response.status_code == 200, (response.status_code, response.text)
        page = response.json()
        total += len(page["data"])
        token = page["next_page_token"]
        if not token:
            return total


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": "x"}])
async def test_admin_api_needs_the_admin_token(gateway, headers):
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get("/api/v1/admin/organisations", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gstin": "29ABCDE1234F1Z5"}, "gstin"),
        ({"billing_currency": "EURO"}, "billing_currency"),
        ({"billing_currency": "ABC"}, "billing_currency"),
        ({"name": None}, "name"),  # missing
        ({"name": ""}, "name"),
        ({"country": "India"}, "country"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_bad_organisation_answers_400_naming_the_field_and_stores_nothing(admin, change, field):
    body = {**ORGANISATION, **change}
    body = {key: value for key, value in body.items() if value is not None}
    before = await organisation_count(admin)
    response = await admin.post("/api/v1/admin/organisations", json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == "invalid_argument"
    assert error["field"] == field
    assert error["detail"].startswith(f"{field}: ")
    assert await organisation_count(admin) == before


async def test_body_that_is_not_json_is_a_clear_400(admin):
    response = await admin.post("/api/v1/admin/organisations", content=b'{"name": "x",')
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


async def test_organisation_project_and_key_with_the_secret_shown_exactly_once(admin):
    organisation = await admin.post("/api/v1/admin/organisations", json=ORGANISATION)
    assert organisation.status_code == 201, organisation.text
    organisation_id = organisation.json()["id"]
    assert (await admin.get(f"/api/v1/admin/organisations/{organisation_id}")).json() == organisation.json()

    project = await admin.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "prod"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]

    created = await admin.post("/api/v1/admin/api-keys", json={"project_id": project_id, "name": "backend"})
    assert created.status_code == 201, created.text
    key = created.json()
    secret = key["secret"]
    assert secret.startswith(key["prefix"]) and key["state"] == "active"

    responses = [
        await admin.get("/api/v1/admin/api-keys", params={"project_id": project_id}),
        await admin.get("/api/v1/admin/api-keys"),
        await admin.get(f"/api/v1/admin/projects/{project_id}"),
        await admin.get("/api/v1/admin/projects", params={"organisation_id": organisation_id}),
        await admin.get("/api/v1/admin/audit-log"),
    ]
    for response in responses:
        assert response.status_code == 200
        assert secret not in response.text
        assert secret[len(key["prefix"]) :] not in response.text
    listed = responses[0].json()["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0]

    revoked = await admin.post(f"/api/v1/admin/api-keys/{key['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"

    audit = (await admin.get("/api/v1/admin/audit-log", params={"limit": 4})).json()
    assert [(e["action"], e["resource_id"]) for e in audit] == [
        ("api_key.revoke", key["id"]),
        ("api_key.create", key["id"]),
        ("project.create", project_id),
        ("organisation.create", organisation_id),
    ]


async def test_idempotency_key_replays_the_first_response(admin):
    headers = {"Idempotency-Key": "create-acme-once"}
    body = {**ORGANISATION, "name": "Replayed Ltd"}
    first = await admin.post("/api/v1/admin/organisations", json=body, headers=headers)
    again = await admin.post("/api/v1/admin/organisations", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    clash = await admin.post("/api/v1/admin/organisations", json={**body, "name": "Other"}, headers=headers)
    assert clash.status_code == 409 and clash.json()["field"] == "idempotency_key"


async def test_project_in_unknown_organisation_is_400(admin):
    response = await admin.post("/api/v1/admin/projects", json={"organisation_id": "org_nope", "name": "x"})
    assert response.status_code == 400
    assert response.json()["field"] == "organisation_id"


async def test_unknown_ids_are_404(admin):
    assert (await admin.get("/api/v1/admin/organisations/org_nope")).status_code == 404
    assert (await admin.get("/api/v1/admin/projects/prj_nope")).status_code == 404
    assert (await admin.post("/api/v1/admin/api-keys/key_nope/revoke")).status_code == 404


async def test_request_id_is_echoed_and_generated(admin):
    response = await admin.get("/api/v1/admin/organisations", headers={"X-Request-Id": "trace-me-42"})
    assert response.headers["X-Request-Id"] == "trace-me-42"
    generated = (await admin.get("/api/v1/admin/organisations")).headers["X-Request-Id"]
    assert len(generated) == 32


async def test_healthz_reports_each_service(gateway):
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get("/healthz")
    body = response.json()
    # Only ingest and invoicing run in this test; the others are down, so the platform is degraded.
    assert response.status_code == 503 and body["status"] == "degraded"
    assert body["database"] == "ok"
    assert body["services"]["ingest"]["status"] == "serving"
    assert body["services"]["invoicing"]["status"] == "serving"
    for down in ("metering", "payments", "notification"):
        assert body["services"][down]["status"] == "unreachable"


async def test_openapi_document_and_human_docs_work_offline(gateway):
    async with httpx.AsyncClient(base_url=gateway) as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        fetched = [await client.get(asset) for asset in assets]
    assert {"/api/v1/admin/organisations", "/api/v1/admin/projects", "/api/v1/admin/api-keys", "/healthz"} <= set(
        document["paths"]
    )
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Every asset of the docs page is served by the gateway itself: no CDN, so it works without internet.
    assert assets and all(asset.startswith("/") for asset in assets)
    assert [response.status_code for response in fetched] == [200] * len(assets)


async def test_request_id_reaches_the_services_logs(admin, caplog):
    caplog.set_level("INFO", logger="billing_runtime.grpc_server")
    await admin.get("/api/v1/admin/organisations", headers={"X-Request-Id": "follow-me-across-services"})
    rpc_lines = [
        record.msg for record in caplog.records if isinstance(record.msg, dict) and record.msg.get("event") == "rpc"
    ]
    assert any(
        line.get("request_id") == "follow-me-across-services" and line["rpc"].endswith("/ListOrganisations")
        for line in rpc_lines
    ), rpc_lines


async def test_http_requests_are_counted_by_route_template(database_url, nats_url, ingest, invoicing, refused_address):
    from prometheus_client import REGISTRY

    def count(status: str) -> float:
        value = REGISTRY.get_sample_value(
            "http_server_requests_total",
            {"method": "GET", "route": "/api/v1/admin/organisations/{organisation_id}", "status": status},
        )
        return value or 0.0

    async with running_service(
        GATEWAY,
        database_url,
        nats_url,
        admin_token=ADMIN_TOKEN,
        http_port=0,
        metrics_port=0,
        ingest_address=ingest.address,
        invoicing_address=invoicing.address,
        metering_address=refused_address,
        payments_address=refused_address,
        notification_address=refused_address,
    ) as runtime:
        before = count("404")
        async with httpx.AsyncClient(base_url=runtime.http_address) as client:
            for missing in ("org_a", "org_b"):
                response = await client.get(
                    f"/api/v1/admin/organisations/{missing}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                )
                assert response.status_code == 404
            scraped = (await client.get(runtime.metrics_server.address)).text
        assert count("404") - before == 2
        assert 'route="/api/v1/admin/organisations/{organisation_id}"' in scraped
        assert "org_a" not in scraped


async def test_one_trace_follows_a_request_from_the_gateway_through_invoicing_to_its_event(admin, invoicing, caplog):
    import sqlalchemy as sa

    from services.invoicing.adapters.tables import outbox
    from tests.conftest import FINISHED_SPANS

    caplog.set_level("INFO", logger="billing_runtime.grpc_server")
    FINISHED_SPANS.clear()
    created = await admin.post("/api/v1/admin/organisations", json={**ORGANISATION, "name": "Traced Ltd"})
    assert created.status_code == 201

    spans = FINISHED_SPANS.get_finished_spans()
    server_span = next(
        s
        for s in spans
        if s.name == "/billing.invoicing.v1.InvoicingService/CreateOrganisation" and s.kind.name == "SERVER"
    )
    http_span = next(s for s in spans if s.kind.name == "SERVER" and "/api/v1/admin/organisations" in s.name)
    trace_id = format(server_span.context.trace_id, "032x")
    assert server_span.context.trace_id == http_span.context.trace_id, "the gateway's trace must continue in invoicing"

    rpc_lines = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == "rpc"]
    assert any(line.get("trace_id") == trace_id and line["rpc"].endswith("/CreateOrganisation") for line in rpc_lines)

    async with invoicing.engine.connect() as conn:
        headers = (await conn.execute(sa.select(outbox.c.headers).order_by(outbox.c.id.desc()).limit(1))).scalar_one()
    assert headers["traceparent"].split("-")[1] == trace_id, "the event carries the request's trace to consumers"
