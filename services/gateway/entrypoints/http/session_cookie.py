"""The session cookie as a staff credential (a person signed in to the dashboard), with what a cookie needs
beyond a bearer token: the browser sends it by itself, so every unsafe request (POST, PUT, PATCH, DELETE) must
also carry the session's CSRF token in ``X-CSRF-Token`` (a page on another site cannot read it), and must not come
with another site's ``Origin`` (defence in depth). Bearer credentials are never ambient and need neither."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import Request, Response

from billing_runtime.errors import PermissionDenied, Unauthenticated
from services.gateway.domain.access import SAFE_METHODS, Principal
from services.gateway.domain.sessions import csrf_matches
from services.gateway.service import sessions

COOKIE = "billing_session"
CSRF_HEADER = "X-CSRF-Token"


def session_id_of(request: Request) -> str:
    return request.cookies.get(COOKIE, "")


async def authenticate_cookie(request: Request) -> Principal | None:
    """The principal of the session cookie, None without one; Unauthenticated for a session that is not valid,
    PermissionDenied for an unsafe request without the CSRF token or from another origin. Leaves the session on
    ``request.state.session`` for the /api/v1/auth routes."""
    session_id = session_id_of(request)
    if not session_id:
        return None
    principal, session, user = await sessions.authenticate_session(
        request.app.state.uow_factory(), session_id, request.app.state.settings.session_policy(), datetime.now(UTC)
    )
    if request.method not in SAFE_METHODS:
        if not same_origin(request):
            raise PermissionDenied("cross-site request refused: the Origin is not this API's")
        if not csrf_matches(session.csrf_hash, request.headers.get(CSRF_HEADER, "")):
            raise PermissionDenied(f"missing or wrong {CSRF_HEADER}")
    request.state.session = session
    request.state.session_id = session_id
    request.state.session_user = user
    return principal


async def require_session(request: Request) -> Principal:
    principal = await authenticate_cookie(request)
    if principal is None:
        raise Unauthenticated("sign in first: POST /api/v1/auth/login")
    return principal


def same_origin(request: Request) -> bool:
    """No Origin (not every client sends one; the CSRF token is the defence), or this API's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    public = request.app.state.settings.public_origin.rstrip("/")
    if public:
        return origin == public
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


def set_cookie(request: Request, response: Response, session_id: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE, session_id, max_age=max_age, path="/", httponly=True, samesite="strict",
        secure=request.app.state.settings.cookie_secure,
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.app.state.settings.cookie_secure
    )
