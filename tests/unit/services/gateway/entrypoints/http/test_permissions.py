"""The one permission table covers every route and every gRPC method of the gateway, and the one dependency
enforces it for REST: unauthenticated calls answer 401, a role without the route's permission 403, and neither
reaches a service or the audit log. (The gRPC admission's refusals: tests/unit/services/gateway/entrypoints/grpc/
and tests/integration/gateway/test_access_grpc.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from billing.gateway.v1 import access_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.errors import NotFound
from services.gateway.domain.access import (
    API_KEY,
    ORG_MANAGE,
    ORG_PAY,
    ORG_READ,
    PUBLIC,
    READ,
    SESSION,
    SIGN_IN,
    STAFF_PERMISSIONS,
    Access,
    Permission,
    Role,
)
from services.gateway.entrypoints.http.permissions import GRPC_TWINS, METHODS, PAGE_TWINS, PAGES, ROUTES
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def operations(gateway: Gateway) -> set[tuple[str, str]]:
    """Every operation of the OpenAPI document, and the routes outside it that app-wide dependencies reach (the
    human docs: FastAPI routes with include_in_schema=False)."""
    paths = gateway.app.openapi()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    hidden = {
        (method, route.path) for route in _routes(gateway.app.routes)
        if isinstance(route, APIRoute) and not route.include_in_schema for method in route.methods
    }
    return documented | hidden


def _routes(routes) -> list:
    """The app's routes, those of included routers too (FastAPI keeps an included router as one entry whose
    ``original_router`` holds its routes, e.g. the dashboard's pages, which the OpenAPI document leaves out)."""
    found = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        found.extend(_routes(nested.routes) if nested is not None else [route])
    return found


def test_every_route_has_one_entry_and_every_entry_a_route(gateway):
    served = operations(gateway)
    assert sorted(served - ROUTES.keys() - PAGES.keys()) == [], "routes without a permission entry"
    assert sorted(ROUTES.keys() - served) == [], "permission entries without a route"
    assert sorted(PAGES.keys() - served) == [], "dashboard page entries without a page"
    assert not ROUTES.keys() & PAGES.keys()


def test_every_dashboard_page_takes_its_rest_twins_entry():
    for page, twin in PAGE_TWINS.items():
        assert page[1] == "/app" or page[1].startswith("/app/"), page
        assert PAGES[page] is ROUTES[twin], page
        # A page that changes something has a twin that does, and the reverse; the operator's pages are staff
        # routes, the customer's the organisation's.
        if page[1] != "/app/login":
            assert (page[0] == "GET") == (twin[0] == "GET"), page
        assert page[1].startswith("/app/operator/") == twin[1].startswith("/api/v1/admin/"), page


def test_every_grpc_method_of_the_gateway_has_one_entry_its_rest_twins():
    methods = {f"/{service.full_name}/{method.name}" for service in access_pb2.DESCRIPTOR.services_by_name.values()
               for method in service.methods}
    assert sorted(methods - METHODS.keys()) == [], "gRPC methods without a permission entry"
    assert sorted(METHODS.keys() - methods) == [], "permission entries without a gRPC method"
    for name, twin in GRPC_TWINS.items():
        access = ROUTES[twin]
        assert access.permission is not None and not (access.api_key or access.public or access.session), name
        # A method that changes something (not marked NO_SIDE_EFFECTS) has a twin that writes, and the reverse.
        method = access_pb2.DESCRIPTOR.services_by_name["AccessService"].methods_by_name[name]
        safe = method.GetOptions().idempotency_level == method.GetOptions().NO_SIDE_EFFECTS
        assert safe == (twin[0] == "GET"), name


def test_admin_routes_need_a_staff_permission_and_writes_more_than_read():
    for (method, path), access in ROUTES.items():
        if path.startswith("/api/v1/admin/"):
            assert access.permission is not None and not access.api_key, (method, path)
            if method != "GET":
                assert access is not READ, f"{method} {path} writes with only the read permission"
        elif path.startswith("/api/v1/auth/"):
            # A person's own sign-in: the login checks the password itself, the rest needs the session.
            assert access in (SIGN_IN, SESSION), (method, path)
            assert (access is SIGN_IN) == (path == "/api/v1/auth/login"), (method, path)
        elif access.permission is None:
            assert access in (PUBLIC, API_KEY, ORG_READ, ORG_PAY, ORG_MANAGE), (method, path)
        assert access.organisation is None or path.startswith("/api/v1/") and "/admin/" not in path, (method, path)
        assert not access.session or path.startswith("/api/v1/auth/"), f"{method} {path}: session-only route"


# Every route a project's key opens, and whether an organisation user may call it too (and with which
# permission): a deliberate choice per route, so a new customer route fails here until someone decides.
CUSTOMER_ROUTES: dict[tuple[str, str], Access] = {
    # Event ingestion lands in the key's project: organisation users have no project.
    ("POST", "/api/v1/events"): API_KEY,
    ("POST", "/api/v1/ingest"): API_KEY,
    # A key: its project's usage; an organisation user: the organisation's (every project).
    ("GET", "/api/v1/usage"): ORG_READ,
    ("GET", "/api/v1/quota"): ORG_READ,
    ("GET", "/api/v1/entitlements"): ORG_READ,
    ("GET", "/api/v1/alerts"): ORG_READ,
    ("GET", "/api/v1/invoices"): ORG_READ,
    ("GET", "/api/v1/credits"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}/pdf"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}/credit-notes"): ORG_READ,
    ("GET", "/api/v1/credit-notes"): ORG_READ,
    ("GET", "/api/v1/credit-notes/{credit_note_id}"): ORG_READ,
    ("GET", "/api/v1/credit-notes/{credit_note_id}/pdf"): ORG_READ,
    ("GET", "/api/v1/projected-invoice"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}/payments"): ORG_READ,
    # The IRN, Ack No and date of an e-invoiced invoice (never why a registration failed).
    ("GET", "/api/v1/invoices/{invoice_id}/einvoice"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}/checkout"): ORG_PAY,
    ("POST", "/api/v1/invoices/{invoice_id}/checkout/verify"): ORG_PAY,
    ("POST", "/api/v1/invoices/{invoice_id}/payment-link"): ORG_PAY,
    ("GET", "/api/v1/messages"): ORG_READ,
    ("GET", "/api/v1/webhook-endpoints"): ORG_READ,
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}"): ORG_READ,
    ("GET", "/api/v1/webhook-deliveries"): ORG_READ,
    ("POST", "/api/v1/webhook-endpoints"): ORG_MANAGE,
    ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): ORG_MANAGE,
    ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"): ORG_MANAGE,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): ORG_MANAGE,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/test"): ORG_MANAGE,
    # The organisation's own account: its plan, its projects' keys, its alert rules (changes: an owner, and
    # account.py refuses a project's key whatever the table lets it open).
    ("GET", "/api/v1/plans"): ORG_READ,
    ("GET", "/api/v1/subscription/change-plan/preview"): ORG_READ,
    ("POST", "/api/v1/subscription/change-plan"): ORG_MANAGE,
    ("GET", "/api/v1/api-keys"): ORG_READ,
    ("POST", "/api/v1/api-keys"): ORG_MANAGE,
    ("POST", "/api/v1/api-keys/{api_key_id}/revoke"): ORG_MANAGE,
    ("GET", "/api/v1/alert-rules"): ORG_READ,
    ("POST", "/api/v1/alert-rules"): ORG_MANAGE,
    ("DELETE", "/api/v1/alert-rules/{rule_id}"): ORG_MANAGE,
    # The organisation's recurring mandate: it lets the platform debit its bank account, so setting it up,
    # pausing and cancelling it are an owner's (a person's: mandates.py refuses a project's key); its debits are
    # read as its invoices are.
    ("GET", "/api/v1/mandates"): ORG_READ,
    ("POST", "/api/v1/mandates"): ORG_MANAGE,
    ("POST", "/api/v1/mandates/{mandate_id}/pause"): ORG_MANAGE,
    ("POST", "/api/v1/mandates/{mandate_id}/cancel"): ORG_MANAGE,
    ("GET", "/api/v1/mandates/{mandate_id}/debits"): ORG_READ,
}


def test_every_customer_routes_entry_is_deliberate():
    taken_by_a_key = {route: access for route, access in ROUTES.items() if access.api_key and not access.permission}
    assert taken_by_a_key == CUSTOMER_ROUTES
    # Only writes that pay need more than reading, and an organisation's settings need an owner.
    for (method, path), access in CUSTOMER_ROUTES.items():
        if method != "GET" and access.organisation is not None:
            assert access is not ORG_READ, (method, path)


def test_an_access_is_exactly_one_kind():
    for bad in ({}, {"public": True, "session": True}, {"session": True, "permission": Permission.READ},
                {"public": True, "api_key": True}, {"organisation": Permission.ORG_READ},
                {"api_key": True, "organisation": Permission.READ},
                {"api_key": True, "permission": Permission.READ, "organisation": Permission.ORG_READ},
                {"permission": Permission.ORG_READ}):
        with pytest.raises(ValueError):
            Access(**bad)


def test_roles_grant_what_the_issue_promises():
    assert Role.ADMIN.permissions == STAFF_PERMISSIONS
    assert Role.OPERATOR.permissions == {Permission.READ, Permission.OPERATE}
    assert Role.VIEWER.permissions == {Permission.READ}


def test_without_a_credential_an_admin_route_answers_401_and_calls_nothing(gateway):
    reply = gateway.http.get("/api/v1/admin/organisations")
    assert reply.status_code == 401 and reply.json()["error"] == "unauthenticated"
    assert gateway.invoicing.requests == {}


def test_a_project_key_does_not_open_the_admin_api(gateway):
    gateway.add_key("bk_someproject_key", "org_a")
    reply = gateway.http.get("/api/v1/admin/organisations", headers={"Authorization": "Bearer bk_someproject_key"})
    assert reply.status_code == 401
    assert gateway.invoicing.requests == {}


def test_a_viewer_reads_but_cannot_write(gateway):
    viewer = gateway.staff("viewer")
    gateway.invoicing.answer("ListOrganisations", invoicing_pb2.ListOrganisationsResponse())
    assert gateway.http.get("/api/v1/admin/organisations", headers=viewer).status_code == 200

    reply = gateway.http.post(
        "/api/v1/admin/organisations", headers=viewer,
        json={"name": "Acme", "billing_email": "b@acme.example", "billing_currency": "INR", "country": "IN"},
    )
    assert reply.status_code == 403
    assert "viewer role does not grant 'configure'" in reply.json()["detail"]
    assert "CreateOrganisation" not in gateway.invoicing.requests
    assert gateway.audit == []


def test_an_operator_operates_but_configures_nothing_and_manages_no_users(gateway):
    operator = gateway.staff("operator")
    gateway.invoicing.answer("VoidInvoice", NotFound("no invoice"))
    void = gateway.http.post("/api/v1/admin/invoices/inv_1/void", headers=operator, json={"reason": "typo"})
    assert void.status_code == 403
    assert gateway.http.get("/api/v1/admin/users", headers=operator).status_code == 403

    gateway.payments.answer("CreateRefund", NotFound("no such payment"))
    refund = gateway.http.post("/api/v1/admin/payments/pay_1/refunds", headers=operator, json={"amount": "1.00"})
    assert refund.status_code != 403, refund.json()  # past access control (the fake payment is unknown)


def test_tokens_of_disabled_users_and_made_up_tokens_are_refused(gateway):
    disabled = gateway.staff("admin", disabled=True)
    assert gateway.http.get("/api/v1/admin/me", headers=disabled).status_code == 401
    forged = {"Authorization": "Bearer bt_AAAAAAAA_" + "A" * 32}
    assert gateway.http.get("/api/v1/admin/me", headers=forged).status_code == 401


def test_me_says_who_the_credential_is(gateway):
    operator = gateway.staff("operator")
    body = gateway.http.get("/api/v1/admin/me", headers=operator).json()
    assert body["role"] == "operator" and body["actor"].startswith("user:usr_")
    assert body["permissions"] == ["operate", "read"]
    assert gateway.http.get("/api/v1/admin/me", headers=ADMIN).json()["actor"] == "admin-token"


def test_an_admin_manages_users_and_tokens_and_each_write_is_audited_with_its_actor(gateway):
    admin = gateway.staff("admin")
    created = gateway.http.post(
        "/api/v1/admin/users", headers=admin, json={"email": "Asha@Example.com", "name": "Asha", "role": "viewer"}
    )
    assert created.status_code == 201, created.json()
    user = created.json()
    assert user["email"] == "asha@example.com"
    again = gateway.http.post(
        "/api/v1/admin/users", headers=admin, json={"email": "asha@example.com", "name": "A", "role": "admin"}
    )
    assert again.status_code == 409

    minted = gateway.http.post(f"/api/v1/admin/users/{user['id']}/tokens", headers=admin, json={"name": "laptop"})
    assert minted.status_code == 201
    secret = minted.json()["secret"]
    assert secret.startswith("bt_") and minted.json()["prefix"] == secret[:11]
    as_new = {"Authorization": f"Bearer {secret}"}
    assert gateway.http.get("/api/v1/admin/me", headers=as_new).json()["role"] == "viewer"

    promoted = gateway.http.patch(f"/api/v1/admin/users/{user['id']}", headers=admin, json={"role": "operator"})
    assert promoted.json()["role"] == "operator"
    assert gateway.http.get("/api/v1/admin/me", headers=as_new).json()["role"] == "operator"

    actors = {entry["actor"] for entry in gateway.audit}
    assert actors == {"user:usr_0001"}
    assert [entry["action"] for entry in gateway.audit] == [
        "user.create:viewer", "staff_token.create", "user.role:viewer->operator"
    ]


def test_rotation_keeps_the_old_token_for_the_overlap_and_revocation_is_immediate(gateway):
    admin = gateway.staff("admin")
    user = gateway.http.post(
        "/api/v1/admin/users", headers=admin, json={"email": "ci@example.com", "name": "CI", "role": "operator"}
    ).json()
    first = gateway.http.post(f"/api/v1/admin/users/{user['id']}/tokens", headers=admin, json={"name": "ci"}).json()
    old = {"Authorization": f"Bearer {first['secret']}"}

    rotated = gateway.http.post(f"/api/v1/admin/tokens/{first['id']}/rotate", headers=admin,
                                json={"overlap_seconds": 3600})
    assert rotated.status_code == 201
    new = {"Authorization": f"Bearer {rotated.json()['token']['secret']}"}
    expires = datetime.fromisoformat(rotated.json()["previous"]["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert gateway.http.get("/api/v1/admin/me", headers=old).status_code == 200
    assert gateway.http.get("/api/v1/admin/me", headers=new).status_code == 200

    revoked = gateway.http.post(f"/api/v1/admin/tokens/{first['id']}/revoke", headers=admin)
    assert revoked.json()["state"] == "revoked"
    assert gateway.http.get("/api/v1/admin/me", headers=old).status_code == 401
    assert gateway.http.get("/api/v1/admin/me", headers=new).status_code == 200

    leaked = gateway.http.post(f"/api/v1/admin/tokens/{rotated.json()['token']['id']}/rotate", headers=admin,
                               json={"overlap_seconds": 0})
    assert gateway.http.get("/api/v1/admin/me", headers=new).status_code == 401
    fresh = {"Authorization": f"Bearer {leaked.json()['token']['secret']}"}
    assert gateway.http.get("/api/v1/admin/me", headers=fresh).status_code == 200


def test_the_last_admin_cannot_be_demoted_or_disabled(gateway):
    admin = gateway.staff("admin")
    me = "usr_0001"
    assert gateway.http.patch(f"/api/v1/admin/users/{me}", headers=admin, json={"role": "viewer"}).status_code == 422
    assert gateway.http.patch(f"/api/v1/admin/users/{me}", headers=admin, json={"disabled": True}).status_code == 422
    gateway.staff("admin")
    assert gateway.http.patch(f"/api/v1/admin/users/{me}", headers=admin, json={"role": "viewer"}).status_code == 200


def _example_path(path: str) -> str:
    return path.replace("{", "").replace("}", "_x")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_every_route_a_role_lacks_answers_403_and_reaches_nothing(role):
    """Walk the whole table with the role's token: each route whose permission the role does not grant answers
    403 (before the route's own validation, whatever the body), calls no service and writes no audit entry."""
    gateway = Gateway()
    headers = gateway.staff(role)
    walked = 0
    for (method, path), access in ROUTES.items():
        if access.permission is None or Role(role).may(access.permission):
            continue
        reply = gateway.http.request(method, _example_path(path), headers=headers, json={})
        assert reply.status_code == 403, (method, path, reply.status_code, reply.text)
        walked += 1
    untouched = (gateway.invoicing, gateway.payments, gateway.notification, gateway.clients.metering)
    assert all(stub.requests == {} for stub in untouched)
    assert gateway.audit == []
    assert walked >= (40 if role == "viewer" else 25), walked  # the walk reached the table


def test_every_staff_route_refuses_a_project_key_with_401():
    gateway = Gateway()
    gateway.add_key("bk_tenant_a", "org_a")
    for (method, path), access in ROUTES.items():
        if access.permission is None or access.api_key:
            continue
        reply = gateway.http.request(method, _example_path(path), headers={"Authorization": "Bearer bk_tenant_a"},
                                     json={})
        assert reply.status_code == 401, (method, path, reply.status_code)
    assert gateway.invoicing.requests == {} and gateway.audit == []
