"""/api/v1/admin/users, /tokens and /me: staff users, their roles and their API tokens. Every write is audited."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, status

from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http import staff_schemas as ss
from services.gateway.entrypoints.http.access import principal_of
from services.gateway.entrypoints.http.admin import PageSize, PageToken, audit, require_admin
from services.gateway.service import staff
from services.gateway.service.ports import StaffTransaction

router = APIRouter(
    prefix="/api/v1/admin", tags=["users"], dependencies=[Depends(require_admin)],
    responses={code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 422)},
)


def _uow(request: Request) -> StaffTransaction:
    return request.app.state.uow_factory()


@router.get("/me", response_model=ss.Me, summary="Who the credential acts as")
async def me(request: Request):
    """The actor, role and permissions of the presented staff credential."""
    return ss.Me.of(principal_of(request))


async def _record(request: Request, entries: list[staff.AuditEntry]) -> None:
    for entry in entries:
        await audit(request, entry.action, entry.resource_type, entry.resource_id, before=entry.before,
                    after=entry.after)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=ss.User,
             summary="Create a staff user or an organisation user")
async def create_user(body: ss.UserCreate, request: Request):
    """A staff user (role admin, operator or viewer, no `organisation_id`) or an organisation user (role member
    or owner, with the `organisation_id` they belong to; 400 naming it when there is no such organisation); 409
    when the email is taken. Give them a token or a password next."""
    password = body.password.get_secret_value() if body.password is not None else None
    user = await staff.create_user(
        _uow(request), staff.CreateUser(email=body.email, name=body.name, role=body.role, password=password,
                                        organisation_id=body.organisation_id),
        request.app.state.passwords, request.app.state.organisations,
    )
    await _record(request, staff.user_created(user, password_set=password is not None))
    return ss.User.of(user)


@router.get("/users", response_model=schemas.Page[ss.User], summary="List staff users")
async def list_users(request: Request, page_size: PageSize = 0, page_token: PageToken = ""):
    users, token = await staff.list_users(_uow(request), page_size, page_token)
    return schemas.Page[ss.User](data=[ss.User.of(u) for u in users], next_page_token=token)


@router.get("/users/{user_id}", response_model=ss.User, summary="Get a staff user")
async def get_user(user_id: str, request: Request):
    return ss.User.of(await staff.get_user(_uow(request), user_id))


@router.patch("/users/{user_id}", response_model=ss.User, summary="Change a user's name or role, or disable them")
async def update_user(user_id: str, body: ss.UserUpdate, request: Request):
    """Changes what the body has. Disabling stops the user's tokens and sessions at once; a new password ends
    their sessions; `reset_totp` turns their second factor off. The last active admin can be neither demoted nor
    disabled (422)."""
    password = body.password.get_secret_value() if body.password is not None else None
    before, after = await staff.update_user(
        _uow(request),
        staff.UpdateUser(user_id=user_id, name=body.name, role=body.role, disabled=body.disabled, password=password,
                         reset_totp=body.reset_totp),
        datetime.now(UTC), request.app.state.passwords,
    )
    await _record(request, staff.user_updated(before, after, password_set=password is not None,
                                              totp_reset=body.reset_totp))
    return ss.User.of(after)


@router.post("/users/{user_id}/tokens", status_code=status.HTTP_201_CREATED, response_model=ss.TokenWithSecret,
             summary="Mint an API token for a staff user")
async def create_token(user_id: str, body: ss.TokenCreate, request: Request):
    """The `secret` (bt_...) is in this response only: it is stored as a hash. It acts with the user's role."""
    token, secret = await staff.create_token(
        _uow(request), staff.CreateToken(user_id=user_id, name=body.name, expires_at=body.expires_at,
                                        allowed_cidrs=tuple(body.allowed_cidrs)),
        datetime.now(UTC),
    )
    await _record(request, staff.token_created(token))
    return ss.TokenWithSecret(**ss.Token.of(token).model_dump(), secret=secret)


@router.get("/users/{user_id}/tokens", response_model=schemas.Page[ss.Token], summary="List a user's tokens")
async def list_tokens(user_id: str, request: Request, page_size: PageSize = 0, page_token: PageToken = ""):
    tokens, token = await staff.list_tokens(_uow(request), user_id, page_size, page_token)
    return schemas.Page[ss.Token](data=[ss.Token.of(t) for t in tokens], next_page_token=token)


@router.post("/tokens/{token_id}/rotate", status_code=status.HTTP_201_CREATED, response_model=ss.TokenRotated,
             summary="Rotate a staff token")
async def rotate_token(token_id: str, request: Request, body: ss.TokenRotate | None = None):
    """Mints the successor (same user and name; the same lifetime, from now) and lets the old token work for
    `overlap_seconds` more (default a day, at most 30 days; 0 for a leaked token). 422 for a token that is no
    longer active."""
    overlap = staff.overlap_of((body or ss.TokenRotate()).overlap_seconds)
    old, new, secret = await staff.rotate_token(_uow(request), token_id, overlap, datetime.now(UTC))
    await _record(request, staff.token_rotated(old))
    return ss.TokenRotated(
        previous=ss.Token.of(old), token=ss.TokenWithSecret(**ss.Token.of(new).model_dump(), secret=secret)
    )


@router.post("/tokens/{token_id}/revoke", response_model=ss.Token, summary="Revoke a staff token")
async def revoke_token(token_id: str, request: Request):
    """At once; revoking again returns it as first revoked."""
    token = await staff.revoke_token(_uow(request), token_id, datetime.now(UTC))
    await _record(request, staff.token_revoked(token))
    return ss.Token.of(token)
