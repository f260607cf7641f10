"""The sandbox's ASGI application: Razorpay's REST API, the checkout pages and the control API."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandboxes.razorpay import api, checkout, control_api
from sandboxes.razorpay.errors import RazorpayError, bad_request, razorpay_error_handler, server_error, url_not_found
from sandboxes.razorpay.state import Sandbox

log = logging.getLogger("sandboxes.razorpay")


def build_app(sandbox: Sandbox) -> FastAPI:
    app = FastAPI(title="Razorpay sandbox", docs_url="/_sandbox/docs", redoc_url=None,
                  openapi_url="/_sandbox/openapi.json")
    app.state.sandbox = sandbox
    app.include_router(api.router)
    app.include_router(checkout.router)
    app.include_router(control_api.router)
    app.add_exception_handler(RazorpayError, razorpay_error_handler)
    app.middleware("http")(sandbox.faults.middleware)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes and wrong methods answer Razorpay's "URL not found" body, as api.razorpay.com does.
        if exc.status_code in (404, 405):
            return url_not_found().response()
        return RazorpayError(str(exc.detail), status=exc.status_code).response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        return bad_request(str(first.get("msg", "Invalid request")), field).response()

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("razorpay sandbox: unexpected error", exc_info=exc)
        return server_error().response()

    return app
