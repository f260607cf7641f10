"""The mapping of domain errors to gRPC statuses (and back) and to HTTP responses."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from billing_runtime import errors
from billing_runtime.error_mapping import (
    GRPC_CODES,
    HTTP_STATUS,
    MAX_STATUS_MESSAGE_CHARS,
    client_fault,
    from_grpc_error,
    http_body,
    http_status,
    to_grpc_status,
)

ALL_CLASSES = [
    errors.InvalidArgument,
    errors.NotFound,
    errors.AlreadyExists,
    errors.Conflict,
    errors.FailedPrecondition,
    errors.PermissionDenied,
    errors.Unauthenticated,
    errors.Unavailable,
    errors.ResourceExhausted,
]


def _error(cls: type[errors.DomainError], message: str, **fields: object) -> errors.DomainError:
    if cls is errors.ResourceExhausted:
        return errors.ResourceExhausted(message, retry_after_seconds=3, **fields)  # type: ignore[arg-type]
    return cls(message, **fields)  # type: ignore[arg-type]


class _FailedCall(grpc.RpcError):
    """What a failed unary call raises on the client, built from the server's status."""

    def __init__(self, status: grpc.Status) -> None:
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._status.trailing_metadata


def _decoded_status(status: grpc.Status) -> status_pb2.Status:
    metadata = dict(status.trailing_metadata)
    return status_pb2.Status.FromString(metadata["grpc-status-details-bin"])


class TestCoverage:
    def test_every_error_class_is_mapped(self) -> None:
        subclasses = set(errors.DomainError.__subclasses__())
        assert subclasses == set(ALL_CLASSES)
        assert set(GRPC_CODES) == subclasses
        assert set(HTTP_STATUS) == subclasses


class TestHttp:
    @pytest.mark.parametrize(
        ("cls", "status"),
        [
            (errors.InvalidArgument, 400),
            (errors.NotFound, 404),
            (errors.AlreadyExists, 409),
            (errors.Conflict, 409),
            (errors.FailedPrecondition, 422),
            (errors.PermissionDenied, 403),
            (errors.Unauthenticated, 401),
            (errors.Unavailable, 503),
            (errors.ResourceExhausted, 429),
            (errors.DomainError, 500),
        ],
    )
    def test_status(self, cls: type[errors.DomainError], status: int) -> None:
        assert http_status(_error(cls, "boom")) == status

    def test_body_with_field(self) -> None:
        body = http_body(errors.InvalidArgument("check character is wrong", field="gstin"))
        assert body == {"error": "invalid_argument", "detail": "gstin: check character is wrong", "field": "gstin"}

    def test_body_without_field(self) -> None:
        assert http_body(errors.NotFound("no such organisation")) == {
            "error": "not_found",
            "detail": "no such organisation",
        }

    def test_body_with_empty_field(self) -> None:
        assert "field" not in http_body(errors.InvalidArgument("bad", field=""))


class TestGrpc:
    def test_codes_table(self) -> None:
        assert GRPC_CODES == {
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

    def test_codes_are_distinct_and_never_ok_or_internal(self) -> None:
        codes = list(GRPC_CODES.values())
        assert len(set(codes)) == len(codes)
        assert grpc.StatusCode.OK not in codes
        assert grpc.StatusCode.INTERNAL not in codes
        assert grpc.StatusCode.UNKNOWN not in codes

    def test_invalid_argument_carries_a_field_violation(self) -> None:
        status = to_grpc_status(errors.InvalidArgument("check character is 'W'", field="gstin"))
        assert status.code is grpc.StatusCode.INVALID_ARGUMENT
        assert status.details == "check character is 'W'"
        rich = _decoded_status(status)
        assert rich.code == code_pb2.INVALID_ARGUMENT
        assert rich.message == "check character is 'W'"
        assert len(rich.details) == 1
        assert rich.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
        bad_request = error_details_pb2.BadRequest()
        assert rich.details[0].Unpack(bad_request)
        assert [(v.field, v.description) for v in bad_request.field_violations] == [("gstin", "check character is 'W'")]

    @pytest.mark.parametrize("cls", ALL_CLASSES)
    def test_status_code_per_class(self, cls: type[errors.DomainError]) -> None:
        status = to_grpc_status(_error(cls, "boom"))
        assert status.code is GRPC_CODES[cls]
        assert status.details == "boom"
        rich = _decoded_status(status)
        assert rich.code == GRPC_CODES[cls].value[0]
        assert list(rich.details) == []

    def test_unmapped_error_is_internal(self) -> None:
        status = to_grpc_status(errors.DomainError("boom"))
        assert status.code is grpc.StatusCode.INTERNAL
        assert _decoded_status(status).code == code_pb2.INTERNAL

    @pytest.mark.parametrize("cls", ALL_CLASSES)
    def test_round_trip_through_a_failed_call(self, cls: type[errors.DomainError]) -> None:
        error = from_grpc_error(_FailedCall(to_grpc_status(_error(cls, "boom", field="amount"))))
        if cls is errors.Unavailable:
            assert type(error) is errors.Unavailable
            assert error.message == "service unavailable: boom"
        else:
            assert type(error) is cls
            assert (error.message, error.field) == ("boom", "amount")

    def test_a_rate_limit_carries_its_retry_after_across_the_call(self) -> None:
        status = to_grpc_status(errors.ResourceExhausted("slow down", retry_after_seconds=7))
        assert ("retry-after", "7") in status.trailing_metadata
        error = from_grpc_error(_FailedCall(status))
        assert isinstance(error, errors.ResourceExhausted) and error.retry_after_seconds == 7
        assert http_body(error) == {"error": "rate_limited", "detail": "slow down"}

    def test_resource_exhausted_without_a_retry_after_is_not_a_limit(self) -> None:
        """gRPC answers RESOURCE_EXHAUSTED itself for a message past its size: an internal failure, not a 429."""
        plain = rpc_status.to_status(status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="too large"))
        assert type(from_grpc_error(_FailedCall(plain))) is errors.DomainError

    def test_round_trip_without_field(self) -> None:
        error = from_grpc_error(_FailedCall(to_grpc_status(errors.NotFound("no such project"))))
        assert type(error) is errors.NotFound
        assert (error.message, error.field) == ("no such project", None)


def _driver_error(driver_error: Exception) -> Exception:
    """What SQLAlchemy raises for an asyncpg failure: a DBAPIError whose ``orig`` was caused by the driver's."""
    import sqlalchemy.exc

    adapted = Exception("adapted")
    adapted.__cause__ = driver_error
    return sqlalchemy.exc.DBAPIError("INSERT ...", {}, adapted)


@pytest.mark.parametrize("driver_error", [
    asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding \"UTF8\": 0x00"),
    asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
])
def test_text_postgresql_cannot_store_is_the_clients_fault(driver_error):
    fault = client_fault(_driver_error(driver_error))
    assert isinstance(fault, errors.InvalidArgument)
    assert "0x00" not in fault.message  # names the problem, never the value
    assert to_grpc_status(fault).code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_lone_surrogate_is_the_clients_fault_and_other_failures_stay_internal():
    try:
        "\ud800".encode()
    except UnicodeEncodeError as error:
        assert isinstance(client_fault(error), errors.InvalidArgument)
    assert client_fault(_driver_error(asyncpg.DeadlockDetectedError("deadlock"))) is None
    assert client_fault(RuntimeError("bug")) is None


def test_a_status_message_quoting_long_input_is_bounded() -> None:
    """A message quoting 100 KB of the request (``no invoice with id '...'``) travels twice in the trailers,
    percent-encoded: unbounded, it exceeded the client's 8 KiB of metadata, and the caller saw RESOURCE_EXHAUSTED
    (which metering's GetEntitlements then answered as INTERNAL; found by tests/integration/test_grpc_fuzz.py)."""
    quoted = "\U0001f600" * 100_000
    status = to_grpc_status(errors.NotFound(f"no invoice with id {quoted!r}", field="invoice_id"))
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert status.details.startswith("no invoice with id '\U0001f600")
    assert status.details.endswith("(truncated)") and len(status.details) == MAX_STATUS_MESSAGE_CHARS
    decoded = _decoded_status(status)
    assert decoded.message == status.details
    violation = error_details_pb2.BadRequest()
    decoded.details[0].Unpack(violation)
    assert violation.field_violations[0].description == status.details
    encoded = len(status.details.encode()) * 3 + sum(len(key) + len(value) for key, value in status.trailing_metadata)
    assert encoded < 8192 / 2


def test_a_short_status_message_is_untouched() -> None:
    message = "x" * MAX_STATUS_MESSAGE_CHARS
    assert to_grpc_status(errors.InvalidArgument(message)).details == message
