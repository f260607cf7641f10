"""Staff users and their API tokens: create, list, change role or disable, mint, rotate, revoke, and verify a
presented credential. Each use case is one transaction. The REST API (``entrypoints/http/staff.py``) and the gRPC
API (``entrypoints/grpc/access.py``) call these same use cases, and record the audit entries :func:`user_created`
and its neighbours name."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billing_runtime import paging
from billing_runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from billing_runtime.ids import new_id
from services.gateway.domain import credentials as cred
from services.gateway.domain.access import Principal, Role
from services.gateway.domain.sessions import validate_password
from services.gateway.service.ports import Organisations, Passwords, StaffTransaction

# The bootstrap admin token (GATEWAY_ADMIN_TOKEN) acts as the admin role, recorded as this actor.
BOOTSTRAP_ACTOR = "admin-token"
BOOTSTRAP = Principal(actor=BOOTSTRAP_ACTOR, role=Role.ADMIN, credential="bootstrap-token")
# How long a rotated token keeps working beside its successor when the caller does not say.
DEFAULT_ROTATION_OVERLAP = timedelta(days=1)


@dataclass(frozen=True)
class CreateUser:
    email: str
    name: str
    role: str
    password: str | None = None  # to sign in to the dashboard; never logged, never returned
    organisation_id: str | None = None  # an organisation user's (role member or owner)


async def create_user(
    uow: StaffTransaction, command: CreateUser, passwords: Passwords | None = None,
    organisations: Organisations | None = None,
) -> cred.User:
    """A staff user, or an organisation user of an organisation invoicing knows (asked before the transaction
    opens: a call to another service must not hold a connection of ours; an organisation is never deleted, so
    the answer stays true)."""
    email, name, role = cred.validate_user(command.email, command.name, command.role)
    organisation_id = cred.validate_organisation(role, command.organisation_id)
    if organisation_id is not None:
        if organisations is None:
            raise RuntimeError("no organisation directory configured")
        if not await organisations.exists(organisation_id):
            raise InvalidArgument("no such organisation", field="organisation_id")
    password_hash = await _password_hash(passwords, command.password, email)
    async with uow:
        user = await uow.users.add(user_id=new_id("usr"), email=email, name=name, role=role,
                                   organisation_id=organisation_id)
        if user is None:
            raise AlreadyExists("a user with this email exists")
        if password_hash is not None:
            await uow.users.set_password_hash(user.id, password_hash)
            user = await uow.users.get(user.id)
            assert user is not None
    return user


async def _password_hash(passwords: Passwords | None, password: str | None, email: str) -> str | None:
    """The argon2id hash of an acceptable password (hashed outside any transaction: it takes a while)."""
    if password is None:
        return None
    validate_password(password, email)
    if passwords is None:
        raise RuntimeError("no password hasher configured")
    return await passwords.hash(password)


async def get_user(uow: StaffTransaction, user_id: str) -> cred.User:
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("no such user")
    return user


async def list_users(uow: StaffTransaction, page_size: int, page_token: str) -> tuple[list[cred.User], str]:
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        page = await uow.users.list(limit=size + 1, after=after)
    return paging.split_page(page, size)


@dataclass(frozen=True)
class UpdateUser:
    user_id: str
    name: str | None = None
    role: str | None = None
    disabled: bool | None = None
    password: str | None = None  # set by an admin: ends the user's sessions
    reset_totp: bool = False  # turn the user's second factor off (a lost authenticator)


async def update_user(
    uow: StaffTransaction, command: UpdateUser, now: datetime, passwords: Passwords | None = None
) -> tuple[cred.User, cred.User]:
    """Rename, change the role, disable or enable, set the password, reset the second factor; returns (before,
    after). The last active admin can be neither demoted nor disabled: someone must be able to manage users."""
    name = cred.validate_name(command.name) if command.name is not None else None
    role = cred.validate_role(command.role) if command.role is not None else None
    password_hash: str | None = None
    if command.password is not None:
        async with uow:
            current = await uow.users.get(command.user_id)
        if current is None:
            raise NotFound("no such user")
        password_hash = await _password_hash(passwords, command.password, current.email)
    async with uow:
        before = await uow.users.get(command.user_id)
        if before is None:
            raise NotFound("no such user")
        if role is not None:
            cred.validate_role_change(before, role)
        loses_admin = before.role is Role.ADMIN and before.disabled_at is None and (
            (role is not None and role is not Role.ADMIN) or command.disabled
        )
        if loses_admin and await uow.users.count_active_admins() <= 1:
            raise FailedPrecondition("this is the last active admin: make another admin first")
        disabled_at: datetime | None | bool = False
        if command.disabled is not None:
            disabled_at = (before.disabled_at or now) if command.disabled else None
        after = await uow.users.update(command.user_id, name=name, role=role, disabled_at=disabled_at)
        if password_hash is not None:
            await uow.users.set_password_hash(command.user_id, password_hash)
            await uow.sessions.revoke_all(command.user_id, now)
        if command.reset_totp:
            await uow.users.set_totp(command.user_id, secret=None, enabled=False, last_step=None)
        if password_hash is not None or command.reset_totp:
            after = await uow.users.get(command.user_id)
        assert after is not None
    return before, after


@dataclass(frozen=True)
class CreateToken:
    user_id: str
    name: str
    expires_at: datetime | None = None
    allowed_cidrs: tuple[str, ...] = ()


async def create_token(uow: StaffTransaction, command: CreateToken, now: datetime) -> tuple[cred.Token, str]:
    """Mint a token for a user; returns (token, secret). The secret is never stored or shown again."""
    name = cred.validate_token_request(command.name, command.expires_at, now)
    allowed = cred.validate_cidrs(command.allowed_cidrs)
    minted = cred.mint_token()
    async with uow:
        user = await uow.users.get(command.user_id)
        if user is None:
            raise NotFound("no such user")
        if user.disabled_at is not None:
            raise FailedPrecondition("the user is disabled")
        token = await uow.tokens.add(
            token_id=new_id("tok"), user_id=user.id, name=name, prefix=minted.prefix,
            secret_hash=minted.secret_hash, expires_at=command.expires_at, allowed_cidrs=allowed,
        )
    return token, minted.secret


async def list_tokens(
    uow: StaffTransaction, user_id: str, page_size: int, page_token: str
) -> tuple[list[cred.Token], str]:
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        if await uow.users.get(user_id) is None:
            raise NotFound("no such user")
        page = await uow.tokens.list(user_id=user_id, limit=size + 1, after=after)
    return paging.split_page(page, size)


async def rotate_token(
    uow: StaffTransaction, token_id: str, overlap: timedelta, now: datetime
) -> tuple[cred.Token, cred.Token, str]:
    """Mint the successor of an active token (same user, name and lifetime left) and let the old one work for
    ``overlap`` more at most; returns (old, new, new secret)."""
    minted = cred.mint_token()
    async with uow:
        current = await uow.tokens.get(token_id)
        if current is None:
            raise NotFound("no such token")
        if current.state(now) is not cred.TokenState.ACTIVE:
            raise FailedPrecondition(f"the token is {current.state(now).value}; mint a new one instead")
        old = await uow.tokens.expire(token_id, cred.rotation_expiry(current.expires_at, now, overlap))
        assert old is not None
        new = await uow.tokens.add(
            token_id=new_id("tok"), user_id=current.user_id, name=current.name, prefix=minted.prefix,
            secret_hash=minted.secret_hash, expires_at=_successor_expiry(current, now),
            allowed_cidrs=current.allowed_cidrs,
        )
    return old, new, minted.secret


def _successor_expiry(old: cred.Token, now: datetime) -> datetime | None:
    """The successor keeps the lifetime the old token was created with (a 90-day token rotates into a 90-day
    token), counted from now; a token without expiry rotates into one without."""
    return None if old.expires_at is None else now + (old.expires_at - old.created_at)


async def revoke_token(uow: StaffTransaction, token_id: str, now: datetime) -> cred.Token:
    """Revoke at once; revoking again keeps the first revocation time."""
    async with uow:
        token = await uow.tokens.revoke(token_id, now)
    if token is None:
        raise NotFound("no such token")
    return token


async def authenticate_staff(
    uow: StaffTransaction, credential: str, bootstrap_token: str, now: datetime
) -> Principal | None:
    """The principal a presented bearer credential acts as: the bootstrap admin token (compared in constant time)
    or a user's token (:func:`authenticate_token`). None when it is no staff credential at all (a project key, or
    nothing); Unauthenticated when it looks like a token and is not valid."""
    if not credential:
        return None
    if bootstrap_token and hmac.compare_digest(credential.encode(), bootstrap_token.encode()):
        return BOOTSTRAP
    if credential.startswith(f"{cred.TOKEN_PREFIX}_"):
        return await authenticate_token(uow, credential, now)
    return None


async def authenticate_token(uow: StaffTransaction, secret: str, now: datetime) -> Principal:
    """The principal a presented staff token acts as. Unknown, expired or revoked tokens, and tokens of disabled
    users, are all refused the same way (nothing tells a guesser which)."""
    prefix = cred.token_prefix_of(secret)
    if prefix is None:
        raise Unauthenticated("token is not valid")
    async with uow:
        found = await uow.tokens.get_with_user(prefix)
        if found is None:
            raise Unauthenticated("token is not valid")
        token, user = found
        if (
            not cred.token_matches(token, secret)
            or token.state(now) is not cred.TokenState.ACTIVE
            or user.disabled_at is not None
        ):
            raise Unauthenticated("token is not valid")
        await uow.tokens.touch(token.id, now)
    return Principal(actor=f"user:{user.id}", role=user.role, user_id=user.id, credential=f"token:{token.prefix}",
                     allowed_cidrs=token.allowed_cidrs, organisation_id=user.organisation_id or "")


def overlap_of(seconds: int | None) -> timedelta:
    """The rotation overlap a caller asked for in seconds (None: the default, a day)."""
    if seconds is None:
        return DEFAULT_ROTATION_OVERLAP
    if seconds < 0:
        raise InvalidArgument("must not be negative", field="overlap_seconds")
    if seconds > cred.MAX_ROTATION_OVERLAP.total_seconds():
        raise InvalidArgument(f"must be between 0 and {cred.MAX_ROTATION_OVERLAP.days} days", field="overlap_seconds")
    return timedelta(seconds=seconds)


# -- what the writes leave in the audit log (both entrypoints record these, adding who, from where and the request)


@dataclass(frozen=True)
class AuditEntry:
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def user_created(user: cred.User, password_set: bool) -> list[AuditEntry]:
    entries = [AuditEntry(f"user.create:{user.role.value}", "user", user.id,
                          after={"organisation_id": user.organisation_id} if user.organisation_id else None)]
    if password_set:
        entries.append(AuditEntry("user.password_set", "user", user.id))
    return entries


def user_updated(before: cred.User, after: cred.User, *, password_set: bool, totp_reset: bool) -> list[AuditEntry]:
    """One entry per kind of change (never the password itself)."""
    entries = []
    if password_set:
        entries.append(AuditEntry("user.password_set", "user", after.id))
    if totp_reset:
        entries.append(AuditEntry("user.totp_reset", "user", after.id, before={"totp_enabled": before.totp_enabled},
                                  after={"totp_enabled": False}))
    if before.role is not after.role:
        entries.append(AuditEntry(f"user.role:{before.role.value}->{after.role.value}", "user", after.id,
                                  before={"role": before.role.value}, after={"role": after.role.value}))
    if (before.disabled_at is None) != (after.disabled_at is None):
        entries.append(AuditEntry("user.disable" if after.disabled_at else "user.enable", "user", after.id))
    if before.name != after.name:
        entries.append(AuditEntry("user.rename", "user", after.id))
    return entries


def token_created(token: cred.Token) -> list[AuditEntry]:
    return [AuditEntry("staff_token.create", "staff_token", token.id)]


def token_rotated(old: cred.Token) -> list[AuditEntry]:
    return [AuditEntry("staff_token.rotate", "staff_token", old.id)]


def token_revoked(token: cred.Token) -> list[AuditEntry]:
    return [AuditEntry("staff_token.revoke", "staff_token", token.id)]
