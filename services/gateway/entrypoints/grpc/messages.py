"""Users, tokens and roles between the domain and ``billing.gateway.v1`` messages."""

from __future__ import annotations

from datetime import datetime

from billing.gateway.v1 import access_pb2 as pb
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp
from services.gateway.domain import credentials as cred
from services.gateway.domain.access import Principal, Role

_TOKEN_STATES = {
    cred.TokenState.ACTIVE: pb.TOKEN_STATE_ACTIVE,
    cred.TokenState.EXPIRED: pb.TOKEN_STATE_EXPIRED,
    cred.TokenState.REVOKED: pb.TOKEN_STATE_REVOKED,
}


def role_to_pb(role: Role) -> pb.Role.ValueType:
    return pb.Role.Value(f"ROLE_{role.name}")


def role_name(value: int) -> str:
    """The role's name as the use cases take it (``admin``); ``""`` for ROLE_UNSPECIFIED, which they refuse
    naming ``role``; InvalidArgument for a number the contract does not know."""
    if value == pb.ROLE_UNSPECIFIED:
        return ""
    try:
        return pb.Role.Name(value).removeprefix("ROLE_").lower()  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument("is not a role this API knows", field="role") from None


def user_to_pb(user: cred.User) -> pb.User:
    message = pb.User(
        id=user.id, email=user.email, name=user.name, role=role_to_pb(user.role),
        create_time=to_timestamp(user.created_at), has_password=user.has_password, totp_enabled=user.totp_enabled,
        organisation_id=user.organisation_id or "",
    )
    if user.disabled_at is not None:
        message.disable_time.CopyFrom(to_timestamp(user.disabled_at))
    return message


def token_to_pb(token: cred.Token, now: datetime) -> pb.Token:
    message = pb.Token(
        id=token.id, user_id=token.user_id, name=token.name, prefix=token.prefix,
        state=_TOKEN_STATES[token.state(now)], create_time=to_timestamp(token.created_at),
        allowed_cidrs=list(token.allowed_cidrs),
    )
    for field, value in (("expire_time", token.expires_at), ("revoke_time", token.revoked_at),
                         ("last_use_time", token.last_used_at)):
        if value is not None:
            getattr(message, field).CopyFrom(to_timestamp(value))
    return message


def who_am_i(principal: Principal) -> pb.WhoAmIResponse:
    return pb.WhoAmIResponse(
        actor=principal.actor, role=role_to_pb(principal.role),
        permissions=sorted(p.value for p in principal.role.permissions), credential=principal.credential,
    )
