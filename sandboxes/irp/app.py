"""The sandbox's ASGI application: NIC's e-invoice API (``/eivital``, ``/eicore``) and the control API
(``/_sandbox``: the clock, outages, the public keys, what is registered)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandboxes.irp.irp import IST, Irp, IrpError
from services.invoicing.domain.einvoice import dumps, loads

log = logging.getLogger("sandboxes.irp")
AUTH_PATH = "/eivital/v1.04/auth"
INVOICE_PATH = "/eicore/v1.03/Invoice"

api = APIRouter()
control = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


class Encrypted(BaseModel):
    Data: str = Field(max_length=2_000_000)


def _irp(request: Request) -> Irp:
    return request.app.state.irp


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _ok(data: Any) -> dict[str, Any]:
    return {"Status": 1, "Data": data, "ErrorDetails": None, "InfoDtls": None}


@api.post(AUTH_PATH)
async def authenticate(body: Encrypted, request: Request) -> dict[str, Any]:
    return _ok(_irp(request).authenticate(_headers(request), body.Data))


@api.post(INVOICE_PATH)
async def generate(body: Encrypted, request: Request) -> dict[str, Any]:
    irp = _irp(request)
    session = irp.session(_headers(request))
    return _ok(irp.encrypt(session, irp.generate(session, irp.decrypt(session, body.Data))))


@api.get(INVOICE_PATH + "/irn/{irn}")
async def get_irn(irn: str, request: Request) -> dict[str, Any]:
    irp = _irp(request)
    session = irp.session(_headers(request))
    return _ok(irp.encrypt(session, irp.get(session, irn)))


@api.post(INVOICE_PATH + "/Cancel")
async def cancel(body: Encrypted, request: Request) -> dict[str, Any]:
    irp = _irp(request)
    session = irp.session(_headers(request))
    return _ok(irp.encrypt(session, irp.cancel(session, irp.decrypt(session, body.Data))))


class ClockRequest(BaseModel):
    advance_seconds: float = Field(0, ge=0, le=10 * 365 * 86400)
    reset: bool = False


class OutageRequest(BaseModel):
    calls: int = Field(-1, ge=-1, description="the next N API calls answer 503; -1 until cleared, 0 clears")


@control.post("/clock")
async def move_clock(body: ClockRequest, request: Request) -> dict[str, str]:
    from datetime import timedelta

    irp = _irp(request)
    irp.offset = timedelta(0) if body.reset else irp.offset + timedelta(seconds=body.advance_seconds)
    return {"now": irp.now().astimezone(IST).isoformat()}


@control.post("/outage")
async def outage(body: OutageRequest, request: Request) -> dict[str, int]:
    _irp(request).down = body.calls
    return {"calls": body.calls}


class RegisterRequest(BaseModel):
    gstin: str = Field(min_length=15, max_length=15)
    document: dict[str, Any]


@control.post("/register")
async def register_directly(body: RegisterRequest, request: Request) -> dict[str, Any]:
    """Register a document as if on the portal by hand (bypassing the API and any outage): what another system
    of the supplier might have done with the same number. Answers the IRP's answer, or its error body."""
    from datetime import timedelta

    from sandboxes.irp.irp import Session

    irp = _irp(request)
    session = Session("control", b"0" * 32, body.gstin, irp.now() + timedelta(minutes=1))
    text = dumps(loads(json.dumps(body.document)))
    return _ok(irp.generate(session, text.encode()))


@control.get("/keys")
async def keys(request: Request) -> dict[str, str]:
    irp = _irp(request)
    return {"auth_public_key": irp.auth_keys.public_pem, "signing_public_key": irp.signing_keys.public_pem}


@control.get("/irns")
async def irns(request: Request) -> list[dict[str, Any]]:
    return [
        {"irn": r.irn, "ack_no": r.ack_no, "ack_dt": r.ack_dt, "status": r.status, "cancel_date": r.cancel_date}
        for r in _irp(request).registrations.values()
    ]


def build_app(irp: Irp) -> FastAPI:
    app = FastAPI(title="IRP sandbox", docs_url="/_sandbox/docs", redoc_url=None, openapi_url="/_sandbox/openapi.json")
    app.state.irp = irp
    app.include_router(api)
    app.include_router(control)

    @app.middleware("http")
    async def outages(request: Request, call_next: Any) -> Any:
        if not request.url.path.startswith("/_sandbox") and irp.take_outage():
            return JSONResponse(
                {"Status": 0, "ErrorDetails": [{"ErrorCode": "503", "ErrorMessage": "Service unavailable"}]},
                status_code=503,
            )
        return await call_next(request)

    @app.exception_handler(IrpError)
    async def irp_error(_request: Request, exc: IrpError) -> JSONResponse:
        # NIC answers its errors with HTTP 200 and Status 0.
        return JSONResponse(exc.body())

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("irp sandbox: unexpected error", exc_info=exc)
        return JSONResponse(
            {
                "Status": 0,
                "ErrorDetails": [
                    {"ErrorCode": "2146", "ErrorMessage": "Unable to create IRN, Pls. try after some time"}
                ],
            },
            status_code=500,
        )

    return app
