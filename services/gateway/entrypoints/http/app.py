"""The gateway's FastAPI application: request ids, error mapping, /healthz and the routers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing_runtime import database, metrics
from billing_runtime.error_mapping import http_body, http_status
from billing_runtime.errors import DomainError, InvalidArgument, ResourceExhausted
from billing_runtime.grpc_server import REQUEST_ID_HEADER
from billing_runtime.logging import bind_context, get_logger
from billing_runtime.rate_limit_store import PostgresRateLimits
from services.gateway.adapters.passwords import Argon2Passwords
from services.gateway.adapters.services import InvoicingOrganisations, ServiceClients
from services.gateway.adapters.totp import PyOtpTotp
from services.gateway.adapters.webhook_log import JetStreamWebhooks
from services.gateway.config import GatewaySettings
from services.gateway.entrypoints.http import (
    account,
    admin,
    alerts,
    auth,
    catalog,
    coupons,
    credit_notes,
    credits,
    dunning,
    einvoices,
    events,
    input_policy,
    invoices,
    mandates,
    metering,
    notifications,
    payment_providers,
    payments,
    price_overrides,
    pricing,
    reconciliation,
    schemas,
    settlement,
    staff,
    usage,
    webhook_endpoints,
)
from services.gateway.entrypoints.http import webhooks as webhooks_http
from services.gateway.entrypoints.http.access import access_control
from services.gateway.entrypoints.http.rate_limits import rate_limited
from services.gateway.entrypoints.web import install as install_dashboard
from services.gateway.entrypoints.web import rendering as pages
from services.gateway.service.ports import LoginThrottle, Passwords
from services.gateway.service.rate_limits import LoginPolicy, RateLimited, RateLimits, SharedLoginThrottle
from services.gateway.service.sessions import NO_LOGIN_THROTTLE

log = get_logger(__name__)


def _field_of(location: tuple) -> str | None:
    """``("body", "terms", "charges", 0, "charge")`` -> ``terms.charges[0].charge``: the services' path style."""
    field = ""
    for part in location[1:]:  # drop "body" / "query" / "path"
        if isinstance(part, int):
            field += f"[{part}]"
        elif not part.startswith("function-"):  # pydantic's name for a validator step, not a field
            field += f".{part}" if field else str(part)
    return field or None


class RequestContext:
    """Request id (the caller's ``x-request-id`` or a new one) bound to the log context and echoed in the response,
    then one metric and one log line per request. A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware``
    cost about 0.5 ms of CPU per request (a third of a webhook's time at the gateway)."""

    _HEADER = REQUEST_ID_HEADER.encode()

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == self._HEADER), b"")
        request_id = given.decode("latin-1") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id for the handlers
        bind_context(request_id=request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (self._HEADER, request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            # The route's template (/api/v1/admin/organisations/{organisation_id}), never the raw path: ids in
            # labels would make a time series per organisation.
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.record_http(scope["method"], route, status, seconds)
            if scope["path"] != "/healthz":
                log.info("http", method=scope["method"], path=scope["path"], status=status,
                         duration_ms=round(seconds * 1000, 2))


def create_app(
    settings: GatewaySettings, service_clients: ServiceClients, engine, uow_factory: Callable,
    webhooks: JetStreamWebhooks | None = None, rate_limits: RateLimits | None = None,
    passwords: Passwords | None = None, login_throttle: LoginThrottle | None = None,
) -> FastAPI:
    app = FastAPIOffline(
        title="Billing platform API",
        version="v1",
        description="Usage-based billing: usage events in (with a project's API key), and the admin API for "
        "organisations, projects, API keys, metrics, usage, plans, subscriptions, exchange rates, invoice runs, "
        "invoices, payments, refunds, dunning, reconciliation, alert rules, quotas and entitlements. A project's API "
        "key also checks its organisation's quotas and entitlements, reads its invoices, pays them through Razorpay "
        "Checkout or a payment link, and prices charges. "
        "Errors are `{\"error\", \"detail\", \"field\"}` with a 4xx status.",
        docs_url="/docs",
        redoc_url="/redoc",
        # One input policy for every route, before its own validation (text PostgreSQL can store, int64 integers);
        # then the one place that decides who may call what (access.py, with the table in permissions.py).
        dependencies=[Depends(input_policy.edge_input), Depends(access_control)],
        # Every route can answer these: the input policy's 400, access control's 403 (a role without the route's
        # permission) and its 429 (a staff credential over its write limit, with Retry-After).
        responses={400: {"model": schemas.Error}, 403: {"model": schemas.Error}, 429: {"model": schemas.Error}},
    )
    app.state.settings = settings
    app.state.clients = service_clients
    # Organisation users are created only in organisations invoicing knows.
    app.state.organisations = InvoicingOrganisations(service_clients)
    app.state.uow_factory = uow_factory
    app.state.trusted_proxies = settings.trusted_proxy_networks()
    app.state.admin_networks = settings.admin_networks()
    # The providers' browser scripts the dashboard's Pay loads, with the CSP sources each needs.
    app.state.payment_scripts = settings.payment_scripts()
    # Where verified provider webhooks are stored (None: webhooks answer 503 and are retried by the provider).
    app.state.webhooks = webhooks
    # Rate limits shared by every replica, in the gateway's database (None: not enforced; unit tests give a fake).
    app.state.rate_limits = rate_limits if rate_limits is not None or engine is None else PostgresRateLimits(engine)
    # People's sign-in: argon2id passwords, TOTP codes, and the hook that slows password guessing (none by default).
    app.state.passwords = passwords or Argon2Passwords()
    app.state.totp = PyOtpTotp()
    # Password guessing is slowed by the same shared store (5 failures per 15 minutes per source and per email,
    # then backoff); without a store (unit tests), only what the caller gives.
    if login_throttle is None and app.state.rate_limits is not None:
        login_throttle = SharedLoginThrottle(app.state.rate_limits, LoginPolicy(
            failures=settings.login_failure_limit, period=timedelta(seconds=settings.login_failure_window_seconds),
            max_backoff=timedelta(seconds=settings.login_max_backoff_seconds)))
    app.state.login_throttle = login_throttle or NO_LOGIN_THROTTLE

    app.add_middleware(RequestContext)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        if type(error) is DomainError:  # an unmapped failure from a service
            return await internal_error(request, error)
        if pages.is_page(request):  # the dashboard: a page (or the sign-in form), not the API's JSON
            return pages.error_page(request, error)
        headers = {"WWW-Authenticate": "Bearer"} if http_status(error) == 401 else None
        if isinstance(error, ResourceExhausted):
            headers = {"Retry-After": str(error.retry_after_seconds)}
        return JSONResponse(http_body(error), status_code=http_status(error), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        field = _field_of(tuple(first.get("loc", ())))
        if pages.is_page(request):
            return pages.error_page(request, InvalidArgument(
                f"{field or 'request'}: {first.get('msg', 'is not valid')}", field=field))
        # A validator's ValueError reads "Value error, <our message>": the prefix says nothing to a client.
        message = first.get("msg", "invalid request").removeprefix("Value error, ")
        if first.get("type") == "json_invalid":
            field, message = None, f"is not valid JSON ({first.get('ctx', {}).get('error', 'decode error')})"
        elif field is None and "json" not in request.headers.get("content-type", ""):
            message = "must be a JSON object, sent with 'Content-Type: application/json'"
        detail = f"{field}: {message}" if field else f"request body: {message}"
        body = {"error": "invalid_argument", "detail": detail}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=400)

    app.add_exception_handler(HTTPException, input_policy.http_error)
    @app.exception_handler(RateLimited)
    async def over_a_limit(request: Request, error: RateLimited) -> Response:
        answer = await rate_limited(request, error)
        if pages.is_page(request):  # a sign-in after too many failures, a page's write over the staff limit
            page = pages.render(request, "error.html", status_code=429, status=429, detail=str(error))
            page.headers.update({k: v for k, v in answer.headers.items() if k.lower().startswith(("retry", "ratel"))})
            return page
        return answer


    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "")
        log.error("request failed", error=repr(error), path=request.url.path)
        if pages.is_page(request):
            return pages.failure_page(request, request_id)
        return JSONResponse(
            {"error": "internal", "detail": f"internal error (request id {request_id})"}, status_code=500
        )

    @app.get("/healthz", response_model=schemas.Health, tags=["health"],
             responses={503: {"model": schemas.Health}})
    async def healthz() -> JSONResponse:
        """Health of every service the gateway depends on (gRPC health), and of its own database."""
        statuses = await service_clients.health(settings.health_timeout_seconds)
        try:
            await database.ping(engine, settings.health_timeout_seconds)
            db = "ok"
        except Exception:  # noqa: BLE001 - any failure means unreachable
            db = "unreachable"
        healthy = db == "ok" and all(s == "serving" for s in statuses.values())
        body = schemas.Health(
            status="ok" if healthy else "degraded",
            database=db,
            services={
                name: schemas.ServiceHealth(status=s, address=service_clients.addresses[name])
                for name, s in statuses.items()
            },
        )
        return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)

    app.include_router(events.router)
    app.include_router(usage.router)
    app.include_router(admin.router)
    app.include_router(metering.router)
    app.include_router(alerts.admin_router)
    app.include_router(alerts.router)
    app.include_router(catalog.router)
    app.include_router(coupons.router)
    app.include_router(price_overrides.router)
    app.include_router(credits.admin_router)
    app.include_router(credits.router)
    app.include_router(invoices.admin_router)
    app.include_router(invoices.router)
    app.include_router(credit_notes.admin_router)
    app.include_router(credit_notes.router)
    app.include_router(pricing.router)
    app.include_router(payments.admin_router)
    app.include_router(payments.router)
    app.include_router(dunning.router)
    app.include_router(payment_providers.router)
    app.include_router(mandates.router)
    app.include_router(mandates.customer_router)
    app.include_router(reconciliation.router)
    app.include_router(settlement.router)
    app.include_router(einvoices.admin_router)
    app.include_router(einvoices.router)
    app.include_router(notifications.admin_router)
    app.include_router(notifications.router)
    app.include_router(webhook_endpoints.admin_router)
    app.include_router(webhook_endpoints.router)
    app.include_router(webhooks_http.router)
    app.include_router(staff.router)
    app.include_router(auth.router)
    app.include_router(account.router)
    install_dashboard(app)  # /app: the dashboard's pages, in the same permission table through their REST twins
    # Added last, so it is the outermost middleware: the request-id middleware logs inside the request's span.
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")
    return app
