"""The one place that decides whether a request may reach its route: an app-wide dependency that looks the route
up in the permission table (``permissions.ROUTES``), authenticates a staff credential when the route needs a
permission, and refuses what the caller's role does not grant (403, before the route does anything).

Staff credentials, as ``Authorization: Bearer <credential>``:

- the bootstrap admin token (``GATEWAY_ADMIN_TOKEN``): the admin role, recorded as actor ``admin-token``; it is
  there to create the first users, and can be left unset afterwards (docs/security.md);
- a staff user's API token (``bt_...``), with the user's role, recorded as ``user:<id>``;

or, without a bearer credential, a person's session cookie (``session_cookie.py``: signed in at
/api/v1/auth/login), with the user's role, and for unsafe methods the session's ``X-CSRF-Token``.

Routes that take a project's API key verify it themselves through ingest (``api_key.py``); the table says which.
The customer's routes whose entry names an organisation permission (``ORG_READ``, ``ORG_PAY``, ``ORG_MANAGE``)
also take an organisation user's token or session cookie: the user's role must grant the permission, and the
route acts in the user's organisation (``api_key.OrgScope``). Staff credentials never open those routes (401, as
before organisation users existed: they are the customer's API), and an organisation user opens no staff route
(403: their role grants no staff permission).
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from fastapi import Request

from billing_runtime import mesh
from billing_runtime.errors import PermissionDenied, Unauthenticated
from billing_runtime.logging import get_logger
from services.gateway.domain.access import Access, Permission, Principal, admit, admit_to_admin_api
from services.gateway.entrypoints.http.client_address import client_address
from services.gateway.entrypoints.http.permissions import PAGES, ROUTES
from services.gateway.entrypoints.http.rate_limits import enforce_write_limit
from services.gateway.entrypoints.http.session_cookie import authenticate_cookie, require_session
from services.gateway.service import staff

log = get_logger(__name__)

def source_address(request: Request) -> str:
    """Where the request came from (through trusted proxies only; see client_address.py)."""
    return client_address(request, request.app.state.trusted_proxies)


def route_access(request: Request) -> Access | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return None
    key = (request.method, path)
    return ROUTES.get(key) or PAGES.get(key)  # a dashboard page takes its REST twin's entry


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def authenticate_staff(request: Request, credential: str) -> Principal | None:
    """The staff principal of a presented credential; None when it is not a staff credential at all (a project
    key, or nothing), Unauthenticated when it looks like one and is not valid."""
    return await staff.authenticate_staff(request.app.state.uow_factory(), credential,
                                          request.app.state.settings.admin_token.get_secret_value(), datetime.now(UTC))


async def access_control(request: Request) -> None:
    """Installed on the whole app: runs before every route's own dependencies."""
    access = route_access(request)
    if access is None:  # fail closed; tests/unit/gateway/test_permissions.py keeps this from happening
        log.error("route without a permission entry", method=request.method, path=request.url.path)
        raise PermissionDenied("this route has no permission entry")
    if access.public:
        return
    if access.session:  # /api/v1/auth/*: the signed-in person acting on their own session, password, TOTP
        principal = await require_session(request)
        request.state.principal = principal
        structlog.contextvars.bind_contextvars(actor=principal.actor)
        return
    if access.organisation is not None:
        await _organisation_user(request, access)
        return
    if access.permission is not None:
        principal = await _presented(request)
        if principal is not None:
            admit_to_admin_api(source_address(request), request.app.state.admin_networks)
            _admit(request, principal, access.permission)
            await enforce_write_limit(request, principal)  # 429 before the route does anything
            return
        if not access.api_key:
            raise Unauthenticated("send 'Authorization: Bearer <admin token or staff token>'")
    # A project's API key: the route's own dependency has ingest verify it.


async def _presented(request: Request) -> Principal | None:
    """The principal of the bearer credential if it is a staff token or the bootstrap token, or, without a bearer
    credential, of a person's session cookie (CSRF-checked); None for a project key or nothing."""
    bearer = _bearer(request)
    principal = await authenticate_staff(request, bearer)
    if principal is None and not bearer:
        principal = await authenticate_cookie(request)
    return principal


def _admit(request: Request, principal: Principal, permission: Permission) -> None:
    """Let ``principal`` through to a route needing ``permission``, or refuse it (403): a token used outside its
    own source ranges, or a role that does not grant the permission."""
    admit(principal, permission, source_address(request))
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(actor=principal.actor)
    # The services this request calls are told who acts (metadata on every mesh call, for their logs).
    mesh.set_actor(principal.actor, role=principal.role.value, organisation=principal.organisation_id)


_CUSTOMER_CREDENTIAL = "send 'Authorization: Bearer <api key>', or sign in as a user of the organisation"


async def _organisation_user(request: Request, access: Access) -> None:
    """A customer's route: an organisation user's token (or, without a bearer credential, their session cookie,
    CSRF-checked) whose role grants ``access.organisation``; anything else that is no staff credential is left
    to the route's key check (a project key, or nothing: 401 there)."""
    assert access.organisation is not None
    principal = await _presented(request)
    if principal is None:
        return  # a project's API key (or none): the route's OrgScope has ingest verify it
    if principal.staff:  # the customer's API: a staff credential is no key and no organisation user
        raise Unauthenticated(_CUSTOMER_CREDENTIAL)
    _admit(request, principal, access.organisation)


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # only reachable if a staff route's table entry were missing a permission
        raise Unauthenticated("send 'Authorization: Bearer <admin token or staff token>'")
    return principal
