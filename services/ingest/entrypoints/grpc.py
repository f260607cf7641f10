"""IngestService over gRPC: protobuf in, use case, protobuf out. Nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing_runtime.service import Runtime
from billing_runtime.timestamps import from_timestamp
from services.ingest.adapters.messages import api_key_to_pb, project_to_pb
from services.ingest.service import api_keys, projects
from services.ingest.service.projects import OrganisationDirectory


def _now() -> datetime:
    return datetime.now(UTC)


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, runtime: Runtime, organisations: OrganisationDirectory) -> None:
        self._runtime = runtime
        self._organisations = organisations

    async def CreateProject(self, request, context):  # noqa: N802 - gRPC method names
        project, created = await projects.create_project(
            self._runtime.uow(),
            self._runtime.outbox,
            self._organisations,
            projects.CreateProject(request.organisation_id, request.name, request.idempotency_key),
        )
        return ingest_pb2.CreateProjectResponse(project=project_to_pb(project), created=created)

    async def GetProject(self, request, context):  # noqa: N802
        project = await projects.get_project(self._runtime.uow(), request.project_id)
        return ingest_pb2.GetProjectResponse(project=project_to_pb(project))

    async def ListProjects(self, request, context):  # noqa: N802
        page, token = await projects.list_projects(
            self._runtime.uow(), request.organisation_id, request.page_size, request.page_token
        )
        return ingest_pb2.ListProjectsResponse(projects=[project_to_pb(p) for p in page], next_page_token=token)

    async def CreateApiKey(self, request, context):  # noqa: N802
        now = _now()
        expires_at = from_timestamp(request.expire_time) if request.HasField("expire_time") else None
        key, secret = await api_keys.create_api_key(
            self._runtime.uow(),
            self._runtime.outbox,
            api_keys.CreateApiKey(request.project_id, request.name, expires_at),
            now,
        )
        return ingest_pb2.CreateApiKeyResponse(api_key=api_key_to_pb(key, now), secret=secret)

    async def ListApiKeys(self, request, context):  # noqa: N802
        now = _now()
        page, token = await api_keys.list_api_keys(
            self._runtime.uow(), request.project_id, request.page_size, request.page_token
        )
        return ingest_pb2.ListApiKeysResponse(api_keys=[api_key_to_pb(k, now) for k in page], next_page_token=token)

    async def RevokeApiKey(self, request, context):  # noqa: N802
        now = _now()
        key = await api_keys.revoke_api_key(self._runtime.uow(), self._runtime.outbox, request.api_key_id, now)
        return ingest_pb2.RevokeApiKeyResponse(api_key=api_key_to_pb(key, now))

    async def VerifyApiKey(self, request, context):  # noqa: N802
        now = _now()
        project, key = await api_keys.verify_api_key(self._runtime.uow(), request.secret, now)
        return ingest_pb2.VerifyApiKeyResponse(project=project_to_pb(project), api_key=api_key_to_pb(key, now))
