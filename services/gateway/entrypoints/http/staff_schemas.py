"""Bodies and answers of /api/v1/admin/users, /tokens and /me."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from services.gateway.domain import credentials as cred
from services.gateway.domain.access import Principal
from services.gateway.entrypoints.http.schemas import Request
from services.gateway.service.staff import DEFAULT_ROTATION_OVERLAP

RoleName = Literal["admin", "operator", "viewer", "member", "owner"]


class UserCreate(Request):
    email: str = Field(max_length=320, examples=["asha@billing.example"])
    name: str = Field(max_length=100, examples=["Asha Rao"])
    role: RoleName = Field(description="Staff: admin: everything; operator: reads and the day's operations; viewer: "
                           "reads. An organisation's user: member: reads and pays (usage, invoices, payments); "
                           "owner: also manages the organisation's webhook endpoints")
    organisation_id: str | None = Field(
        None, max_length=64, description="The organisation a member or owner belongs to (required for them, "
        "refused for staff)",
    )
    password: SecretStr | None = Field(
        None, max_length=1024, description="To sign in to the dashboard: 12 to 256 characters, not the email. "
        "Never returned or logged.",
    )


class UserUpdate(Request):
    name: str | None = Field(None, max_length=100)
    role: RoleName | None = None
    disabled: bool | None = Field(
        None, description="true disables the user (their tokens and sessions stop working at once)"
    )
    password: SecretStr | None = Field(
        None, max_length=1024, description="A new password (12 to 256 characters, not the email); ends the user's "
        "sessions. Never returned or logged.",
    )
    reset_totp: bool = Field(False, description="true turns the user's second factor off (a lost authenticator)")


class User(BaseModel):
    id: str
    email: str
    name: str
    role: RoleName
    created_at: datetime
    disabled_at: datetime | None
    has_password: bool = Field(description="Whether the user can sign in to the dashboard")
    totp_enabled: bool = Field(description="Whether signing in also needs a TOTP code")
    organisation_id: str | None = Field(None, description="An organisation user's organisation; null for staff")

    @classmethod
    def of(cls, user: cred.User) -> User:
        return cls(
            id=user.id, email=user.email, name=user.name, role=user.role.value, created_at=user.created_at,
            disabled_at=user.disabled_at, has_password=user.has_password, totp_enabled=user.totp_enabled,
            organisation_id=user.organisation_id,
        )


class TokenCreate(Request):
    name: str = Field(max_length=100, examples=["ci-invoice-runs"])
    expires_at: datetime | None = Field(None, description="Optional; in the future and at most 5 years away")
    allowed_cidrs: list[str] = Field(
        default_factory=list, max_length=20, examples=[["10.20.0.0/16"]],
        description="Source ranges the token may be used from (through trusted proxies); empty: anywhere",
    )


class TokenRotate(Request):
    overlap_seconds: int = Field(
        int(DEFAULT_ROTATION_OVERLAP.total_seconds()), ge=0, le=int(cred.MAX_ROTATION_OVERLAP.total_seconds()),
        description="How long the old token keeps working beside the new one (default a day; 0 for a leaked one)",
    )


class Token(BaseModel):
    """A staff token as listed: never its secret."""

    id: str
    user_id: str
    name: str
    prefix: str = Field(description="The visible start of the token, to tell tokens apart")
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    allowed_cidrs: list[str]

    @classmethod
    def of(cls, token: cred.Token) -> Token:
        return cls(
            id=token.id, user_id=token.user_id, name=token.name, prefix=token.prefix,
            state=token.state(datetime.now(UTC)).value, created_at=token.created_at, expires_at=token.expires_at,
            revoked_at=token.revoked_at, last_used_at=token.last_used_at,
            allowed_cidrs=list(token.allowed_cidrs),
        )


class TokenWithSecret(Token):
    secret: str = Field(description="The full token. Shown in this response only; store it now.")


class TokenRotated(BaseModel):
    previous: Token = Field(description="The rotated token, now expiring after the overlap")
    token: TokenWithSecret


class Me(BaseModel):
    actor: str = Field(examples=["user:usr_01J..."])
    role: RoleName
    permissions: list[str]
    credential: str = Field(description="bootstrap-token, token:<prefix>, or session (signed in)")

    @classmethod
    def of(cls, principal: Principal) -> Me:
        return cls(
            actor=principal.actor, role=principal.role.value,
            permissions=sorted(p.value for p in principal.role.permissions), credential=principal.credential,
        )
