"""Razorpay's error bodies and the HTTP statuses it answers them with.

Every error the sandbox gives has Razorpay's shape, `{"error": {"code", "description", "source", "step", "reason",
"metadata", "field"?}}`; `field` is present only when a request field is at fault, as in Razorpay's own bodies.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

BAD_REQUEST = "BAD_REQUEST_ERROR"
SERVER_ERROR = "SERVER_ERROR"
GATEWAY_ERROR = "GATEWAY_ERROR"

ID_DOES_NOT_EXIST = "The id provided does not exist"
URL_NOT_FOUND = "The requested URL was not found on the server."
SERVER_ERROR_DESCRIPTION = "The server encountered an error. The incident has been reported to admins."


class RazorpayError(Exception):
    """An error answered to the client in Razorpay's shape."""

    def __init__(
        self,
        description: str,
        *,
        field: str | None = None,
        status: int = 400,
        code: str = BAD_REQUEST,
        source: str = "business",
        step: str = "payment_initiation",
        reason: str = "input_validation_failed",
    ) -> None:
        super().__init__(description)
        self.description = description
        self.field = field
        self.status = status
        self.code = code
        self.source = source
        self.step = step
        self.reason = reason

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "description": self.description,
            "source": self.source,
            "step": self.step,
            "reason": self.reason,
            "metadata": {},
        }
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def bad_request(description: str, field: str | None = None) -> RazorpayError:
    return RazorpayError(description, field=field)


def not_found() -> RazorpayError:
    """Razorpay answers an unknown id with 400, not 404."""
    return RazorpayError(ID_DOES_NOT_EXIST)


def url_not_found() -> RazorpayError:
    return RazorpayError(URL_NOT_FOUND, status=400, source="NA", step="NA", reason="NA")


def authentication_failed(description: str = "Authentication failed") -> RazorpayError:
    """Razorpay's 401: no key ("Please provide your api key..."), an unknown key id, or a wrong secret."""
    return RazorpayError(description, status=401, source="NA", step="NA", reason="NA")


def server_error(status: int = 500) -> RazorpayError:
    return RazorpayError(
        SERVER_ERROR_DESCRIPTION, status=status, code=SERVER_ERROR, source="NA", step="NA", reason="NA"
    )


async def razorpay_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RazorpayError)
    return exc.response()
