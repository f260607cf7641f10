"""Users and roles (admins only: the twin routes need ``manage_users``): staff (admin, operator, viewer) and
organisation users (member, owner), created with an initial password to hand over (or none: tokens only), a role
changed, disabled or enabled again. The page calls the admin API's own routes, so the access use cases decide
(the last active admin can be neither demoted nor disabled; an organisation user names an organisation that
exists) and every change is audited as through the API."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http import staff
from services.gateway.entrypoints.http import staff_schemas as ss
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.rendering import PREFIX, redirect, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
SHOW = Presentation()
ROLES = ("admin", "operator", "viewer", "member", "owner")
STAFF_ROLES = frozenset({"admin", "operator", "viewer"})


def _invalid(error: ValidationError) -> InvalidArgument:
    first = error.errors()[0]
    return InvalidArgument(first.get("msg", "is not valid"), field=str((first.get("loc") or ("form",))[-1]))


@router.get("/users")
async def users_page(request: Request, page_token: str = "",
                     done: Annotated[str, Query(max_length=80)] = "") -> Response:
    listed = await staff.list_users(request, page_size=100, page_token=page_token)
    return render(request, "operator/users.html", users=listed, roles=ROLES, show=SHOW, done=done, title="Users")


@router.post("/users")
async def create_user(request: Request) -> Response:
    fields = await form_fields(request)
    role = fields.get("role", "")
    body: dict[str, Any] = {"email": fields.get("email", "").strip(), "name": fields.get("name", "").strip(),
                            "role": role}
    if role not in STAFF_ROLES:  # an organisation user names theirs (the use case refuses it for staff)
        body["organisation_id"] = fields.get("organisation_id", "").strip()
    if fields.get("password"):
        body["password"] = fields["password"]
    try:
        command = ss.UserCreate(**body)
    except ValidationError as error:
        raise _invalid(error) from None
    user = await staff.create_user(command, request)
    return redirect(request, f"{PREFIX}/operator/users?done=" + quote(f"created {user.email}"))


@router.post("/users/{user_id}")
async def update_user(user_id: str, request: Request) -> Response:
    """One change at a time, as the row's buttons send it: ``role``, or ``disabled`` true/false."""
    fields = await form_fields(request)
    change: dict[str, Any] = {}
    if "role" in fields:
        change["role"] = fields["role"]
    if fields.get("disabled") in ("true", "false"):
        change["disabled"] = fields["disabled"] == "true"
    if not change:
        raise InvalidArgument("say what to change: a role, or disabled true or false", field="role")
    try:
        command = ss.UserUpdate(**change)
    except ValidationError as error:
        raise _invalid(error) from None
    user = await staff.update_user(user_id, command, request)
    what = f"role of {user.email} is {user.role}" if "role" in change else \
        f"{user.email} {'disabled' if user.disabled_at else 'enabled'}"
    return redirect(request, f"{PREFIX}/operator/users?done=" + quote(what))
