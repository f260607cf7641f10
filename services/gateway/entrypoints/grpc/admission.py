"""The one check in front of every method of the gateway's gRPC API: the decision REST's ``access_control`` makes
for the method's REST twin, from the same permission table (``permissions.METHODS``).

Callers are people and their tools, not mesh services (the mesh table admits these methods as ``mesh.STAFF``):
they present ``authorization: Bearer <credential>`` metadata, a user's token (``bt_...``) or the bootstrap admin
token, verified as REST verifies it (``service.staff.authenticate_staff``: hash lookup, expiry, revocation,
disabled user). Then, in REST's order: ``GATEWAY_ADMIN_ALLOWED_CIDRS`` and the token's own source ranges against
the caller's address (the gRPC peer, or ``x-forwarded-for`` from a trusted proxy), the role's permission
(``domain.access.admit``), and for a method that changes something (every method but those the contract marks
``NO_SIDE_EFFECTS``) a charge against the credential's staff write limit, shared with REST.

No credential, or one that is not valid: UNAUTHENTICATED. Refused by address or role: PERMISSION_DENIED. Over
the write limit: RESOURCE_EXHAUSTED with ``retry-after`` (and the RateLimit fields) in the trailing metadata. A
refused call reaches no use case and writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import grpc
import structlog
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor

from billing_runtime import mesh
from billing_runtime.errors import PermissionDenied, Unauthenticated
from billing_runtime.logging import bind_context, get_logger
from services.gateway.config import GatewaySettings
from services.gateway.domain.access import Principal, admit, admit_to_admin_api
from services.gateway.domain.networks import forwarded_client
from services.gateway.entrypoints.http.permissions import METHODS
from services.gateway.service import staff
from services.gateway.service.ports import StaffTransaction
from services.gateway.service.rate_limits import RateLimited, RateLimits, enforce_staff_write

log = get_logger(__name__)

NO_CREDENTIAL = "send 'authorization: Bearer <staff token>' metadata"
FORWARDED_FOR = "x-forwarded-for"
# Trailing metadata of a RESOURCE_EXHAUSTED answer (ingest's quota refusals use the same keys).
RETRY_AFTER = "retry-after"
RATELIMIT_POLICY = "ratelimit-policy"
RATELIMIT = "ratelimit"


@dataclass(frozen=True)
class StaffCall:
    """An admitted call: who acts, from which address, under which request id (what the audit log records)."""

    principal: Principal
    source: str
    request_id: str


def peer_host(peer: str) -> str:
    """The address of a gRPC peer (``ipv4:10.0.0.7:51234``, ``ipv6:[::1]:51234``, either possibly
    percent-encoded); empty for anything else (a Unix socket)."""
    kind, _, rest = unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return ""
    return rest.rpartition(":")[0].removeprefix("[").removesuffix("]")


def bearer(metadata: Iterable[tuple[str, Any]]) -> str:
    for name, value in metadata:
        if name == "authorization":
            scheme, _, credential = str(value).partition(" ")
            return credential.strip() if scheme.lower() == "bearer" else ""
    return ""


def safe_methods(service: ServiceDescriptor) -> frozenset[str]:
    """The methods the contract marks ``idempotency_level = NO_SIDE_EFFECTS`` (REST's GET): not charged against
    the write limit."""
    return frozenset(
        f"/{service.full_name}/{method.name}" for method in service.methods
        if method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    )


class Admission:
    def __init__(
        self, settings: GatewaySettings, uow: Callable[[], StaffTransaction], rate_limits: RateLimits | None,
        safe: frozenset[str],
    ) -> None:
        self._bootstrap = settings.admin_token.get_secret_value()
        self._trusted_proxies = settings.trusted_proxy_networks()
        self._admin_networks = settings.admin_networks()
        self._write_limit = settings.admin_write_limit_per_minute
        self._uow = uow
        self._rate_limits = rate_limits
        self._safe = safe

    async def admit(self, method: str, context: grpc.aio.ServicerContext) -> StaffCall:
        """The admitted call, or the domain error that refuses it (RateLimited over the write limit)."""
        access = METHODS.get(method)
        if access is None or access.permission is None:  # fail closed; test_permissions.py keeps it from happening
            log.error("gRPC method without a permission entry", rpc=method)
            raise PermissionDenied("this method has no permission entry")
        metadata = tuple(context.invocation_metadata() or ())
        source = forwarded_client(peer_host(context.peer()), [str(v) for k, v in metadata if k == FORWARDED_FOR],
                                  self._trusted_proxies)
        principal = await staff.authenticate_staff(self._uow(), bearer(metadata), self._bootstrap,
                                                   datetime.now(UTC))
        if principal is None:  # nothing, or no staff credential (a project key)
            raise Unauthenticated(NO_CREDENTIAL)
        admit_to_admin_api(source, self._admin_networks)
        admit(principal, access.permission, source)
        # Who acts, for this call's log lines and the calls it makes (invoicing, for a new organisation user).
        bind_context(actor=principal.actor, actor_role=principal.role.value)
        mesh.set_actor(principal.actor, role=principal.role.value, organisation=principal.organisation_id)
        if method not in self._safe:
            await enforce_staff_write(self._rate_limits, principal.actor, self._write_limit)
        request_id = structlog.contextvars.get_contextvars().get("request_id") or uuid.uuid4().hex
        return StaffCall(principal, source, request_id)

    def guard(self, method: str, behaviour: Callable[[Any, StaffCall], Awaitable[Any]]):
        """``behaviour`` as a gRPC method: the call admitted first, then ``behaviour(request, call)``. Domain
        errors are left to the server interceptor (their status codes); a rate-limit refusal is answered here."""

        async def admitted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                call = await self.admit(method, context)
            except RateLimited as refused:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(refused), refusal_metadata(refused))
            return await behaviour(request, call)

        return admitted


def refusal_metadata(refused: RateLimited) -> tuple[tuple[str, str], ...]:
    metadata = [(RETRY_AFTER, str(refused.decision.retry_after_seconds))]
    policy, current = refused.fields
    if policy:
        metadata += [(RATELIMIT_POLICY, policy), (RATELIMIT, current)]
    return tuple(metadata)


def admitted_servicer(service: ServiceDescriptor, servicer: object, admission: Admission) -> SimpleNamespace:
    """What the generated ``add_<Service>Servicer_to_server`` is handed: every method of ``service`` (from its
    descriptor, so none is left out) behind ``admission``. A servicer lacking a method fails here, at start-up."""
    return SimpleNamespace(**{
        method.name: admission.guard(f"/{service.full_name}/{method.name}", getattr(servicer, method.name))
        for method in service.methods
    })
