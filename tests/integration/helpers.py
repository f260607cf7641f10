"""Small things several integration tests need."""

from __future__ import annotations

import secrets

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.error_mapping import from_grpc_error


def organisation_request(**overrides: str) -> invoicing_pb2.CreateOrganisationRequest:
    values = {
        "name": f"Acme {secrets.token_hex(3)}",
        "billing_email": "billing@acme.example",
        "billing_currency": "INR",
        "country": "IN",
        "state_code": "29",
        "gstin": "29ABCDE1234F1ZW",
        "timezone": "Asia/Kolkata",
        **overrides,
    }
    return invoicing_pb2.CreateOrganisationRequest(**values)


async def expect_rpc_error(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await ``call`` and return its error, failing unless it ends with ``code``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def error_field(error: grpc.aio.AioRpcError) -> str | None:
    """The field a service named in its BadRequest detail."""
    return from_grpc_error(error).field
