"""Service-to-service trust on running services: mesh methods need a credential of a caller the table allows;
health, reflection and event ingestion with an API key need none; the end user reaches the callee's logs."""

from __future__ import annotations

import logging
import secrets

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import mesh
from tests.conftest import MESH_TOKENS, mesh_channel
from tests.integration.helpers import expect_rpc_error, organisation_request
from tests.integration.ingest.test_events import event

LIST_ORGANISATIONS = "/billing.invoicing.v1.InvoicingService/ListOrganisations"


async def test_no_credential_is_unauthenticated(invoicing, ingest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="billing_runtime.grpc_server")
    async with grpc.aio.insecure_channel(invoicing.address) as channel:
        error = await expect_rpc_error(
            invoicing_pb2_grpc.InvoicingServiceStub(channel).ListOrganisations(
                invoicing_pb2.ListOrganisationsRequest()), grpc.StatusCode.UNAUTHENTICATED)
    assert error.details() == "this method is for the billing mesh; present x-billing-mesh"
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        await expect_rpc_error(stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id="prj_x")),
                               grpc.StatusCode.UNAUTHENTICATED)
        await expect_rpc_error(stub.RevokeApiKey(ingest_pb2.RevokeApiKeyRequest(api_key_id="key_x")),
                               grpc.StatusCode.UNAUTHENTICATED)
    refusals = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == "rpc refused"]
    assert any(r["rpc"] == LIST_ORGANISATIONS and r["code"] == "UNAUTHENTICATED" for r in refusals)


async def test_a_wrong_token_is_unauthenticated_and_never_logged(invoicing, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="billing_runtime.grpc_server")
    wrong = secrets.token_urlsafe(32)
    for identity in (mesh.Identity(mesh.OPERATOR, wrong), mesh.Identity("gateway", MESH_TOKENS["ingest"]),
                     mesh.Identity("stranger", wrong)):
        async with mesh.aio_channel(invoicing.address, identity) as channel:
            error = await expect_rpc_error(
                invoicing_pb2_grpc.InvoicingServiceStub(channel).ListOrganisations(
                    invoicing_pb2.ListOrganisationsRequest()), grpc.StatusCode.UNAUTHENTICATED)
        assert error.details() == "x-billing-mesh is not valid"
    logged = " ".join(str(r.msg) for r in caplog.records)
    assert wrong not in logged and MESH_TOKENS["ingest"] not in logged


async def test_a_mesh_service_not_allowed_for_a_method_is_permission_denied(invoicing) -> None:
    notification = mesh.Identity("notification", MESH_TOKENS["notification"])
    async with mesh.aio_channel(invoicing.address, notification) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        error = await expect_rpc_error(stub.ListOrganisations(invoicing_pb2.ListOrganisationsRequest()),
                                       grpc.StatusCode.PERMISSION_DENIED)
        assert error.details() == f"notification may not call {LIST_ORGANISATIONS}"
        # ... while a method the table gives it answers (here: the organisation does not exist).
        await expect_rpc_error(stub.GetOrganisation(invoicing_pb2.GetOrganisationRequest(organisation_id="org_x")),
                               grpc.StatusCode.NOT_FOUND)


async def test_health_and_reflection_need_no_credential(invoicing) -> None:
    async with grpc.aio.insecure_channel(invoicing.address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter([request])):
            names = {service.name for service in reply.list_services_response.service}
            assert "billing.invoicing.v1.InvoicingService" in names
            break


async def test_events_need_only_an_api_key(invoicing_stub, ingest_stub, ingest) -> None:
    organisation = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation
    project = (await ingest_stub.CreateProject(
        ingest_pb2.CreateProjectRequest(organisation_id=organisation.id, name=f"p{secrets.token_hex(4)}"))).project
    key = (await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id))).secret
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        reply = await stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=[event("mesh-1")]),
                                        metadata=(("authorization", f"Bearer {key}"),))
        assert reply.outcome.accepted_count == 1
        # Without the key, ingest itself refuses (not the mesh check).
        error = await expect_rpc_error(stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=[event("mesh-2")])),
                                       grpc.StatusCode.UNAUTHENTICATED)
        assert "x-billing-mesh" not in error.details()


async def test_the_actor_reaches_the_callees_log_context(invoicing, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="billing_runtime.grpc_server")
    mesh.set_actor("admin-token", role="admin", organisation="org_actor")
    try:
        async with mesh_channel(invoicing.address) as channel:
            await invoicing_pb2_grpc.InvoicingServiceStub(channel).ListOrganisations(
                invoicing_pb2.ListOrganisationsRequest(page_size=1))
    finally:
        mesh.set_actor("")
    lines = [r.msg for r in caplog.records
             if isinstance(r.msg, dict) and r.msg.get("event") == "rpc" and r.msg.get("rpc") == LIST_ORGANISATIONS]
    assert lines, "the RPC's log line"
    assert {k: lines[-1].get(k) for k in ("actor", "actor_role", "actor_organisation", "caller")} == {
        "actor": "admin-token", "actor_role": "admin", "actor_organisation": "org_actor", "caller": "operator"}


async def test_an_actor_sent_without_a_mesh_credential_is_not_believed(ingest, caplog: pytest.LogCaptureFixture):
    """An API key opens ingest's events, but its holder cannot name an end user: only a verified mesh caller (the
    gateway, a service acting for it) may, or anyone could write any name into the logs and the audit trail."""
    caplog.set_level(logging.INFO, logger="billing_runtime.grpc_server")
    forged = (("authorization", "Bearer bk_nobody"), ("x-billing-actor", "admin-token"),
              ("x-billing-actor-role", "admin"))
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        await expect_rpc_error(ingest_pb2_grpc.IngestServiceStub(channel).IngestEvents(
            ingest_pb2.IngestEventsRequest(events=[event("forged")]), metadata=forged), grpc.StatusCode.UNAUTHENTICATED)
    lines = [r.msg for r in caplog.records
             if isinstance(r.msg, dict) and r.msg.get("event") == "rpc" and "IngestEvents" in r.msg.get("rpc", "")]
    assert lines, "the RPC's log line"
    assert "actor" not in lines[-1] and "actor_role" not in lines[-1]
