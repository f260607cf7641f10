"""Signing in and out of the dashboard: the same use cases, audit entries, sessions and throttle as
/api/v1/auth (``http/auth.py``): a form posts the email, password and (once enrolled) the TOTP code; the session
cookie is set and the person lands on their first page: a customer's overview, or an operator's organisations."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from billing_runtime.errors import PermissionDenied
from services.gateway.entrypoints.http import auth
from services.gateway.entrypoints.http import auth_schemas as aus
from services.gateway.entrypoints.http.access import principal_of
from services.gateway.entrypoints.http.session_cookie import same_origin, set_cookie
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.rendering import PREFIX, redirect, render
from services.gateway.service import sessions

router = APIRouter(prefix=PREFIX, include_in_schema=False)

CUSTOMER_HOME = f"{PREFIX}/overview"
OPERATOR_HOME = f"{PREFIX}/operator/organisations"


def home_of(principal) -> str:
    return CUSTOMER_HOME if principal.organisation_id else OPERATOR_HOME


def _next(value: str, fallback: str) -> str:
    """Only a path of the dashboard itself (no other site, no scheme-relative URL)."""
    if value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value and ".." not in value:
        return value
    return fallback


@router.get("/login")
async def login_form(request: Request, next: str = "") -> Response:
    return render(request, "login.html", next=_next(next, ""), email="", need_totp=False, error="")


@router.post("/login")
async def login(request: Request) -> Response:
    if not same_origin(request):  # a sign-in form posted from another site (login CSRF)
        raise PermissionDenied("cross-site request refused: the Origin is not this dashboard's")
    fields = await form_fields(request)
    email, target = fields.get("email", ""), fields.get("next", "")
    try:
        body = aus.Login(email=email, password=fields.get("password", ""), totp_code=fields.get("totp_code") or None)
    except ValidationError:
        return render(request, "login.html", status_code=400, next=_next(target, ""), email=email[:320],
                      need_totp=False, error=sessions.WRONG_CREDENTIALS)
    try:
        signed_in = await auth.sign_in(request, body)
    except sessions.SignInRefused as refused:
        return render(request, "login.html", status_code=401, next=_next(target, ""), email=email[:320],
                      need_totp=refused.field == "totp_code", error=refused.message)
    user = signed_in.user
    home = CUSTOMER_HOME if user.organisation_id else OPERATOR_HOME
    # Back to the page that asked for the sign-in when it is one of this person's kind of pages.
    operator_page = target.startswith(f"{PREFIX}/operator/")
    response = redirect(request, _next(target, home) if operator_page == (not user.organisation_id) else home)
    set_cookie(request, response, signed_in.session_id, auth.session_max_age(signed_in))
    return response


@router.get("")
async def landing(request: Request) -> Response:
    """/app: the signed-in person's first page (the table's entry needs a session: otherwise the sign-in form)."""
    return redirect(request, home_of(principal_of(request)))


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = redirect(request, f"{PREFIX}/login")
    await auth.sign_out(request, response)
    return response
