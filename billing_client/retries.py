"""Which stream failures are worth retrying, and the backoff between attempts (tenacity)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

# A broken connection, a restarting server, an overloaded one: the same batches may succeed on a new stream.
# INTERNAL and UNKNOWN are here because a connection reset mid-stream surfaces as either, depending on timing;
# CANCELLED because a server shutting down cancels its open calls.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


class StreamBroken(Exception):
    """The stream ended without a gRPC error while batches were still unacknowledged, or an ack never came."""

    code = grpc.StatusCode.UNAVAILABLE


def is_retryable(error: BaseException) -> bool:
    """True for failures a new stream can get past; bad keys and refused batches are not among them."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code() in RETRYABLE_CODES
    return isinstance(error, StreamBroken | ConnectionError | TimeoutError)


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC code and message an error stands for."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code(), error.details() or ""
    if isinstance(error, StreamBroken):
        return error.code, str(error)
    return grpc.StatusCode.UNAVAILABLE, str(error) or type(error).__name__


def retrying(
    initial_seconds: float,
    max_seconds: float,
    give_up_after_seconds: float | None,
    before_sleep: Callable[[RetryCallState], None],
) -> AsyncRetrying:
    """Exponential backoff with jitter, retrying only :func:`is_retryable` failures; the last error is re-raised."""
    return AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=wait_exponential_jitter(multiplier=initial_seconds, max=max_seconds, jitter=initial_seconds),
        stop=stop_after_delay(give_up_after_seconds) if give_up_after_seconds is not None else stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )
