"""The project API key a REST caller presents, passed on to ingest, which owns keys and checks them; and the
organisation a customer's route acts in (``OrgScope``): the key's, or the signed-in organisation user's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from billing.ingest.v1 import ingest_pb2
from billing_runtime import clients, mesh
from billing_runtime.errors import Unauthenticated

_bearer = HTTPBearer(
    auto_error=False, scheme_name="ProjectApiKey", description="A project's API key (bk_...), from the admin API"
)


def presented_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """``Authorization: Bearer bk_...`` (or ``X-Api-Key: bk_...``); 401 when there is none.

    Whether the key is known, revoked or expired is ingest's to say (401 or 403).
    """
    key = credentials.credentials.strip() if credentials is not None else request.headers.get("x-api-key", "").strip()
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <api key>'")
    if not (key.isascii() and key.isprintable()):  # gRPC metadata would refuse it; it cannot be a key anyway
        raise Unauthenticated("API key is not valid")
    return key


def key_metadata(key: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata for a call made on the key holder's behalf: the key and the request id."""
    return (("authorization", f"Bearer {key}"), *clients.request_metadata())


async def key_project(request: Request, api_key: Annotated[str, Depends(presented_api_key)]) -> ingest_pb2.Project:
    """The project of the presented key, as ingest verified it (401 unknown key, 403 revoked or expired)."""
    reply = await clients.call(
        request.app.state.clients.ingest.VerifyApiKey, ingest_pb2.VerifyApiKeyRequest(secret=api_key)
    )
    # The key holder is who the calls this request makes are for.
    mesh.set_actor(f"project:{reply.project.id}", role="api-key", organisation=reply.project.organisation_id)
    return reply.project



@dataclass(frozen=True)
class Scope:
    """Whose data a customer's route shows and changes: ``organisation_id`` always; ``project`` when the caller
    presented a project's API key (an organisation user acts for the whole organisation); ``actor``, who the
    audit log records for the caller's writes (``project:<id>`` or ``user:<id>``)."""

    organisation_id: str
    actor: str
    project: ingest_pb2.Project | None = None


async def org_scope(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Scope:
    """The organisation user ``access_control`` authenticated (and authorised for the route), or else the project
    of the presented key as ingest verifies it (401 for none or an unknown one, 403 revoked or expired)."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        if not principal.organisation_id:  # access_control lets no staff credential this far; never widen
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <api key>'")
        return Scope(organisation_id=principal.organisation_id, actor=principal.actor)
    project = await key_project(request, presented_api_key(request, credentials))
    return Scope(organisation_id=project.organisation_id, actor=f"project:{project.id}", project=project)


OrgScope = Annotated[Scope, Depends(org_scope)]
"""A route parameter for the customer's routes: the organisation the caller may see (a project key's, or an
organisation user's) and nothing wider; routes filter by ``scope.organisation_id``."""
