"""End to end: every service a separate process; a client drives the admin API, gRPC and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from devstack.mesh import ORDER, Mesh
from tests.e2e.conftest import cli_environment

pytestmark = pytest.mark.e2e


def admin(mesh: Mesh) -> httpx.Client:
    return httpx.Client(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {mesh.admin_token}"}, timeout=10)


def healthz(mesh: Mesh) -> tuple[int, dict]:
    response = httpx.get(f"{mesh.gateway_url}/healthz", timeout=10)
    return response.status_code, response.json()


def wait_for(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def test_every_service_is_serving_with_reflection(mesh: Mesh):
    for name in ORDER:
        with grpc.insecure_channel(mesh.address(name)) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING, name
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            reply = next(
                iter(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
            )
            names = {service.name for service in reply.list_services_response.service}
            assert "grpc.health.v1.Health" in names, name
        scraped = httpx.get(mesh.metrics_url(name), timeout=5)
        assert scraped.status_code == 200 and "billing_service_serving 1.0" in scraped.text, name
    status, body = healthz(mesh)
    assert status == 200 and body["status"] == "ok"
    assert {name: s["status"] for name, s in body["services"].items()} == {
        name: "serving" for name in ORDER if name != "gateway"
    }


def test_tenancy_through_the_admin_api_and_grpc(mesh: Mesh):
    with admin(mesh) as client:
        organisation = client.post(
            "/api/v1/admin/organisations",
            json={
                "name": "Globex India Pvt Ltd",
                "billing_email": "ap@globex.example",
                "billing_currency": "INR",
                "country": "IN",
                "state_code": "27",
                "gstin": "27AAPFU0939F1ZV",
                "timezone": "Asia/Kolkata",
            },
        )
        assert organisation.status_code == 201, organisation.text
        organisation_id = organisation.json()["id"]
        bad = client.post("/api/v1/admin/organisations", json={**organisation.json() | {"gstin": "27AAPFU0939F1ZX"}})
        assert bad.status_code == 400
        project = client.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "api"})
        assert project.status_code == 201, project.text
        key = client.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]}).json()

    # A plain gRPC client is refused: the services answer only the mesh (and the operator) ...
    with grpc.insecure_channel(mesh.address("invoicing")) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            invoicing_pb2_grpc.InvoicingServiceStub(channel).GetOrganisation(
                invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # ... while the operator's client sees the same organisation, straight from invoicing ...
    with mesh.sync_channel("invoicing") as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        fetched = stub.GetOrganisation(invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
        assert fetched.organisation.gstin == "27AAPFU0939F1ZV"
    # ... and ingest resolves the API key to its project.
    with mesh.sync_channel("ingest") as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        verified = stub.VerifyApiKey(ingest_pb2.VerifyApiKeyRequest(secret=key["secret"]))
        assert verified.project.organisation_id == organisation_id

    # Neither the key's secret nor the admin token is ever written to a log.
    logs = {name: mesh.log_path(name).read_text() for name in ORDER}
    assert all(logs.values()), "every service should have logged something"
    for name, text in logs.items():
        assert key["secret"] not in text, f"{name} logged an API key secret"
        assert mesh.admin_token not in text, f"{name} logged the admin token"


def test_cli_lists_what_the_api_created(mesh: Mesh):
    with admin(mesh) as client:
        created = client.post(
            "/api/v1/admin/organisations",
            json={
                "name": "CLI Visible Ltd",
                "billing_email": "a@b.example",
                "billing_currency": "USD",
                "country": "US",
                "state_code": "CA",
            },
        ).json()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "billing_cli",
            "--gateway",
            mesh.gateway_url,
            "--admin-token",
            mesh.admin_token,
            "organisations",
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_environment(),
    )
    assert result.returncode == 0, result.stderr
    assert created["id"] in {row["id"] for row in json.loads(result.stdout)}
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "billing_cli",
            "--gateway",
            mesh.gateway_url,
            "--admin-token",
            "wrong-token",
            "organisations",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_environment(),
    )
    assert refused.returncode == 1
    assert "401" in refused.stdout + refused.stderr


def test_healthz_notices_a_killed_service_and_its_return(mesh: Mesh):
    mesh.kill("metering")  # SIGKILL: a crash, not a polite shutdown
    seconds = wait_for(lambda: healthz(mesh)[0] == 503, timeout=5, what="/healthz reporting metering down")
    status, body = healthz(mesh)
    assert body["services"]["metering"]["status"] == "unreachable"
    assert body["services"]["invoicing"]["status"] == "serving"
    print(f"/healthz saw metering down after {seconds:.2f}s")

    mesh.restart("metering")
    wait_for(lambda: healthz(mesh)[0] == 200, timeout=30, what="/healthz reporting metering back")
    assert healthz(mesh)[1]["services"]["metering"]["status"] == "serving"
