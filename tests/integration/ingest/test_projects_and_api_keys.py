"""IngestService over real gRPC and PostgreSQL, asking a real invoicing service about organisations."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.json_format import MessageToJson

from billing.ingest.v1 import ingest_pb2
from billing_runtime.timestamps import to_timestamp
from services.ingest.__main__ import DEFINITION as INGEST
from services.ingest.adapters.tables import api_keys, projects
from tests.conftest import mesh_channel, running_service
from tests.integration.helpers import error_field, expect_rpc_error, organisation_request


@pytest.fixture
async def organisation_id(invoicing_stub) -> str:
    return (await invoicing_stub.CreateOrganisation(organisation_request())).organisation.id


@pytest.fixture
async def project(ingest_stub, organisation_id) -> ingest_pb2.Project:
    reply = await ingest_stub.CreateProject(
        ingest_pb2.CreateProjectRequest(organisation_id=organisation_id, name="production")
    )
    return reply.project


async def count(runtime, table) -> int:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_project_needs_an_organisation_that_invoicing_knows(ingest, ingest_stub):
    before = await count(ingest, projects)
    error = await expect_rpc_error(
        ingest_stub.CreateProject(ingest_pb2.CreateProjectRequest(organisation_id="org_nope", name="web")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "organisation_id"
    assert await count(ingest, projects) == before


async def test_project_names_are_unique_within_an_organisation(ingest_stub, project):
    error = await expect_rpc_error(
        ingest_stub.CreateProject(
            ingest_pb2.CreateProjectRequest(organisation_id=project.organisation_id, name=project.name)
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert error_field(error) == "name"


async def test_project_creation_is_idempotent_by_key(ingest_stub, organisation_id):
    request = ingest_pb2.CreateProjectRequest(
        organisation_id=organisation_id, name="staging", idempotency_key=secrets.token_hex(6)
    )
    first, again = await ingest_stub.CreateProject(request), await ingest_stub.CreateProject(request)
    assert first.created and not again.created
    assert first.project == again.project


async def test_invalid_project_name_is_rejected(ingest_stub, organisation_id):
    error = await expect_rpc_error(
        ingest_stub.CreateProject(ingest_pb2.CreateProjectRequest(organisation_id=organisation_id, name="a/b")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "name"


async def test_projects_are_listed_per_organisation(ingest_stub, project):
    page = await ingest_stub.ListProjects(ingest_pb2.ListProjectsRequest(organisation_id=project.organisation_id))
    assert [p.id for p in page.projects] == [project.id]


async def test_api_key_secret_is_returned_once_and_stored_only_as_a_hash(ingest, ingest_stub, project):
    created = await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id, name="backend"))
    secret = created.secret
    assert secret.startswith(created.api_key.prefix + "_")
    assert created.api_key.state == ingest_pb2.API_KEY_STATE_ACTIVE

    listed = await ingest_stub.ListApiKeys(ingest_pb2.ListApiKeysRequest(project_id=project.id))
    assert [k.id for k in listed.api_keys] == [created.api_key.id]
    assert secret not in MessageToJson(listed)
    async with ingest.engine.connect() as conn:
        row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == created.api_key.id))).one()
    assert secret not in [str(value) for value in row]
    assert secret[len(row.prefix) :] not in "".join(str(value) for value in row)


async def test_verify_accepts_the_key_and_refuses_tampered_or_unknown_ones(ingest_stub, project):
    created = await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id))
    verified = await ingest_stub.VerifyApiKey(ingest_pb2.VerifyApiKeyRequest(secret=created.secret))
    assert verified.project == project
    assert verified.api_key.id == created.api_key.id
    tampered = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
    for secret in (tampered, "bk_nope", "", "Bearer " + created.secret):
        await expect_rpc_error(
            ingest_stub.VerifyApiKey(ingest_pb2.VerifyApiKeyRequest(secret=secret)), grpc.StatusCode.UNAUTHENTICATED
        )


async def test_revoked_key_is_refused_and_revoking_twice_keeps_the_first_time(ingest_stub, project):
    created = await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id))
    revoked = await ingest_stub.RevokeApiKey(ingest_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.id))
    assert revoked.api_key.state == ingest_pb2.API_KEY_STATE_REVOKED
    again = await ingest_stub.RevokeApiKey(ingest_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.id))
    assert again.api_key.revoke_time == revoked.api_key.revoke_time
    error = await expect_rpc_error(
        ingest_stub.VerifyApiKey(ingest_pb2.VerifyApiKeyRequest(secret=created.secret)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "revoked" in error.details()
    await expect_rpc_error(
        ingest_stub.RevokeApiKey(ingest_pb2.RevokeApiKeyRequest(api_key_id="key_missing")), grpc.StatusCode.NOT_FOUND
    )


async def test_key_stops_working_when_it_expires(ingest, ingest_stub, project):
    expires = datetime.now(UTC) + timedelta(hours=1)
    request = ingest_pb2.CreateApiKeyRequest(project_id=project.id, expire_time=to_timestamp(expires))
    created = await ingest_stub.CreateApiKey(request)
    await ingest_stub.VerifyApiKey(ingest_pb2.VerifyApiKeyRequest(secret=created.secret))
    # Move the expiry into the past rather than sleep: the state is computed at verification time.
    async with ingest.engine.begin() as conn:
        await conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.id == created.api_key.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    error = await expect_rpc_error(
        ingest_stub.VerifyApiKey(ingest_pb2.VerifyApiKeyRequest(secret=created.secret)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "expired" in error.details()
    listed = await ingest_stub.ListApiKeys(ingest_pb2.ListApiKeysRequest(project_id=project.id))
    assert {k.id: k.state for k in listed.api_keys}[created.api_key.id] == ingest_pb2.API_KEY_STATE_EXPIRED


async def test_key_for_unknown_project_or_past_expiry_is_rejected(ingest, ingest_stub, project):
    before = await count(ingest, api_keys)
    error = await expect_rpc_error(
        ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id="prj_nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "project_id"
    past = to_timestamp(datetime.now(UTC) - timedelta(minutes=1))
    error = await expect_rpc_error(
        ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id, expire_time=past)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "expire_time"
    assert await count(ingest, api_keys) == before


async def test_project_creation_fails_cleanly_when_invoicing_is_down(database_url, nats_url, refused_address):
    async with running_service(
        INGEST, database_url, nats_url, invoicing_address=refused_address, metering_address=refused_address
    ) as ingest:
        async with mesh_channel(ingest.address) as channel:
            from billing.ingest.v1 import ingest_pb2_grpc

            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            before = await count(ingest, projects)
            error = await expect_rpc_error(
                stub.CreateProject(ingest_pb2.CreateProjectRequest(organisation_id="org_x", name="web")),
                grpc.StatusCode.UNAVAILABLE,
            )
            assert "unavailable" in error.details()
            assert await count(ingest, projects) == before
