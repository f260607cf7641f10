"""The single mapping of domain errors to gRPC status codes and to HTTP, and back from gRPC.

A field-level error travels as a ``google.rpc.BadRequest`` detail in the gRPC status, so the gateway can
answer ``400 {"error": "invalid_argument", "detail": "...", "field": "gstin"}`` for a service's validation.
"""

from __future__ import annotations

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from billing_runtime import database_errors, errors

GRPC_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

HTTP_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidArgument: 400,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.FailedPrecondition: 422,
    errors.PermissionDenied: 403,
    errors.Unauthenticated: 401,
    errors.Unavailable: 503,
    errors.ResourceExhausted: 429,
}

_FROM_GRPC = {code: cls for cls, code in GRPC_CODES.items() if cls is not errors.ResourceExhausted}
# The trailing metadata key of a ResourceExhausted's retry-after (seconds).
RETRY_AFTER = "retry-after"


# PostgreSQL (class 22) refusing the characters of text a client sent: NUL (U+0000), or bytes that are no text in
# the database's encoding. Whatever validation missed, it is the request's fault, never an internal error.
_UNSTORABLE_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


def client_fault(error: BaseException) -> errors.InvalidArgument | None:
    """The InvalidArgument an unexpected failure stands for when the request's own data caused it: text PostgreSQL
    cannot store (a NUL character) or a lone surrogate no UTF-8 (protobuf, PostgreSQL) can encode. The message
    names the problem, never the value."""
    if isinstance(database_errors.cause(error), _UNSTORABLE_TEXT):
        return errors.InvalidArgument("a text field contains a character that cannot be stored (e.g. NUL, \\u0000)")
    if isinstance(error, UnicodeEncodeError):
        return errors.InvalidArgument("a text field is not valid Unicode (a lone surrogate such as \\ud800)")
    return None


# The longest message a status carries. Messages quote the request's values ("no invoice with id '...'"), and the
# message travels twice in the trailers (grpc-message, percent-encoded: up to 12 bytes a character, and inside
# grpc-status-details-bin with the field's description): a long one would exceed the 8 KiB a client accepts
# for metadata, and the caller would see RESOURCE_EXHAUSTED ("received metadata size exceeds soft limit")
# instead of the error, which a calling service turns into INTERNAL.
MAX_STATUS_MESSAGE_CHARS = 200


def bounded(message: str, limit: int = MAX_STATUS_MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters, marked as cut."""
    marker = "... (truncated)"
    return message if len(message) <= limit else message[: limit - len(marker)] + marker


def to_grpc_status(error: errors.DomainError) -> grpc.Status:
    """A ``grpc.Status`` for ``context.abort``, carrying the field as a BadRequest detail; the message bounded
    (:data:`MAX_STATUS_MESSAGE_CHARS`) whatever input it quotes."""
    code = GRPC_CODES.get(type(error), grpc.StatusCode.INTERNAL)
    message = bounded(error.message)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    if error.field:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=bounded(error.field), description=message)
                ]
            )
        )
        status.details.append(detail)
    result = rpc_status.to_status(status)
    if isinstance(error, errors.ResourceExhausted):
        return _with_retry_after(result, error.retry_after_seconds)
    return result


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, str | bytes], ...]):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _with_retry_after(status: grpc.Status, seconds: int) -> grpc.Status:
    return _Status(status.code, status.details, (*status.trailing_metadata, (RETRY_AFTER, str(seconds))))


def retry_after_of(error: grpc.RpcError) -> int | None:
    """The whole seconds a RESOURCE_EXHAUSTED answer said to wait, when it said."""
    for key, value in getattr(error, "trailing_metadata", lambda: None)() or ():
        if key == RETRY_AFTER and isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def from_grpc_error(error: grpc.RpcError) -> errors.DomainError:
    """Turn a failed call to another service back into the domain error it was raised as."""
    code = error.code()
    message = error.details() or code.name.lower()
    field = None
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                if bad_request.field_violations:
                    field = bad_request.field_violations[0].field
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.Unavailable(f"service unavailable: {message}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry_after = retry_after_of(error)
        if retry_after is not None:  # a limit; without one, a message past gRPC's size (internal)
            return errors.ResourceExhausted(message, retry_after_seconds=retry_after, field=field)
    cls = _FROM_GRPC.get(code)
    if cls is None:
        internal = errors.DomainError(message)
        return internal
    return cls(message, field=field)


def http_status(error: errors.DomainError) -> int:
    return HTTP_STATUS.get(type(error), 500)


def http_body(error: errors.DomainError) -> dict[str, str]:
    """The JSON body of an HTTP error: ``{"error", "detail"}`` plus ``field`` when one is at fault."""
    body = {"error": error.code, "detail": str(error)}
    if error.field:
        body["field"] = error.field
    return body
