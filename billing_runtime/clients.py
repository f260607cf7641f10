"""Calling another service: request id propagated in metadata, deadlines always set, failures turned back
into domain errors so use cases never see gRPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import structlog
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from billing_runtime import mesh
from billing_runtime.error_mapping import from_grpc_error
from billing_runtime.grpc_server import REQUEST_ID_HEADER

Response = TypeVar("Response")


def channel(
    address: str, *, max_reconnect_backoff_seconds: float | None = None, identity: mesh.Identity | None = None
) -> grpc.aio.Channel:
    """A channel to another service. Every call presents ``identity``'s mesh credential (by default the one
    service's start-up acts as, :func:`billing_runtime.mesh.acting_as`, when the channel is made) and the current end
    user (``mesh.set_actor``). ``max_reconnect_backoff_seconds`` caps how long gRPC waits between attempts
    to reconnect to a peer that was down (its default grows to two minutes, during which every call fails at
    once): for callers that would rather notice a restarted peer within a second."""
    options: list[tuple[str, int]] = [("grpc.enable_retries", 1), ("grpc.keepalive_time_ms", 30_000)]
    if max_reconnect_backoff_seconds is not None:
        backoff_ms = max(1, int(max_reconnect_backoff_seconds * 1000))
        options += [("grpc.initial_reconnect_backoff_ms", backoff_ms), ("grpc.max_reconnect_backoff_ms", backoff_ms)]
    return grpc.aio.insecure_channel(
        address,
        # The trace context, then our credential and the end user.
        interceptors=[*aio_client_interceptors(),
                      *mesh.client_interceptors(identity if identity is not None else mesh.current_identity())],
        options=options,
    )


def request_metadata() -> tuple[tuple[str, str], ...]:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return ((REQUEST_ID_HEADER, request_id),) if request_id else ()


async def call(
    rpc: Callable[..., Awaitable[Response]], request: object, *, timeout: float = 5.0
) -> Response:
    """``await call(stub.GetOrganisation, request)``; raises the callee's domain error on failure."""
    try:
        return await rpc(request, timeout=timeout, metadata=request_metadata())
    except grpc.aio.AioRpcError as error:
        raise from_grpc_error(error) from None
