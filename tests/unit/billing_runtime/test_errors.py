"""Domain errors: message, field and code."""

from __future__ import annotations

import pytest

from billing_runtime import errors


class TestDomainError:
    def test_str_with_field(self) -> None:
        assert str(errors.InvalidArgument("is required", field="name")) == "name: is required"

    def test_str_without_field(self) -> None:
        assert str(errors.NotFound("organisation org_1 not found")) == "organisation org_1 not found"

    def test_attributes(self) -> None:
        error = errors.InvalidArgument("is required", field="name")
        assert (error.message, error.field) == ("is required", "name")
        assert error.args == ("is required",)
        assert errors.NotFound("gone").field is None

    def test_field_is_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            errors.InvalidArgument("is required", "name")  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("cls", "code"),
        [
            (errors.DomainError, "internal"),
            (errors.InvalidArgument, "invalid_argument"),
            (errors.NotFound, "not_found"),
            (errors.AlreadyExists, "already_exists"),
            (errors.Conflict, "conflict"),
            (errors.FailedPrecondition, "failed_precondition"),
            (errors.PermissionDenied, "permission_denied"),
            (errors.Unauthenticated, "unauthenticated"),
            (errors.Unavailable, "unavailable"),
        ],
    )
    def test_codes(self, cls: type[errors.DomainError], code: str) -> None:
        assert cls.code == code
        assert issubclass(cls, Exception)
