"""Service-to-service trust: who may call which gRPC method of the billing mesh.

Every service has its own secret mesh token (``<PREFIX>MESH_TOKEN``) and knows the SHA-256 verifiers of the
others (``MESH_VERIFIERS``: ``name=sha256hex,...``; not secret). A caller presents ``x-billing-mesh:
<name>:<token>`` on every call (:func:`billing_runtime.clients.channel` adds it); the callee looks the method up
in ONE table, declared by each service next to its ``ServiceDefinition``: the callers allowed (a set of names),
:data:`PUBLIC` (health, reflection: probes), :data:`API_KEY` (external clients that present a project's API
key, which the servicer checks) or :data:`STAFF` (people and their tools presenting a staff token, which the
gateway admits against its permission table). A compromised service can only impersonate itself.

The end user a call is made for travels beside it (``x-billing-actor``, ``-role``, ``-organisation``): the
gateway calls :func:`set_actor` once it has authenticated a request, the client interceptor copies it into the
metadata, and the callee binds it to its log context, so log lines and audit records carry it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

import grpc

MESH_HEADER: Final = "x-billing-mesh"
ACTOR_HEADER: Final = "x-billing-actor"
ACTOR_ROLE_HEADER: Final = "x-billing-actor-role"
ACTOR_ORGANISATION_HEADER: Final = "x-billing-actor-organisation"

# An operator calling a service by hand (buf curl, scripts); allowed wherever the gateway is.
OPERATOR: Final = "operator"
# Services and tools (gRPC callers) allowed to call one of the platform's methods.
SERVICES: Final = ("ingest", "metering", "invoicing", "payments", "notification", "gateway")


class Open(Enum):
    """A method callable without a mesh credential."""

    PUBLIC = "public"  # anyone: health and reflection, for probes and tools
    API_KEY = "api-key"  # external clients with a project's API key, which the servicer itself checks
    # People and their tools with a staff token (or the bootstrap admin token): the gateway's AccessService, which
    # admits each call against the gateway's permission table (services/gateway/entrypoints/grpc/admission.py).
    STAFF = "staff"


PUBLIC: Final = Open.PUBLIC
API_KEY: Final = Open.API_KEY
STAFF: Final = Open.STAFF
Access = frozenset[str] | Open

# The edge: what the gateway may call, an operator may call too.
EDGE: Final = frozenset({"gateway", OPERATOR})

# Always public, whatever a service declares: the standard health service and reflection (both versions).
PUBLIC_PREFIXES: Final = ("/grpc.health.v1.Health/", "/grpc.reflection.")

NO_CREDENTIAL: Final = f"this method is for the billing mesh; present {MESH_HEADER}"


def methods(service: str, table: Mapping[str, Access | Iterable[str]]) -> dict[str, Access]:
    """A service's table by short method name -> full method names (``/billing.x.v1.XService/Method``)."""
    return {
        f"/{service}/{name}": access if isinstance(access, Open) else frozenset(access)
        for name, access in table.items()
    }


# -- identities and verifiers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who this process is on the mesh, and its secret token (never logged: see ``__repr__``)."""

    name: str
    token: str

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, token=***)"

    @property
    def header(self) -> str:
        return f"{self.name}:{self.token}"

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((MESH_HEADER, self.header),) if self.token else ()


def verifier(token: str) -> str:
    """What a callee keeps of a caller's token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_verifiers(text: str) -> dict[str, str]:
    """``name=sha256hex,name=sha256hex`` (spaces and newlines allowed) -> ``{name: sha256hex}``."""
    verifiers: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, digest = item.partition("=")
        name, digest = name.strip(), digest.strip().lower()
        if not sep or not name or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"MESH_VERIFIERS: expected name=<64 hex digits>, got {name or item[:20]!r}")
        verifiers[name] = digest
    return verifiers


def format_verifiers(tokens: Mapping[str, str]) -> str:
    """The ``MESH_VERIFIERS`` value for ``{name: token}``."""
    return ",".join(f"{name}={verifier(token)}" for name, token in tokens.items())


_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("billing_mesh_identity", default=None)
_default: Identity | None = None


@contextlib.contextmanager
def acting_as(identity: Identity | None) -> Iterator[None]:
    """Within this block (and the tasks it starts), :func:`clients.channel` makes channels that present
    ``identity``; each channel keeps the identity it was made with. A service's start-up runs inside one."""
    token = _identity.set(identity)
    try:
        yield
    finally:
        _identity.reset(token)


def use_by_default(identity: Identity | None) -> None:
    """The identity of channels made outside :func:`acting_as` (none by default: their calls are refused).
    Tests and tools set it; a service never needs to."""
    global _default
    _default = identity


def current_identity() -> Identity | None:
    return _identity.get() or _default


# -- the end user a call is made for ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    actor: str
    role: str = ""
    organisation: str = ""

    def metadata(self) -> tuple[tuple[str, str], ...]:
        pairs = [(ACTOR_HEADER, self.actor)]
        if self.role:
            pairs.append((ACTOR_ROLE_HEADER, self.role))
        if self.organisation:
            pairs.append((ACTOR_ORGANISATION_HEADER, self.organisation))
        return tuple(pairs)

    def log_fields(self) -> dict[str, str]:
        fields = {"actor": self.actor}
        if self.role:
            fields["actor_role"] = self.role
        if self.organisation:
            fields["actor_organisation"] = self.organisation
        return fields


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("billing_mesh_actor", default=None)


def set_actor(actor: str, role: str = "", organisation: str = "") -> None:
    """The end user the current request is for (``admin-token``, later ``user:<id>``); the calls it makes carry it."""
    _actor.set(Actor(actor, role, organisation) if actor else None)


def current_actor() -> Actor | None:
    return _actor.get()


def actor_from(metadata: Mapping[str, str]) -> Actor | None:
    """The actor a caller sent (bounded: metadata is the caller's input)."""
    actor = metadata.get(ACTOR_HEADER, "")
    if not actor:
        return None
    return Actor(actor[:200], metadata.get(ACTOR_ROLE_HEADER, "")[:100],
                 metadata.get(ACTOR_ORGANISATION_HEADER, "")[:100])


def outgoing_metadata(identity: Identity | None) -> tuple[tuple[str, str], ...]:
    actor = _actor.get()
    own = identity.metadata() if identity is not None else ()
    return own + actor.metadata() if actor is not None else own


# -- the callee's check -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    details: str
    reason: str  # for the log line: never the token
    caller: str = ""


class Guard:
    """Checks a call against the table. A caller's verified ``name:token`` header is cached (a dict lookup per
    call after the first); a method missing from the table is refused (declared tables are tested to be
    complete)."""

    def __init__(self, table: Mapping[str, Access], verifiers: Mapping[str, str]) -> None:
        self._table = dict(table)
        self._verifiers = {name: digest.lower() for name, digest in verifiers.items()}
        self._verified: dict[str, str] = {}  # header value -> caller name

    def check(self, method: str, header: str | None) -> Refusal | None:
        """None when the call may proceed."""
        access = self._table.get(method)
        if access is None:
            if method.startswith(PUBLIC_PREFIXES):
                return None
            caller = self.caller(header) if header else None
            return Refusal(grpc.StatusCode.PERMISSION_DENIED, "this method is not open to any caller",
                           "method not in the table", caller or "")
        if isinstance(access, Open):
            return None
        if not header:
            return Refusal(grpc.StatusCode.UNAUTHENTICATED, NO_CREDENTIAL, "no credential")
        caller = self.caller(header)
        if caller is None:
            name = header.partition(":")[0][:40]
            return Refusal(grpc.StatusCode.UNAUTHENTICATED, f"{MESH_HEADER} is not valid", "unknown or wrong token",
                           name if name in self._verifiers else "")
        if caller not in access:
            return Refusal(grpc.StatusCode.PERMISSION_DENIED, f"{caller} may not call {method}", "not allowed",
                           caller)
        return None

    def caller(self, header: str) -> str | None:
        """The name a ``name:token`` header proves, or None (cached once verified)."""
        known = self._verified.get(header)
        if known is not None:
            return known
        name, sep, token = header.partition(":")
        expected = self._verifiers.get(name)
        if not sep or not token or expected is None:
            return None
        if not hmac.compare_digest(verifier(token), expected):
            return None
        if len(self._verified) < 1024:  # a handful of identities; bounded all the same
            self._verified[header] = name
        return name


def header_of(metadata: Iterable[tuple[str, str]] | None) -> str | None:
    for key, value in metadata or ():
        if key == MESH_HEADER:
            return value
    return None


def missing_methods(table: Mapping[str, Access], service_descriptors: Iterable[object]) -> list[str]:
    """Full names of the methods of ``service_descriptors`` (protobuf ServiceDescriptors) the table lacks."""
    missing = []
    for service in service_descriptors:
        for method in service.methods:  # type: ignore[attr-defined]
            full = f"/{service.full_name}/{method.name}"  # type: ignore[attr-defined]
            if full not in table:
                missing.append(full)
    return missing


# -- the caller's side ------------------------------------------------------------------------------------------


def _with_metadata(details: grpc.aio.ClientCallDetails, extra: tuple[tuple[str, str], ...]):
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *extra)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


class _ClientInterceptor:
    def __init__(self, identity: Identity | None) -> None:
        self._identity = identity

    def _details(self, details):
        extra = outgoing_metadata(self._identity)
        return _with_metadata(details, extra) if extra else details


class _UnaryUnary(_ClientInterceptor, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_ClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_ClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_ClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


def client_interceptors(identity: Identity | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that add ``identity``'s credential and the current actor to every kind of call."""
    return [_UnaryUnary(identity), _UnaryStream(identity), _StreamUnary(identity), _StreamStream(identity)]


def aio_channel(address: str, identity: Identity, **kwargs) -> grpc.aio.Channel:
    """A plain ``grpc.aio`` channel presenting ``identity`` (tests, tools, benchmarks)."""
    return grpc.aio.insecure_channel(address, interceptors=client_interceptors(identity), **kwargs)


class _SyncInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def _details(self, details):
        metadata = [*(details.metadata or ()), *outgoing_metadata(self._identity)]
        return _SyncDetails(details.method, details.timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


@dataclass(frozen=True)
class _SyncDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: list[tuple[str, str]]
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def sync_channel(address: str, identity: Identity, **kwargs) -> grpc.Channel:
    """A blocking channel presenting ``identity``."""
    return grpc.intercept_channel(grpc.insecure_channel(address, **kwargs), _SyncInterceptor(identity))
