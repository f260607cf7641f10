"""/api/v1/admin: organisations, projects and API keys, for staff (see access.py and permissions.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from billing.ingest.v1 import ingest_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.logging import get_logger
from billing_runtime.timestamps import to_timestamp
from services.gateway.adapters.audit import AuditFilter, AuditLog
from services.gateway.adapters.services import ServiceClients
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.access import principal_of, source_address
from services.gateway.entrypoints.http.input_policy import INT64_MAX

log = get_logger(__name__)
_bearer = HTTPBearer(
    auto_error=False, description="A staff credential: a staff user's token (bt_...) or the bootstrap admin token"
)


async def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The staff actor of the request. ``access_control`` (app-wide, run first) has already authenticated the
    credential and checked the route's permission in the one table; this dependency declares the scheme in the
    OpenAPI document and gives routes the actor."""
    return principal_of(request).actor


def staff_actor(request: Request) -> str:
    """The audit log's actor for a staff member's write."""
    return principal_of(request).actor


router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={400: {"model": schemas.Error}, 401: {"model": schemas.Error}, 404: {"model": schemas.Error},
               409: {"model": schemas.Error}, 503: {"model": schemas.Error}},
)

IdempotencyKey = Annotated[
    str, Header(alias="Idempotency-Key", description="Retry with the same key to get the first result back")
]
PageSize = Annotated[int, Query(ge=0, le=500, description="0 means 50")]
PageToken = Annotated[str, Query(description="next_page_token of the previous page")]


def _services(request: Request) -> ServiceClients:
    return request.app.state.clients


async def audit(request: Request, action: str, resource_type: str, resource_id: str, *,
                actor: str | None = None, reason: str = "", before: dict[str, Any] | None = None,
                after: dict[str, Any] | None = None, role: str | None = None) -> None:
    """Record a write: a staff member's (with their role), or (``actor``) a key holder's or a person signing in
    (``role`` when known) that an operator must be able to trace; with the source address, the reason where one
    is required (voids, refunds, price changes) and a before/after summary where the write changes something. The
    write already happened, so a failure here is logged, not returned."""
    principal = getattr(request.state, "principal", None)
    try:
        async with request.app.state.uow_factory() as uow:
            await AuditLog(uow.connection).record(
                request_id=request.state.request_id, actor=actor or staff_actor(request), action=action,
                resource_type=resource_type, resource_id=resource_id,
                role=role if role is not None else (
                    principal.role.value if principal is not None and actor in (None, principal.actor) else ""),
                source_ip=source_address(request), reason=reason, before=before, after=after,
            )
    except Exception:  # noqa: BLE001
        log.exception("audit log write failed", action=action, resource_id=resource_id)


def _replayed(response: Response, created: bool) -> None:
    if not created:
        response.headers["Idempotent-Replayed"] = "true"


@router.post("/organisations", status_code=status.HTTP_201_CREATED, response_model=schemas.Organisation)
async def create_organisation(
    body: schemas.OrganisationCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Create an organisation (the billed account). Invalid billing details answer 400 naming the field."""
    reply = await clients.call(
        _services(request).invoicing.CreateOrganisation,
        invoicing_pb2.CreateOrganisationRequest(**body.model_dump(), idempotency_key=idempotency_key),
    )
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "organisation.create", "organisation", reply.organisation.id)
    return schemas.Organisation.from_pb(reply.organisation)


@router.get("/organisations", response_model=schemas.Page[schemas.Organisation])
async def list_organisations(request: Request, page_size: PageSize = 0, page_token: str = ""):
    reply = await clients.call(
        _services(request).invoicing.ListOrganisations,
        invoicing_pb2.ListOrganisationsRequest(page_size=page_size, page_token=page_token),
    )
    return schemas.Page[schemas.Organisation](
        data=[schemas.Organisation.from_pb(o) for o in reply.organisations], next_page_token=reply.next_page_token
    )


@router.get("/organisations/{organisation_id}", response_model=schemas.Organisation)
async def get_organisation(organisation_id: str, request: Request):
    reply = await clients.call(
        _services(request).invoicing.GetOrganisation,
        invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id),
    )
    return schemas.Organisation.from_pb(reply.organisation)


@router.post("/projects", status_code=status.HTTP_201_CREATED, response_model=schemas.Project)
async def create_project(
    body: schemas.ProjectCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Create a project in an existing organisation; names are unique within the organisation."""
    reply = await clients.call(
        _services(request).ingest.CreateProject,
        ingest_pb2.CreateProjectRequest(**body.model_dump(), idempotency_key=idempotency_key),
    )
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "project.create", "project", reply.project.id)
    return schemas.Project.from_pb(reply.project)


@router.get("/projects", response_model=schemas.Page[schemas.Project])
async def list_projects(request: Request, organisation_id: str = "", page_size: PageSize = 0, page_token: str = ""):
    reply = await clients.call(
        _services(request).ingest.ListProjects,
        ingest_pb2.ListProjectsRequest(organisation_id=organisation_id, page_size=page_size, page_token=page_token),
    )
    return schemas.Page[schemas.Project](
        data=[schemas.Project.from_pb(p) for p in reply.projects], next_page_token=reply.next_page_token
    )


@router.get("/projects/{project_id}", response_model=schemas.Project)
async def get_project(project_id: str, request: Request):
    reply = await clients.call(
        _services(request).ingest.GetProject, ingest_pb2.GetProjectRequest(project_id=project_id)
    )
    return schemas.Project.from_pb(reply.project)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=schemas.ApiKeyWithSecret)
async def create_api_key(body: schemas.ApiKeyCreate, request: Request):
    """Mint an API key. The `secret` is in this response only: it is stored as a hash."""
    message = ingest_pb2.CreateApiKeyRequest(project_id=body.project_id, name=body.name)
    if body.expires_at is not None:
        message.expire_time.CopyFrom(to_timestamp(body.expires_at))
    reply = await clients.call(_services(request).ingest.CreateApiKey, message)
    await audit(request, "api_key.create", "api_key", reply.api_key.id)
    key = schemas.ApiKey.from_pb(reply.api_key)
    return schemas.ApiKeyWithSecret(**key.model_dump(), secret=reply.secret)


@router.get("/api-keys", response_model=schemas.Page[schemas.ApiKey])
async def list_api_keys(request: Request, project_id: str = "", page_size: PageSize = 0, page_token: str = ""):
    """List API keys (never their secrets), optionally of one project."""
    reply = await clients.call(
        _services(request).ingest.ListApiKeys,
        ingest_pb2.ListApiKeysRequest(project_id=project_id, page_size=page_size, page_token=page_token),
    )
    return schemas.Page[schemas.ApiKey](
        data=[schemas.ApiKey.from_pb(k) for k in reply.api_keys], next_page_token=reply.next_page_token
    )


@router.post("/api-keys/{api_key_id}/revoke", response_model=schemas.ApiKey)
async def revoke_api_key(api_key_id: str, request: Request):
    """Revoke a key at once. Revoking a revoked key returns it unchanged."""
    reply = await clients.call(
        _services(request).ingest.RevokeApiKey, ingest_pb2.RevokeApiKeyRequest(api_key_id=api_key_id)
    )
    await audit(request, "api_key.revoke", "api_key", api_key_id)
    return schemas.ApiKey.from_pb(reply.api_key)


_AUDIT_ID = Query(ge=1, le=INT64_MAX, description="Entries below this id (the last one seen)")


def _audit_filter(
    actor: Annotated[str, Query(max_length=200, description="This actor (admin-token, user:<id>, prj_...)")] = "",
    action: Annotated[str, Query(max_length=200, description="Actions starting with this ('invoice.')")] = "",
    resource_type: Annotated[str, Query(max_length=100)] = "",
    resource_id: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[datetime | None, Query(description="At or after this time")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
) -> AuditFilter:
    return AuditFilter(actor=actor, action=action, resource_type=resource_type, resource_id=resource_id,
                       since=since, until=until)


AuditQuery = Annotated[AuditFilter, Depends(_audit_filter)]


@router.get("/audit-log", response_model=list[schemas.AuditEntry])
async def audit_log(
    request: Request,
    matching: AuditQuery,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before_id: Annotated[int | None, _AUDIT_ID] = None,
):
    """Admin and financial writes, newest first, filtered by actor, action (prefix), resource and time; page with
    `before_id` (the last id seen). The log is append-only: nobody, the platform included, can change an entry."""
    async with request.app.state.uow_factory() as uow:
        return await AuditLog(uow.connection).recent(limit=limit, before_id=before_id, matching=matching)


@router.get("/audit-log/export", response_class=StreamingResponse, summary="Export the audit log as JSON lines",
            responses={200: {"content": {"application/x-ndjson": {}}}})
async def export_audit_log(
    request: Request,
    matching: AuditQuery,
    after_id: Annotated[int, Query(ge=0, le=INT64_MAX, description="Entries after this id (the last received)")] = 0,
):
    """Every matching entry, oldest first, one JSON object per line (`application/x-ndjson`), read in pages so any
    size streams in constant memory. Filters as for the list; `after_id` resumes an interrupted export."""
    uow_factory = request.app.state.uow_factory

    async def lines() -> AsyncIterator[bytes]:
        last = after_id
        while True:
            async with uow_factory() as uow:
                page = await AuditLog(uow.connection).after_id(limit=1000, after_id=last, matching=matching)
            for entry in page:
                yield schemas.AuditEntry(**entry).model_dump_json().encode() + b"\n"
            if len(page) < 1000:
                return
            last = page[-1]["id"]

    return StreamingResponse(lines(), media_type="application/x-ndjson")
