"""Who may do what at the edge: staff roles, their permissions, and the principal a request acts as.

Staff (the platform's operators) hold one role each:

- ``admin``: everything, users and roles included;
- ``operator``: reads, and runs the platform's day (invoice runs, refunds, retries and replays, offline payments,
  dead letters, reconciliation and review items), but configures nothing and manages no users;
- ``viewer``: reads only.

Organisation users (a customer's people, e.g. on the dashboard) belong to one organisation and see and do only what
concerns it, on the same ``/api/v1/...`` routes a project's API key calls:

- ``member``: reads (usage, quota, entitlements, alerts, invoices and their PDFs, the projected invoice, payments,
  messages, webhook endpoints and deliveries) and pays (checkout, payment links);
- ``owner``: a member who also manages the organisation's webhook endpoints, and (signed in, not through a
  project's key) changes its plan, mints and revokes its projects' API keys and changes its alert rules.

A staff role grants only staff permissions and an organisation role only organisation permissions, so neither kind
of user passes the other's routes.

Every REST route and every gRPC method of the gateway declares which permission it needs
(``services/gateway/entrypoints/http/permissions.py``), a role is the set of permissions it grants, and
:func:`admit` decides for both. Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from billing_runtime.errors import PermissionDenied
from services.gateway.domain.networks import Network, parse_networks, within

# Methods that change nothing: no CSRF token, and no charge against the staff write limit.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Permission(enum.Enum):
    READ = "read"  # any admin read
    OPERATE = "operate"  # the day's operations: runs, refunds, retries, replays, offline payments, reviews
    CONFIGURE = "configure"  # organisations, projects, keys, plans, subscriptions, prices, endpoints, voids
    MANAGE_USERS = "manage_users"  # staff users, roles and their tokens
    # An organisation user's, always within their own organisation:
    ORG_READ = "org_read"  # usage, quota, entitlements, alerts, invoices, payments, messages, webhook endpoints
    ORG_PAY = "org_pay"  # pay an invoice: checkout (and its verification), payment links
    ORG_MANAGE = "org_manage"  # the organisation's webhook endpoints; its plan, API keys and alert rules


STAFF_PERMISSIONS = frozenset({Permission.READ, Permission.OPERATE, Permission.CONFIGURE, Permission.MANAGE_USERS})
ORGANISATION_PERMISSIONS = frozenset({Permission.ORG_READ, Permission.ORG_PAY, Permission.ORG_MANAGE})


class Role(enum.Enum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    MEMBER = "member"  # an organisation user who reads and pays
    OWNER = "owner"  # an organisation user who also manages the organisation's webhook endpoints

    @property
    def staff(self) -> bool:
        """A staff role (no organisation); otherwise an organisation role (exactly one organisation)."""
        return self in STAFF_ROLES

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]

    def may(self, permission: Permission) -> bool:
        return permission in _GRANTS[self]


STAFF_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.VIEWER})
ORGANISATION_ROLES = frozenset({Role.MEMBER, Role.OWNER})

_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: STAFF_PERMISSIONS,
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.MEMBER: frozenset({Permission.ORG_READ, Permission.ORG_PAY}),
    Role.OWNER: ORGANISATION_PERMISSIONS,
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
    session, password, second factor): only the session cookie opens them, whatever the role.

    ``organisation`` (always with ``api_key``): the customer's routes that an organisation user may call too,
    with their session or token, when their role grants that organisation permission; the route then acts in
    the user's organisation as it would in the key's. Staff credentials never open them."""

    permission: Permission | None = None
    api_key: bool = False
    public: bool = False
    session: bool = False
    organisation: Permission | None = None

    def __post_init__(self) -> None:
        kinds = (self.public, self.session, self.permission is not None or self.api_key)
        if sum(kinds) != 1:
            raise ValueError("a route is public, or needs a session, or a permission and/or an API key")
        if self.permission is not None and self.permission not in STAFF_PERMISSIONS:
            raise ValueError("permission is a staff permission")
        if self.organisation is not None and (
            self.organisation not in ORGANISATION_PERMISSIONS or not self.api_key or self.permission is not None
        ):
            raise ValueError("organisation is an organisation permission, on a project key's route")


PUBLIC = Access(public=True)
API_KEY = Access(api_key=True)
READ = Access(Permission.READ)
OPERATE = Access(Permission.OPERATE)
CONFIGURE = Access(Permission.CONFIGURE)
MANAGE_USERS = Access(Permission.MANAGE_USERS)
READ_OR_API_KEY = Access(Permission.READ, api_key=True)
# The customer's API: a project's key, or an organisation user (session or token) whose role grants the permission.
ORG_READ = Access(api_key=True, organisation=Permission.ORG_READ)
ORG_PAY = Access(api_key=True, organisation=Permission.ORG_PAY)
ORG_MANAGE = Access(api_key=True, organisation=Permission.ORG_MANAGE)
# /api/v1/auth: signing in proves itself with the password (and TOTP code); the rest needs the signed-in session.
SIGN_IN = Access(public=True)
SESSION = Access(session=True)


@dataclass(frozen=True)
class Principal:
    """The user a request acts for: ``actor`` is what the audit log and the services' logs record
    (``admin-token`` for the bootstrap token, ``user:<id>`` for a user). An organisation user's principal carries
    their ``organisation_id``; a staff member's has none. Its role grants staff or organisation permissions,
    never both, so ``may`` is false for every staff permission of an organisation user and the reverse."""

    actor: str
    role: Role
    user_id: str = ""
    credential: str = ""  # how it authenticated: "bootstrap-token", "token:<prefix>", "session"
    allowed_cidrs: tuple[str, ...] = ()  # the credential's own source ranges (a staff token's); empty: no limit
    organisation_id: str = ""  # an organisation user's organisation; empty for staff

    def __post_init__(self) -> None:
        if self.role.staff == bool(self.organisation_id):
            raise ValueError("a staff principal has no organisation, an organisation user's has one")

    @property
    def staff(self) -> bool:
        return self.role.staff

    def may(self, permission: Permission) -> bool:
        return self.role.may(permission)


def admit(principal: Principal, permission: Permission, source: str) -> None:
    """Let ``principal`` use ``permission`` from the address ``source``, or refuse it (PermissionDenied): a token
    used outside its own source ranges, or a role that does not grant the permission. The REST API's access control
    and the gRPC API's admission both decide with this."""
    if principal.allowed_cidrs and not within(source, parse_networks(principal.allowed_cidrs)):
        raise PermissionDenied("this token is not allowed from this address")
    if not principal.may(permission):
        raise PermissionDenied(f"the {principal.role.value} role does not grant '{permission.value}'")


def admit_to_admin_api(source: str, admin_networks: Sequence[Network]) -> None:
    """``GATEWAY_ADMIN_ALLOWED_CIDRS``: staff credentials are answered only from these ranges (none: anywhere)."""
    if admin_networks and not within(source, admin_networks):
        raise PermissionDenied("the admin API does not answer requests from this address")
