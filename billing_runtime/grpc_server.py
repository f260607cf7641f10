"""The ``grpc.aio`` server every service runs: request context, logging and error mapping in one
interceptor, the standard health service and reflection."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection
from functools import partial

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from billing_runtime import errors, mesh, metrics
from billing_runtime.error_mapping import client_fault, to_grpc_status
from billing_runtime.logging import bind_context, get_logger

log = get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# grpc.health.v1 lets List refuse with RESOURCE_EXHAUSTED when there are too many services; the limit grpc-go and
# grpc-swift use.
MAX_LISTED_SERVICES = 100


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls the mesh table does not allow (billing_runtime.mesh: UNAUTHENTICATED without a valid
    credential, PERMISSION_DENIED for a caller not allowed), binds the caller's request id, service and end user
    to the log context, logs each RPC with its outcome and duration, turns domain errors into their status codes
    and anything else into INTERNAL (never leaking it), and answers UNAVAILABLE while the service is not ready."""

    def __init__(
        self, is_ready: Callable[[], bool], hot_methods: Collection[str] = (),
        tracing: grpc.aio.ServerInterceptor | None = None, guard: mesh.Guard | None = None,
    ) -> None:
        self._is_ready = is_ready
        self._hot_methods = frozenset(hot_methods)
        self._hot_handlers: dict[str, grpc.RpcMethodHandler] = {}
        self._tracing = tracing
        self._guard = guard if guard is not None else mesh.Guard({}, {})

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[override]
        """The mesh check first (a dict lookup or two per call). Hot methods: their wrapped handler, built once,
        untraced. The rest: traced (``tracing`` wraps our wrapper, so its log lines carry the RPC's trace id).
        One interceptor, so a hot call costs one hop."""
        method = handler_call_details.method
        refusal = self._guard.check(method, mesh.header_of(handler_call_details.invocation_metadata))
        if refusal is not None:
            return await self._refuse(continuation, handler_call_details, refusal)
        if method in self._hot_methods:
            return self._hot_handlers.get(method) or await self._hot_handler(continuation, handler_call_details)
        if self._tracing is not None:
            return await self._tracing.intercept_service(partial(self._wrapped, continuation), handler_call_details)
        return await self._wrapped(continuation, handler_call_details)

    async def _wrapped(self, continuation, handler_call_details) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(_QUIET_PREFIXES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        request_id = metadata.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        caller = self._guard.caller(metadata[mesh.MESH_HEADER]) if mesh.MESH_HEADER in metadata else None
        # The end user is believed only from a verified mesh caller (the gateway, a service acting for it): anyone
        # else could write any name there, into the logs and the audit trail.
        actor = mesh.actor_from(metadata) if caller is not None else None
        fields = {**({"caller": caller} if caller else {}), **(actor.log_fields() if actor else {})}
        return _rewrap(handler, self._wrap_unary, self._wrap_stream, method, request_id, fields, actor)

    async def _refuse(self, continuation, handler_call_details, refusal: mesh.Refusal):
        """A handler of the method's own kind that answers the refusal; logged (never the token) and counted."""
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # UNIMPLEMENTED, as without the check
        log.warning("rpc refused", rpc=method, code=refusal.code.name, reason=refusal.reason,
                    caller=refusal.caller or None)
        metrics.record_rpc(method, refusal.code.name, 0.0)

        async def abort(request_or_iterator, context: grpc.aio.ServicerContext):
            await context.abort(refusal.code, refusal.details)

        async def abort_stream(request_or_iterator, context: grpc.aio.ServicerContext):
            await context.abort(refusal.code, refusal.details)
            yield  # pragma: no cover - an async generator that never yields

        return _rewrap(handler, lambda *_: abort, lambda *_: abort_stream, method, "", {}, None)

    def _wrap_unary(self, behaviour, method: str, request_id: str, fields: dict[str, str],
                    actor: mesh.Actor | None):
        async def wrapper(request_or_iterator, context: grpc.aio.ServicerContext):
            start = self._begin(method, request_id, fields, actor)
            await self._check_ready(context, method)
            try:
                response = await behaviour(request_or_iterator, context)
            except Exception as error:  # noqa: BLE001 - mapped to a status below
                await self._fail(context, method, error, start, request_id)
            self._done(method, start)
            return response

        return wrapper

    async def _hot_handler(self, continuation, handler_call_details) -> grpc.RpcMethodHandler | None:
        """A hot method's handler, wrapped once and reused: no per-call handler, request id or log line; errors are
        mapped (and logged) exactly as for every other method, and calls counted and timed the same way."""
        method = handler_call_details.method
        wrapped = self._hot_handlers.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None or not handler.unary_unary:
                return handler
            wrapped = grpc.unary_unary_rpc_method_handler(
                self._wrap_hot(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
            self._hot_handlers[method] = wrapped
        return wrapped

    def _wrap_hot(self, behaviour, method: str):
        handled, seconds = metrics.rpc_recorders(method, "OK")
        is_ready = self._is_ready

        async def wrapper(request, context: grpc.aio.ServicerContext):
            start = time.perf_counter()
            if not is_ready():
                await self._check_ready(context, method)
            try:
                response = await behaviour(request, context)
            except Exception as error:  # noqa: BLE001 - mapped to a status below
                request_id = dict(context.invocation_metadata() or ()).get(REQUEST_ID_HEADER) or uuid.uuid4().hex
                bind_context(request_id=request_id, rpc=method)
                await self._fail(context, method, error, start, request_id)
            handled.inc()
            seconds.observe(time.perf_counter() - start)
            return response

        return wrapper

    def _wrap_stream(self, behaviour, method: str, request_id: str, fields: dict[str, str],
                     actor: mesh.Actor | None):
        async def wrapper(request_or_iterator, context: grpc.aio.ServicerContext):
            start = self._begin(method, request_id, fields, actor)
            await self._check_ready(context, method)
            try:
                async for response in behaviour(request_or_iterator, context):
                    yield response
            except Exception as error:  # noqa: BLE001 - mapped to a status below
                await self._fail(context, method, error, start, request_id)
            self._done(method, start)

        return wrapper

    @staticmethod
    def _begin(method: str, request_id: str, fields: dict[str, str], actor: mesh.Actor | None) -> float:
        bind_context(request_id=request_id, rpc=method, **fields)
        if actor is not None:  # the calls this one makes carry the same end user
            mesh.set_actor(actor.actor, actor.role, actor.organisation)
        return time.perf_counter()

    async def _check_ready(self, context: grpc.aio.ServicerContext, method: str) -> None:
        if not self._is_ready():
            metrics.record_rpc(method, "UNAVAILABLE", 0.0)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "service is starting or its dependencies are down")

    @staticmethod
    def _done(method: str, start: float) -> None:
        seconds = time.perf_counter() - start
        metrics.record_rpc(method, "OK", seconds)
        log.info("rpc", code="OK", duration_ms=round(seconds * 1000, 2))

    @staticmethod
    async def _fail(context, method: str, error: Exception, start: float, request_id: str) -> None:
        seconds = time.perf_counter() - start
        duration_ms = round(seconds * 1000, 2)
        error = client_fault(error) or error
        if isinstance(error, errors.DomainError) and type(error) is not errors.DomainError:
            status = to_grpc_status(error)
            metrics.record_rpc(method, status.code.name, seconds)
            log.info("rpc", code=status.code.name, duration_ms=duration_ms, error=str(error))
            await context.abort(status.code, status.details, status.trailing_metadata)
        if isinstance(error, grpc.aio.AbortError | grpc.RpcError):
            metrics.record_rpc(method, getattr(context.code(), "name", "UNKNOWN"), seconds)
            raise error
        metrics.record_rpc(method, "INTERNAL", seconds)
        log.exception("rpc failed", code="INTERNAL", duration_ms=duration_ms)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")


def _rewrap(handler: grpc.RpcMethodHandler, wrap_unary, wrap_stream, *args) -> grpc.RpcMethodHandler:
    """``handler``'s behaviour wrapped, as a handler of the same kind with the same (de)serializers."""
    serializers = {"request_deserializer": handler.request_deserializer,
                   "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap_unary(handler.unary_unary, *args), **serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap_unary(handler.stream_unary, *args), **serializers)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap_stream(handler.unary_stream, *args), **serializers)
    return grpc.stream_stream_rpc_method_handler(wrap_stream(handler.stream_stream, *args), **serializers)


class HealthServicer(health.aio.HealthServicer):
    """The standard asyncio health service, plus ``List``.

    grpcio-health-checking's servicer leaves ``List`` to the generated base class, which answers UNIMPLEMENTED
    (and makes the server log an ERROR), while reflection advertises it; tools such as ``grpc-health-probe`` and
    ``buf curl`` call it to see every service at once."""

    async def List(  # noqa: N802 - the RPC's name
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        """Every registered service (``""`` is the server as a whole) with its current status. The statuses are
        the ones ``Check`` answers from: the base class keeps them in ``_server_status``, including the
        NOT_SERVING written by ``enter_graceful_shutdown``, which bypasses ``set``."""
        statuses = dict(self._server_status)  # a snapshot: List is not atomic, by contract
        if len(statuses) > MAX_LISTED_SERVICES:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"more than {MAX_LISTED_SERVICES} services to list"
            )
        return health_pb2.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=status) for name, status in statuses.items()}
        )


def build_server(
    is_ready: Callable[[], bool], max_message_bytes: int = 16 * 1024 * 1024, hot_methods: Collection[str] = (),
    guard: mesh.Guard | None = None,
) -> tuple[grpc.aio.Server, HealthServicer]:
    """A server with our interceptor and the health service registered (health starts NOT_SERVING).

    ``hot_methods`` (full paths, ``/billing.metering.v1.MeteringService/CheckQuota``) are unary RPCs answered from
    memory at thousands a second, where a span and a log line per call would cost more than the answer (about
    0.3 ms of CPU together): they are not traced and log only when they fail; they are still counted and timed,
    and their errors mapped like every other method's.

    ``guard`` holds the service's mesh table and its callers' verifiers; without one only health and reflection
    answer."""
    server = grpc.aio.server(
        interceptors=[ServerInterceptor(is_ready, hot_methods, tracing=aio_server_interceptor(), guard=guard)],
        # Without this, a second process could silently bind the same port and steal half the calls.
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


def enable_reflection(server: grpc.aio.Server, service_names: list[str]) -> None:
    names = [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
