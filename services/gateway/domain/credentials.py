"""Staff users and their API tokens.

A token reads ``bt_<8-character prefix>_<32-character secret>`` (project API keys are ``bk_...``): random, shown
once, stored as the SHA-256 of the whole token with the prefix visible. It carries ~190 bits of randomness, so a
fast hash is right (there is nothing to brute-force); people's passwords, which are guessable, get argon2id
instead (``adapters/passwords.py``). A token may expire; rotating one mints its successor and lets the old one
live on for an overlap, so a deployment can switch without a failed request. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.credentials import CredentialFormat, Minted, secret_matches, state_of
from billing_runtime.credentials import CredentialState as TokenState
from billing_runtime.errors import InvalidArgument
from services.gateway.domain.access import Role, parse_role

TOKENS = CredentialFormat("bt")
TOKEN_PREFIX = TOKENS.kind
MintedToken = Minted
# Loose on purpose (RFC 5321 allows more than any regex should): one @, something on each side, no spaces.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")
MAX_NAME_LENGTH = 100
MAX_ORGANISATION_ID_LENGTH = 64
MAX_TOKEN_LIFETIME = timedelta(days=366 * 5)
MAX_ROTATION_OVERLAP = timedelta(days=30)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None = None
    has_password: bool = False
    totp_enabled: bool = False
    organisation_id: str | None = None  # an organisation user's (role member or owner); None for staff


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    allowed_cidrs: tuple[str, ...] = ()  # source ranges it may be used from; empty: anywhere the API answers

    def state(self, now: datetime) -> TokenState:
        return state_of(self.revoked_at, self.expires_at, now)


def mint_token() -> MintedToken:
    return TOKENS.mint()


def token_prefix_of(secret: str) -> str | None:
    """The stored prefix of a well-formed token, or None if ``secret`` cannot be one of ours."""
    return TOKENS.prefix_of(secret)


def token_matches(token: Token, secret: str) -> bool:
    return secret_matches(token.secret_hash, secret)


def rotation_expiry(current_expiry: datetime | None, now: datetime, overlap: timedelta) -> datetime:
    """When the rotated token stops working: after the overlap, or at its own expiry if that is sooner."""
    if overlap < timedelta(0) or overlap > MAX_ROTATION_OVERLAP:
        raise InvalidArgument(f"must be between 0 and {MAX_ROTATION_OVERLAP.days} days", field="overlap_seconds")
    end = now + overlap
    return end if current_expiry is None else min(current_expiry, end)


def validate_token_request(name: str, expires_at: datetime | None, now: datetime) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    if expires_at is not None and not now < expires_at <= now + MAX_TOKEN_LIFETIME:
        raise InvalidArgument("must be in the future, and at most 5 years away", field="expires_at")
    return name


MAX_ALLOWED_CIDRS = 20


def validate_cidrs(ranges: Sequence[str]) -> tuple[str, ...]:
    """A token's source ranges in their normal form (``10.1.2.3/8`` -> ``10.0.0.0/8``); InvalidArgument names
    the first bad one."""
    if len(ranges) > MAX_ALLOWED_CIDRS:
        raise InvalidArgument(f"at most {MAX_ALLOWED_CIDRS} ranges", field="allowed_cidrs")
    normal = []
    for index, text in enumerate(ranges):
        try:
            normal.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise InvalidArgument("is not an IP address or CIDR range", field=f"allowed_cidrs[{index}]") from None
    return tuple(normal)


def validate_user(email: str, name: str, role: str) -> tuple[str, str, Role]:
    """The normalised email (lower case), name and role of a new user; InvalidArgument names the field."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise InvalidArgument("must be an email address", field="email")
    return email, validate_name(name), validate_role(role)


def validate_organisation(role: Role, organisation_id: str | None) -> str | None:
    """A staff role has no organisation; an organisation role (member, owner) has exactly one."""
    organisation_id = (organisation_id or "").strip() or None
    if role.staff and organisation_id is not None:
        raise InvalidArgument(f"a {role.value} is staff and belongs to no organisation; give an organisation "
                              "user the role member or owner", field="organisation_id")
    if not role.staff and organisation_id is None:
        raise InvalidArgument(f"a {role.value} belongs to an organisation: give its id", field="organisation_id")
    if organisation_id is not None and len(organisation_id) > MAX_ORGANISATION_ID_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_ORGANISATION_ID_LENGTH} characters", field="organisation_id")
    return organisation_id


def validate_role_change(before: User, role: Role) -> None:
    """A role changes within its kind: staff stay staff, an organisation user stays in their organisation."""
    if role.staff != before.role.staff:
        kind = "staff (admin, operator, viewer)" if before.role.staff else "an organisation role (member, owner)"
        raise InvalidArgument(f"this user's role must stay {kind}", field="role")


def validate_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    return name


def validate_role(role: str) -> Role:
    parsed = parse_role(role)
    if parsed is None:
        raise InvalidArgument("must be one of admin, operator, viewer, member, owner", field="role")
    return parsed
