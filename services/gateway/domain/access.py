"""Who may do what at the edge: staff roles, their permissions, and the principal a request acts as.

Staff (the platform's operators) hold one role each:

- ``admin``: everything, users and roles included;
- ``operator``: reads, and runs the platform's day (invoice runs, refunds, retries and replays, offline payments,
  dead letters, reconciliation and review items), but configures nothing and manages no users;
- ``viewer``: reads only.

Every route declares which permission it needs (``services/gateway/entrypoints/http/permissions.py``), and a role
is the set of permissions it grants. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Permission(enum.Enum):
    READ = "read"  # any admin read
    OPERATE = "operate"  # the day's operations: runs, refunds, retries, replays, offline payments, reviews
    CONFIGURE = "configure"  # organisations, projects, keys, plans, subscriptions, prices, endpoints, voids
    MANAGE_USERS = "manage_users"  # staff users, roles and their tokens


class Role(enum.Enum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]

    def may(self, permission: Permission) -> bool:
        return permission in _GRANTS[self]


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.VIEWER: frozenset({Permission.READ}),
}


def parse_role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Access:
    """What a route asks of its caller: a staff permission, a project's API key, a person's signed-in session, or
    nothing (public routes, provider webhooks, which prove themselves by their signature, and sign-in itself,
    which checks the password). A route may take either a staff credential with ``permission`` or an API key
    (``api_key`` and ``permission`` both set). ``session`` routes act on the signed-in person themself (their
    session, password, second factor): only the session cookie opens them, whatever the role."""

    permission: Permission | None = None
    api_key: bool = False
    public: bool = False
    session: bool = False

    def __post_init__(self) -> None:
        kinds = (self.public, self.session, self.permission is not None or self.api_key)
        if sum(kinds) != 1:
            raise ValueError("a route is public, or needs a session, or a permission and/or an API key")


PUBLIC = Access(public=True)
API_KEY = Access(api_key=True)
READ = Access(Permission.READ)
OPERATE = Access(Permission.OPERATE)
CONFIGURE = Access(Permission.CONFIGURE)
MANAGE_USERS = Access(Permission.MANAGE_USERS)
READ_OR_API_KEY = Access(Permission.READ, api_key=True)
# /api/v1/auth: signing in proves itself with the password (and TOTP code); the rest needs the signed-in session.
SIGN_IN = Access(public=True)
SESSION = Access(session=True)


@dataclass(frozen=True)
class Principal:
    """The staff member a request acts for: ``actor`` is what the audit log and the services' logs record
    (``admin-token`` for the bootstrap token, ``user:<id>`` for a user)."""

    actor: str
    role: Role
    user_id: str = ""
    credential: str = ""  # how it authenticated: "bootstrap-token", "token:<prefix>", "session"
    allowed_cidrs: tuple[str, ...] = ()  # the credential's own source ranges (a staff token's); empty: no limit

    def may(self, permission: Permission) -> bool:
        return self.role.may(permission)
