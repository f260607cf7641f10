"""The small set of domain errors every service raises. Pure Python: domain code may import it.

Each error carries a message for the client and, for invalid input, the name of the offending field.
:mod:`billing_runtime.error_mapping` maps them once to gRPC status codes and once to HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of all errors that are the client's to see."""

    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgument(DomainError):
    code = "invalid_argument"


class NotFound(DomainError):
    code = "not_found"


class AlreadyExists(DomainError):
    code = "already_exists"


class Conflict(DomainError):
    """The request clashes with the current state, e.g. an idempotency key reused with another body."""

    code = "conflict"


class FailedPrecondition(DomainError):
    code = "failed_precondition"


class PermissionDenied(DomainError):
    code = "permission_denied"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Unavailable(DomainError):
    """A dependency (another service, the database) cannot be reached; the client may retry."""

    code = "unavailable"


class ResourceExhausted(DomainError):
    """A rate limit was reached; the same request may succeed after ``retry_after_seconds`` (gRPC trailing
    metadata ``retry-after``, HTTP 429 with ``Retry-After``)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after_seconds = max(1, retry_after_seconds)
