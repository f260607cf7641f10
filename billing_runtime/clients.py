"""Calling another service: request id propagated in metadata, deadlines always set, failures turned back
into domain errors so use cases never see gRPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import structlog
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from billing_runtime.error_mapping import from_grpc_error
from billing_runtime.grpc_server import REQUEST_ID_HEADER

Response = TypeVar("Response")


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        interceptors=aio_client_interceptors(),  # carries the trace context to the callee
        options=[("grpc.enable_retries", 1), ("grpc.keepalive_time_ms", 30_000)],
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
