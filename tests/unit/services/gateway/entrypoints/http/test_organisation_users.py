"""Organisation users (role member or owner) in front of fake stubs: they call the customer's routes with their
token or session cookie and see their own organisation only (another organisation's id is answered as a made-up
one), a member reads and pays but manages nothing, an owner also manages the webhook endpoints, and neither opens
an admin route; staff credentials still open no customer route; staff create them with the organisation's id."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.notification.v1 import notification_pb2 as npb
from billing_runtime.errors import NotFound
from services.gateway.domain.access import ORGANISATION_PERMISSIONS, STAFF_PERMISSIONS, Permission, Principal, Role
from services.gateway.entrypoints.http.permissions import ROUTES
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

PASSWORD = "correct horse battery"


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _issued(invoice_id: str, organisation_id: str) -> ipb.Invoice:
    return ipb.Invoice(id=invoice_id, organisation_id=organisation_id, status=ipb.INVOICE_STATUS_ISSUED,
                       currency="INR")


def _endpoint(organisation_id: str = "org_a") -> npb.WebhookEndpoint:
    endpoint = npb.WebhookEndpoint(id="wep_1", organisation_id=organisation_id, url="https://hooks.a.example/b",
                                   event_types=["invoice.issued"], enabled=True)
    endpoint.create_time.FromSeconds(1_794_767_400)
    endpoint.update_time.FromSeconds(1_794_767_400)
    return endpoint


def _path(path: str) -> str:
    return path.replace("{", "").replace("}", "_x")


# --- the domain -------------------------------------------------------------------------------------------------


def test_organisation_roles_grant_organisation_permissions_only_and_staff_roles_staff_ones():
    assert Role.MEMBER.permissions == {Permission.ORG_READ, Permission.ORG_PAY}
    assert Role.OWNER.permissions == ORGANISATION_PERMISSIONS
    for role in Role:
        granted = role.permissions
        assert granted <= (STAFF_PERMISSIONS if role.staff else ORGANISATION_PERMISSIONS), role
    member = Principal(actor="user:usr_1", role=Role.MEMBER, user_id="usr_1", organisation_id="org_a")
    assert not any(member.may(permission) for permission in STAFF_PERMISSIONS)
    with pytest.raises(ValueError):
        Principal(actor="user:usr_1", role=Role.MEMBER)  # an organisation user without an organisation
    with pytest.raises(ValueError):
        Principal(actor="user:usr_1", role=Role.ADMIN, organisation_id="org_a")  # staff in an organisation


# --- reads, in their own organisation -----------------------------------------------------------------------------


def test_a_members_token_reads_its_organisations_invoices_and_another_organisations_id_is_a_made_up_one(gateway):
    member = gateway.org_user("member", "org_a")
    gateway.invoicing.answer("ListInvoices", ipb.ListInvoicesResponse(invoices=[_issued("inv_a", "org_a")]))
    listed = gateway.http.get("/api/v1/invoices", headers=member, params={"organisation_id": "org_b"})
    assert listed.status_code == 200 and [i["id"] for i in listed.json()["data"]] == ["inv_a"]
    assert gateway.invoicing.requests["ListInvoices"][0].organisation_id == "org_a"

    gateway.invoicing.answer("GetInvoice", ipb.GetInvoiceResponse(invoice=_issued("inv_b", "org_b")))
    theirs = gateway.http.get("/api/v1/invoices/inv_b", headers=member)
    pdf = gateway.http.get("/api/v1/invoices/inv_b/pdf", headers=member)
    checkout = gateway.http.get("/api/v1/invoices/inv_b/checkout", headers=member)
    assert theirs.status_code == pdf.status_code == checkout.status_code == 404
    assert "RenderInvoice" not in gateway.invoicing.requests and gateway.payments.requests == {}

    gateway.invoicing.replies["GetInvoice"].clear()
    gateway.invoicing.answer("GetInvoice", NotFound("invoice inv_zzzz not found", field="invoice_id"))
    made_up = gateway.http.get("/api/v1/invoices/inv_zzzz", headers=member)
    assert made_up.status_code == 404
    assert made_up.json() == {**theirs.json(), "detail": theirs.json()["detail"].replace("inv_b", "inv_zzzz")}

    gateway.invoicing.replies["GetInvoice"].clear()
    gateway.invoicing.answer("GetInvoice", ipb.GetInvoiceResponse(invoice=_issued("inv_a", "org_a")))
    assert gateway.http.get("/api/v1/invoices/inv_a", headers=member).json()["id"] == "inv_a"


def test_a_members_session_reads_its_organisations_usage_over_every_project(gateway):
    user = gateway.person("member", PASSWORD, organisation_id="org_a")
    assert gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    session = gateway.http.get("/api/v1/auth/session").json()
    assert session["user"]["role"] == "member" and session["user"]["organisation_id"] == "org_a"
    gateway.metering.answer("QueryUsage", NotFound("no metric api_calls", field="metric_code"))
    usage = gateway.http.get("/api/v1/usage", params={"metric": "api_calls"})
    assert usage.status_code == 404, usage.text  # past access control: metering was asked
    sent = gateway.metering.requests["QueryUsage"][0]
    assert (sent.organisation_id, sent.project_id) == ("org_a", "")
    # A project's key still sees its own project's usage only.
    gateway.add_key("bk_a", "org_a")
    gateway.http.cookies.clear()
    gateway.http.get("/api/v1/usage", params={"metric": "api_calls"}, headers={"Authorization": "Bearer bk_a"})
    assert gateway.metering.requests["QueryUsage"][1].project_id == "prj_bk_a"


# --- writes: an owner manages the webhook endpoints, a member pays but manages nothing ---------------------------


def test_an_owner_creates_a_webhook_endpoint_and_a_member_cannot(gateway):
    owner, member = gateway.org_user("owner", "org_a"), gateway.org_user("member", "org_a")
    refused = gateway.http.post("/api/v1/webhook-endpoints", headers=member, json={"url": "https://hooks.a.example/b"})
    assert refused.status_code == 403 and "member role does not grant 'org_manage'" in refused.json()["detail"]
    assert gateway.notification.requests == {} and gateway.audit == []

    gateway.notification.answer("CreateEndpoint", npb.CreateEndpointResponse(endpoint=_endpoint(), secret="whsec_x"))
    created = gateway.http.post("/api/v1/webhook-endpoints", headers=owner, json={"url": "https://hooks.a.example/b"})
    assert created.status_code == 201, created.text
    assert gateway.notification.requests["CreateEndpoint"][0].organisation_id == "org_a"
    assert [(e["action"], e["actor"], e["role"]) for e in gateway.audit] == [
        ("webhook_endpoint.create", "user:usr_0001", "owner")]

    gateway.notification.answer("ListEndpoints", npb.ListEndpointsResponse(endpoints=[_endpoint()]))
    assert gateway.http.get("/api/v1/webhook-endpoints", headers=member).status_code == 200  # a member lists them


def test_a_member_writes_with_the_cookie_only_with_the_csrf_token(gateway):
    user = gateway.person("member", PASSWORD, organisation_id="org_a")
    csrf = gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).json()[
        "csrf_token"]
    gateway.invoicing.answer("GetInvoice", ipb.GetInvoiceResponse(invoice=_issued("inv_b", "org_b")))
    missing = gateway.http.post("/api/v1/invoices/inv_b/payment-link")
    assert missing.status_code == 403 and missing.json()["detail"] == "missing or wrong X-CSRF-Token"
    assert gateway.invoicing.requests == {}
    with_token = gateway.http.post("/api/v1/invoices/inv_b/payment-link", headers={"X-CSRF-Token": csrf})
    assert with_token.status_code == 404  # past access control; another organisation's invoice
    assert gateway.payments.requests == {}


# --- what they cannot open -----------------------------------------------------------------------------------------


def test_organisation_users_are_refused_403_on_every_staff_route_and_reach_nothing(gateway):
    for role in ("member", "owner"):
        headers = gateway.org_user(role, "org_a")
        walked = 0
        for (method, path), access in ROUTES.items():
            if access.permission is None:
                continue
            reply = gateway.http.request(method, _path(path), headers=headers, json={})
            assert reply.status_code == 403, (role, method, path, reply.status_code)
            if path.startswith("/api/v1/admin/"):
                assert f"the {role} role does not grant" in reply.json()["detail"], (method, path)
            walked += 1
        assert walked > 100, walked
    untouched = (gateway.invoicing, gateway.payments, gateway.notification, gateway.metering)
    assert all(stub.requests == {} for stub in untouched) and gateway.audit == []


def test_an_organisation_users_session_opens_no_admin_route(gateway):
    user = gateway.person("owner", PASSWORD, organisation_id="org_a")
    gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert gateway.http.get("/api/v1/admin/organisations").status_code == 403
    assert gateway.http.get("/api/v1/admin/me").status_code == 403
    assert gateway.invoicing.requests == {}


def test_staff_credentials_open_no_customer_route(gateway):
    """The customer's API is for a project's key or an organisation user; staff use the admin API (401, as a
    staff token always was here)."""
    viewer = gateway.staff("admin")
    for (method, path), access in ROUTES.items():
        if access.organisation is None:
            continue
        for headers in (ADMIN, viewer):
            reply = gateway.http.request(method, _path(path), headers=headers, json={})
            assert reply.status_code == 401, (method, path, reply.status_code)
    assert gateway.invoicing.requests == {} and gateway.notification.requests == {} and gateway.audit == []


def test_event_ingestion_takes_a_project_key_only():
    """Events land in the key's project (ingest checks the key it is handed): an organisation user has none."""
    for path in ("/api/v1/events", "/api/v1/ingest"):
        assert ROUTES[("POST", path)].organisation is None


# --- creating them --------------------------------------------------------------------------------------------------


def test_staff_create_an_organisation_user_in_an_organisation_invoicing_knows(gateway):
    gateway.invoicing.answer("GetOrganisation", NotFound("no such organisation"))
    unknown = gateway.http.post("/api/v1/admin/users", headers=ADMIN, json={
        "email": "m@a.example", "name": "M", "role": "member", "organisation_id": "org_nope"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "organisation_id"
    assert gateway.users.rows == {}

    gateway.invoicing.replies["GetOrganisation"].clear()
    gateway.invoicing.answer("GetOrganisation",
                             ipb.GetOrganisationResponse(organisation=ipb.Organisation(id="org_a")))
    created = gateway.http.post("/api/v1/admin/users", headers=ADMIN, json={
        "email": "m@a.example", "name": "M", "role": "member", "organisation_id": "org_a"})
    assert created.status_code == 201, created.text
    assert created.json()["organisation_id"] == "org_a" and created.json()["role"] == "member"
    assert gateway.audit[-1]["action"] == "user.create:member"

    minted = gateway.http.post(f"/api/v1/admin/users/{created.json()['id']}/tokens", headers=ADMIN,
                               json={"name": "erp"}).json()["secret"]
    gateway.invoicing.answer("ListInvoices", ipb.ListInvoicesResponse())
    assert gateway.http.get("/api/v1/invoices", headers={"Authorization": f"Bearer {minted}"}).status_code == 200
    assert gateway.invoicing.requests["ListInvoices"][-1].organisation_id == "org_a"


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "member"}, "organisation_id"),
    ({"role": "owner", "organisation_id": "  "}, "organisation_id"),
    ({"role": "viewer", "organisation_id": "org_a"}, "organisation_id"),
    ({"role": "superuser"}, "role"),
])
def test_a_role_and_an_organisation_go_together(gateway, body, field):
    reply = gateway.http.post("/api/v1/admin/users", headers=ADMIN,
                              json={"email": "m@a.example", "name": "M", **body})
    assert reply.status_code == 400 and reply.json()["field"] == field, reply.text
    assert gateway.users.rows == {} and gateway.invoicing.requests == {}


def test_a_role_changes_within_its_kind(gateway):
    gateway.org_user("member", "org_a")
    gateway.staff("viewer")
    assert gateway.http.patch("/api/v1/admin/users/usr_0001", headers=ADMIN, json={"role": "owner"}).status_code == 200
    for user_id, role in (("usr_0001", "admin"), ("usr_0002", "member")):
        reply = gateway.http.patch(f"/api/v1/admin/users/{user_id}", headers=ADMIN, json={"role": role})
        assert reply.status_code == 400 and reply.json()["field"] == "role", (user_id, role)
