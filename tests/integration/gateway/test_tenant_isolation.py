"""Tenant isolation over the whole REST surface and every gRPC method (issue 13, item 3).

Two organisations, A and B, each with a project and its API key, a metric, events, a subscription, an issued
invoice, a webhook endpoint with a delivery, and (for B) an email message, a Razorpay order and a payment link,
in front of the real ingest, invoicing, metering, payments (Razorpay sandbox) and notification services. Then:

- every operation of the OpenAPI document that takes a project API key is called with A's key and B's ids in
  every path parameter (and B's values in every query parameter naming an id or a metric): no 2xx for anything
  of B's, the same status and body as for a made-up id of the same shape (no existence oracle), and none of B's
  ids or values anywhere in an answer; lists show A's data only;
- the same walk over the routes organisation users may call too (``ORG_READ``, ``ORG_PAY``, ``ORG_MANAGE``)
  with A's member's token, A's member's session (cookie and CSRF token) and A's owner's token: the same
  answers, and a member's on an owner's route 403 whether the id is B's or made up;
- every other non-public route (the admin API, the signed-in person's routes) answers A's key 401, and every
  staff route a viewer's or an operator's token lacks the permission for answers 403, as it does to A's member
  and owner (their roles grant no staff permission);
- every gRPC method of every service refuses a caller without the mesh credential (UNAUTHENTICATED), A's API key
  does not stand for it, and ingest's API-key methods put A's events in A's project whatever they name;
- and B's resources, read through the admin API before and after, did not change.

The operations and parameters come from the OpenAPI document and the permission table, so a new route is walked
without touching this file (and fails it when one of its path parameters has no B id to stand for).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from nats.js.errors import NotFoundError

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2
from billing.metering.v1 import metering_pb2
from billing.notification.v1 import notification_pb2
from billing.payments.v1 import payments_pb2
from billing_runtime import mesh
from billing_runtime.messaging import stream_name
from billing_runtime.service import Runtime
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.gateway.domain.access import Principal, Role
from services.gateway.entrypoints.http.permissions import ROUTES
from services.ingest.__main__ import ACCESS as INGEST_ACCESS
from services.invoicing.__main__ import ACCESS as INVOICING_ACCESS
from services.metering.__main__ import ACCESS as METERING_ACCESS
from services.notification.__main__ import ACCESS as NOTIFICATION_ACCESS
from services.notification.__main__ import DEFINITION as NOTIFICATION
from services.payments.__main__ import ACCESS as PAYMENTS_ACCESS
from tests.conftest import running_service
from tests.integration.gateway.billing_setup import SEPTEMBER, only_invoice, organisation, run_period
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually, new_project
from tests.integration.helpers import stored_events

API_KEY_ROUTES = {route for route, access in ROUTES.items() if access.api_key}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


# --- the services --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def notification(database_url, nats_url, invoicing, refused_address) -> AsyncIterator[Runtime]:
    prefix = f"notification-tenants-{secrets.token_hex(3)}"
    async with running_service(
        NOTIFICATION, database_url, nats_url, invoicing_address=invoicing.address,
        smtp_port=int(refused_address.rsplit(":", 1)[1]),  # mail goes nowhere; the message is made all the same
        worker_interval_seconds=0.1, webhooks_retry_schedule_seconds=[0.2, 0.3],
        webhooks_allow_private_addresses=True,  # the receiver is on 127.0.0.1
        consumer_durable_prefix=prefix,
    ) as runtime:
        # B's invoice must be seen by this consumer to become a message, so it exists before any is issued.
        await eventually(lambda: _consumer_exists(runtime, f"{prefix}-invoicing"),
                         what="notification's invoicing consumer")
        yield runtime


async def _consumer_exists(runtime: Runtime, durable: str) -> bool:
    try:
        await runtime.js.consumer_info(stream_name("invoicing"), durable)
    except NotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
async def gateway(database_url, nats_url, ingest, invoicing, metering, payments, notification) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=payments.address, notification_address=notification.address,
    ) as runtime:
        yield runtime.http_address


# --- the two organisations -----------------------------------------------------------------------------------


@dataclass
class Tenant:
    name: str
    organisation_id: str = ""
    project_id: str = ""
    key: str = ""
    email: str = ""
    metric_id: str = ""
    metric_code: str = ""
    plan_code: str = ""
    plan_id: str = ""
    plan_version_id: str = ""
    subscription_id: str = ""
    invoice: dict = field(default_factory=dict)
    endpoint_id: str = ""
    endpoint_url: str = ""
    delivery_id: str = ""
    message_id: str = ""
    order_id: str = ""
    link: dict = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)
    credit_note: dict = field(default_factory=dict)

    def values(self) -> dict[str, str]:
        """What of this tenant no other organisation's key may ever see: ids and values unique to it."""
        found = {
            "organisation_id": self.organisation_id, "project_id": self.project_id, "key": self.key,
            "email": self.email, "metric_id": self.metric_id, "metric_code": self.metric_code,
            "plan_code": self.plan_code, "plan_id": self.plan_id, "plan_version_id": self.plan_version_id,
            "subscription_id": self.subscription_id,
            "invoice_id": self.invoice.get("id", ""), "invoice_number": self.invoice.get("number", ""),
            "invoice_total": self.invoice.get("total", ""), "endpoint_id": self.endpoint_id,
            "endpoint_url": self.endpoint_url, "delivery_id": self.delivery_id, "message_id": self.message_id,
            "order_id": self.order_id, "payment_link_id": self.link.get("id", ""),
            "payment_link_url": self.link.get("short_url", "") or self.link.get("url", ""),
            **{f"event_id[{i}]": e for i, e in enumerate(self.event_ids)},
            "credit_note_id": self.credit_note.get("id", ""), "credit_note_number": self.credit_note.get("number", ""),
        }
        return {name: value for name, value in found.items() if value}


async def _tenant(name: str, base_fee: str, admin: httpx.AsyncClient, invoicing, ingest_stub, invoicing_stub,
                  receiver) -> Tenant:
    tenant = Tenant(name)
    tag = secrets.token_hex(4)
    tenant.email = f"billing-{tag}@tenant-{name.lower()}.example"
    tenant.organisation_id = await organisation(admin, invoicing, since=SEPTEMBER, name=f"Tenant {name} {tag}",
                                                billing_email=tenant.email)
    _, tenant.project_id, tenant.key = await new_project(invoicing_stub, ingest_stub, tenant.organisation_id)
    tenant.metric_code = f"calls_{name.lower()}_{tag}"
    metric = await admin.post("/api/v1/admin/metrics", json={
        "organisation_id": tenant.organisation_id, "code": tenant.metric_code, "name": "Calls", "aggregation": "sum"})
    assert metric.status_code == 201, metric.text
    tenant.metric_id = metric.json()["id"]
    tenant.plan_code = f"plan-{name.lower()}-{tag}"
    plan = await admin.post("/api/v1/admin/plans", json={
        "code": tenant.plan_code, "name": f"Plan {name}", "terms": {"currency": "INR", "base_fee": base_fee}})
    assert plan.status_code == 201, plan.text
    tenant.plan_id = plan.json()["id"]
    subscription = await admin.post("/api/v1/admin/subscriptions", json={
        "organisation_id": tenant.organisation_id, "plan_code": tenant.plan_code, "start_date": "2026-10-01"})
    assert subscription.status_code == 201, subscription.text
    tenant.subscription_id = subscription.json()["id"]
    tenant.plan_version_id = subscription.json()["plan_version_id"]

    # A webhook endpoint, made before the invoice so invoice.issued is delivered to it too, and a test delivery.
    tenant.endpoint_url = f"{receiver.url}/hooks/tenant-{name.lower()}-{tag}"
    endpoint = await admin.post(f"/api/v1/admin/organisations/{tenant.organisation_id}/webhook-endpoints",
                                json={"url": tenant.endpoint_url, "description": f"tenant {name} {tag}"})
    assert endpoint.status_code == 201, endpoint.text
    tenant.endpoint_id = endpoint.json()["id"]
    delivery = await admin.post(f"/api/v1/admin/webhook-endpoints/{tenant.endpoint_id}/test")
    assert delivery.status_code == 201, delivery.text
    tenant.delivery_id = delivery.json()["id"]

    # Events through the key (they land in the key's project).
    async with httpx.AsyncClient(base_url=str(admin.base_url), timeout=30,
                                 headers={"Authorization": f"Bearer {tenant.key}"}) as own:
        tenant.event_ids = [f"evt-{name.lower()}-{tag}-{i}" for i in range(2)]
        sent = await own.post("/api/v1/events", json=[
            {"metricName": tenant.metric_code, "metricValue": 7, "eventId": event_id} for event_id in tenant.event_ids])
        assert sent.status_code == 202 and sent.json()["accepted"] == 2, sent.text

    async def counted() -> list[dict]:
        usage = await admin.get("/api/v1/admin/usage", params={
            "organisation_id": tenant.organisation_id, "metric": tenant.metric_code, **_ALL_TIME})
        assert usage.status_code == 200, usage.text
        return usage.json()["rows"]

    await eventually(counted, lambda rows: [r["value"] for r in rows] == ["14"], what=f"{name}'s usage counted")

    run = await run_period(admin, tenant.organisation_id)
    assert run["invoiced"] == 1, run
    tenant.invoice = await only_invoice(admin, tenant.organisation_id)
    return tenant


async def _collectable(admin: httpx.AsyncClient, tenant: Tenant) -> None:
    """B's Razorpay order (once payments has the invoice), a payment link and the invoice's email message."""
    invoice_id = tenant.invoice["id"]

    async def checkout() -> httpx.Response:
        return await admin.get(f"/api/v1/admin/invoices/{invoice_id}/checkout")

    tenant.order_id = (await eventually(checkout, lambda r: r.status_code == 200, timeout=60,
                                        what="B's Razorpay order")).json()["order_id"]
    link = await admin.post(f"/api/v1/admin/invoices/{invoice_id}/payment-link")
    assert link.status_code == 201, link.text
    tenant.link = link.json()

    async def messages() -> list[dict]:
        listed = await admin.get("/api/v1/admin/messages", params={"organisation_id": tenant.organisation_id})
        return listed.json()["data"]

    tenant.message_id = (await eventually(messages, timeout=60, what="B's invoice message"))[0]["id"]


@dataclass
class World:
    gateway: str
    a: Tenant
    b: Tenant
    viewer: str
    operator: str
    admin: httpx.AsyncClient
    ingest: Runtime
    # A's organisation users: a member's token and signed-in session (cookie + CSRF token), an owner's token.
    member_token: str = ""
    member_session: dict[str, str] = field(default_factory=dict)
    owner_token: str = ""


@pytest.fixture(scope="module")
async def world(gateway, ingest, invoicing, ingest_stub, invoicing_stub, receiver) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=gateway, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as admin:
        a = await _tenant("A", "999", admin, invoicing, ingest_stub, invoicing_stub, receiver)
        b = await _tenant("B", "4321.77", admin, invoicing, ingest_stub, invoicing_stub, receiver)
        assert a.invoice["total"] != b.invoice["total"]
        await _collectable(admin, a)  # A's invoice has its own order, so B's order id is checked against it
        await _collectable(admin, b)
        for tenant in (a, b):  # a credit note of one minor unit each, left as credit
            made = await admin.post(f"/api/v1/admin/invoices/{tenant.invoice['id']}/credit-notes", json={
                "lines": [{"line_number": 1, "amount_minor": 1}], "reason_code": "goodwill",
                "reason": "tenant walk", "outcome": "credit"})
            assert made.status_code == 201, made.text
            tenant.credit_note = made.json()
        tokens = {}
        for role in ("viewer", "operator"):
            user = await admin.post("/api/v1/admin/users", json={
                "email": f"{role}-{secrets.token_hex(3)}@staff.example", "name": role.title(), "role": role})
            assert user.status_code == 201, user.text
            token = await admin.post(f"/api/v1/admin/users/{user.json()['id']}/tokens", json={"name": "walk"})
            assert token.status_code == 201, token.text
            tokens[role] = token.json()["secret"]
        world = World(gateway, a, b, tokens["viewer"], tokens["operator"], admin, ingest)
        await _organisation_users(world)
        yield world


async def _organisation_users(world: World) -> None:
    """A member of A (with a password, signed in, and a token) and an owner of A (a token)."""
    admin, tag = world.admin, secrets.token_hex(3)
    password = f"walk-{secrets.token_hex(8)}"
    tokens = {}
    for role in ("member", "owner"):
        user = await admin.post("/api/v1/admin/users", json={
            "email": f"{role}-{tag}@tenant-a.example", "name": role.title(), "role": role,
            "organisation_id": world.a.organisation_id, "password": password})
        assert user.status_code == 201 and user.json()["organisation_id"] == world.a.organisation_id, user.text
        token = await admin.post(f"/api/v1/admin/users/{user.json()['id']}/tokens", json={"name": "walk"})
        assert token.status_code == 201, token.text
        tokens[role] = token.json()["secret"]
    world.member_token, world.owner_token = tokens["member"], tokens["owner"]
    async with httpx.AsyncClient(base_url=world.gateway, timeout=30) as http:
        login = await http.post("/api/v1/auth/login", json={"email": f"member-{tag}@tenant-a.example",
                                                            "password": password})
    assert login.status_code == 200, login.text
    cookie = login.headers["set-cookie"].split(";", 1)[0]  # billing_session=...: Secure, so set by hand over http
    world.member_session = {"Cookie": cookie, "X-CSRF-Token": login.json()["csrf_token"]}


_ALL_TIME = {"from": "2026-06-01T00:00:00Z", "to": "2027-06-01T00:00:00Z"}


# --- B as the admin API shows it -----------------------------------------------------------------------------

# What changes by itself (retries of a mail that cannot be sent, a delivery's attempts), not by a request.
_VOLATILE = {"state", "attempts", "attempt_count", "last_error", "last_attempt_at", "next_attempt_at", "sent_at",
             "updated_at", "last_status_code", "delivered_at", "failed_at", "last_used_at", "error"}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def snapshot(world: World) -> dict[str, Any]:
    """B's resources through the admin API (what a leaked write would change)."""
    b, admin = world.b, world.admin
    org = {"organisation_id": b.organisation_id}
    invoice_id = b.invoice["id"]
    reads = {
        "organisation": (f"/api/v1/admin/organisations/{b.organisation_id}", {}),
        "projects": ("/api/v1/admin/projects", org),
        "api_keys": ("/api/v1/admin/api-keys", {"project_id": b.project_id}),
        "metrics": ("/api/v1/admin/metrics", {**org, "include_archived": "true"}),
        "subscriptions": ("/api/v1/admin/subscriptions", org),
        "invoices": ("/api/v1/admin/invoices", org),
        "invoice": (f"/api/v1/admin/invoices/{invoice_id}", {}),
        "invoice_payments": (f"/api/v1/admin/invoices/{invoice_id}/payments", {}),
        "payments": ("/api/v1/admin/payments", org),
        "endpoints": ("/api/v1/admin/webhook-endpoints", org),
        "endpoint": (f"/api/v1/admin/webhook-endpoints/{b.endpoint_id}", {}),
        "deliveries": ("/api/v1/admin/webhook-deliveries", org),
        "messages": ("/api/v1/admin/messages", org),
        "recipients": (f"/api/v1/admin/organisations/{b.organisation_id}/recipients", {}),
        "usage": ("/api/v1/admin/usage", {**org, "metric": b.metric_code, **_ALL_TIME}),
        "alert_rules": ("/api/v1/admin/alert-rules", {**org, "include_deleted": "true"}),
        "mandates": (f"/api/v1/admin/organisations/{b.organisation_id}/mandates", {"include_finished": "true"}),
    }
    found: dict[str, Any] = {}
    for name, (path, params) in reads.items():
        response = await admin.get(path, params=params)
        found[name] = (response.status_code, _stable(response.json()))
    found["events"] = (200, sorted(await stored_events_of(world, b.project_id)))
    return found


async def b_as_it_is(world: World) -> dict[str, Any]:
    """The snapshot before a walk: everything of B's is there to be compared."""
    found = await snapshot(world)
    assert all(status == 200 for status, _ in found.values()), found
    return found


async def stored_events_of(world: World, project_id: str) -> list[str]:
    return [event.event_id for event in await stored_events(world.ingest, project_id)]


# --- the walks -----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    operations: int = 0
    requests: int = 0
    leaks: list[str] = field(default_factory=list)

    def leak(self, what: str) -> None:
        self.leaks.append(what)


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, operation) for path, operations in document["paths"].items()
            for method, operation in operations.items() if method in HTTP_METHODS]


def _same_shape(value: str) -> str:
    """A made-up id of the same shape: the prefix and the time part kept, the last characters changed."""
    alphabet = sorted(set(value[-8:])) if len(set(value[-8:])) > 1 else list("0123456789abcdef")
    tail = "".join(secrets.choice(alphabet) for _ in range(4))
    while tail == value[-4:]:
        tail = "".join(secrets.choice(alphabet) for _ in range(4))
    return value[:-4] + tail


# Fields that say when the answer was made, not what it is about.
_NOW = {"request_id", "usage_as_of"}


def _normalised(response: httpx.Response, substituted: list[str]) -> Any:
    text = response.text
    for i, value in enumerate(substituted):
        text = text.replace(value, f"<{i}>")
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict):
        for moment in _NOW:
            body.pop(moment, None)
    return body


def _replace(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def _leaked(text: str, values: dict[str, str], sent: str) -> list[str]:
    """B's values in an answer, except those the request itself carried (an echo of the caller's input, which
    the same-shape comparison covers: it says nothing a made-up value would not)."""
    return [name for name, value in values.items() if value in text and value not in sent]


async def test_a_key_of_organisation_a_sees_and_changes_nothing_of_organisation_b(world):
    a, b = world.a, world.b
    document = (await world.admin.get("/openapi.json")).json()

    # Every path parameter a key route has, as B's id; a route with a parameter missing here fails the test.
    key_ids = {t.name: (await world.admin.get("/api/v1/admin/api-keys", params={"project_id": t.project_id})
                        ).json()["data"][0]["id"] for t in (a, b)}
    rule_ids = {}
    for t in (a, b):
        rule = await world.admin.post("/api/v1/admin/alert-rules", json={
            "organisation_id": t.organisation_id, "kind": "threshold", "name": f"{t.name}'s rule",
            "metric_code": t.metric_code, "basis": "absolute", "levels": ["1000000"]})
        assert rule.status_code == 201, rule.text
        rule_ids[t.name] = rule.json()["id"]
    mandate_ids = {t.name: await _mandate(world, t) for t in (a, b)}
    before = await b_as_it_is(world)
    path_ids = {"invoice_id": b.invoice["id"], "endpoint_id": b.endpoint_id, "credit_note_id": b.credit_note["id"],
                "api_key_id": key_ids[b.name], "rule_id": rule_ids[b.name], "mandate_id": mandate_ids[b.name]}
    a_ids = {"invoice_id": a.invoice["id"], "endpoint_id": a.endpoint_id, "credit_note_id": a.credit_note["id"],
             "api_key_id": key_ids[a.name], "rule_id": rule_ids[a.name], "mandate_id": mandate_ids[a.name]}
    # Query parameters that name something of an organisation's: B's. Others are left out.
    query_values = {"invoice_id": b.invoice["id"], "endpoint_id": b.endpoint_id, "metric": b.metric_code,
                    "metric_id": b.metric_id}
    not_naming = {"from", "to", "window", "time_zone", "group_by", "quantity", "feature", "page_size", "page_token",
                  "status", "period_key", "kind", "state", "forecast", "plan_code", "effective_date",
                  "include_finished"}
    a_url = f"{world.gateway.rstrip('/')}/hooks-never"
    bodies = {
        ("POST", "/api/v1/events"): [{"metricName": b.metric_code, "metricValue": 1,
                                      "eventId": f"by-a-{secrets.token_hex(3)}",
                                      "metadata": {"organisation_id": b.organisation_id, "project_id": b.project_id}}],
        ("POST", "/api/v1/ingest"): [{"metricName": b.metric_code, "metricValue": 1,
                                      "eventId": f"by-a-{secrets.token_hex(3)}",
                                      "metadata": {"organisation_id": b.organisation_id}}],
        ("POST", "/api/v1/pricing/quote"): {"currency": "INR", "quantity": "3",
                                            "charge": {"model": "per_unit", "unit_price": "2"}},
        ("POST", "/api/v1/invoices/{invoice_id}/checkout/verify"): {
            "razorpay_order_id": b.order_id, "razorpay_payment_id": "pay_TenantWalk0001",
            "razorpay_signature": "0" * 64},
        ("POST", "/api/v1/webhook-endpoints"): {"url": f"{a_url}/created-by-a", "description": "A's own"},
        ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): {"url": f"{a_url}/stolen", "description": "taken",
                                                             "enabled": False},
        ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): {"overlap_seconds": 0},
        # A's own account, naming B's things where a body can: B's project, B's organisation.
        ("POST", "/api/v1/subscription/change-plan"): {"plan_code": "plan-none"},
        ("POST", "/api/v1/api-keys"): {"project_id": b.project_id, "name": "by-a"},
        ("POST", "/api/v1/alert-rules"): {"organisation_id": b.organisation_id, "kind": "threshold",
                                          "metric_code": b.metric_code, "basis": "absolute", "levels": ["1"]},
        # A's own mandate (A has a live one already: 409 for its owner, 403 for its key and member).
        ("POST", "/api/v1/mandates"): {"method": "upi", "max_amount": "1000.00"},
    }

    tally = Tally()
    b_values = b.values()
    # A's key over every key route; A's organisation users over the routes they may call too.
    credentials: dict[str, tuple[dict[str, str], Role | None]] = {
        "A's key": ({"Authorization": f"Bearer {a.key}"}, None),
        "A's member's token": ({"Authorization": f"Bearer {world.member_token}"}, Role.MEMBER),
        "A's member's session": (world.member_session, Role.MEMBER),
        "A's owner's token": ({"Authorization": f"Bearer {world.owner_token}"}, Role.OWNER),
    }
    staff = {role: {"Authorization": f"Bearer {token}"} for role, token in
             (("viewer", world.viewer), ("operator", world.operator))}
    async with httpx.AsyncClient(base_url=world.gateway, timeout=30) as http:
        walked = set()
        for who, (own, role) in credentials.items():
            for method, path, operation in _operations(document):
                if (method, path) not in API_KEY_ROUTES:
                    continue
                access = ROUTES[(method, path)]
                if role is not None and access.organisation is None:
                    continue  # an organisation user's credential is walked over the routes it may call
                # A member on an owner's route: refused (403) whatever the ids, B's or made-up ones.
                denied = role is not None and not _org_principal(role).may(access.organisation)
                if role is None:
                    walked.add((method, path))
                tally.operations += 1
                parameters = operation.get("parameters", [])
                path_names = [p["name"] for p in parameters if p["in"] == "path"]
                missing = [name for name in path_names if name not in path_ids]
                assert not missing, f"{method} {path}: no B id stands for path parameter(s) {missing}; add them"
                for p in parameters:
                    if p["in"] == "query" and p["name"] not in query_values and p["name"] not in not_naming:
                        raise AssertionError(f"{method} {path}: does query parameter {p['name']!r} name something "
                                             "of an organisation's? map it to B's value or list it as not naming one")
                has_body = "requestBody" in operation
                if has_body and operation["requestBody"].get("required") and (method, path) not in bodies:
                    raise AssertionError(f"{method} {path}: give it a well-formed body in `bodies`")
                body = bodies.get((method, path))
                query = {p["name"]: query_values[p["name"]] for p in parameters
                         if p["in"] == "query" and p["name"] in query_values}

                async def send(ids: dict[str, str], params: dict[str, str], headers: dict[str, str],
                               *, method=method, path=path, body=body, has_body=has_body) -> tuple[httpx.Response, str]:
                    url = path
                    for name, value in ids.items():
                        url = url.replace("{" + name + "}", value)
                    kwargs: dict[str, Any] = {"params": params, "headers": headers}
                    if has_body and body is not None:
                        kwargs["json"] = body
                    response = await http.request(method, url, **kwargs)
                    tally.requests += 1
                    return response, f"{url} {json.dumps(params)} {json.dumps(body)}"

                b_ids = {name: path_ids[name] for name in path_names}
                response, sent = await send(b_ids, query, own)
                for name in _leaked(response.text, b_values, sent):
                    tally.leak(f"{who}: {method} {path} with B's ids: B's {name} in the answer")
                expected = 403 if denied else 404
                if denied and response.status_code != 403:
                    tally.leak(f"{who}: {method} {path} answered {response.status_code}, not 403")
                if path_names:
                    if response.is_success:
                        tally.leak(f"{who}: {method} {path} with B's ids answered {response.status_code}: "
                                   f"{response.text[:200]}")
                    made_up = {name: _same_shape(value) for name, value in b_ids.items()}
                    other, _ = await send(made_up, query, own)
                    if other.status_code != response.status_code or (
                            _normalised(other, list(made_up.values())) != _normalised(response, list(b_ids.values()))):
                        tally.leak(f"{who}: {method} {path}: B's id answers {response.status_code} "
                                   f"{response.text[:200]}, a made-up one {other.status_code} {other.text[:200]} "
                                   "(an existence oracle)")
                    if response.status_code != expected:
                        tally.leak(f"{who}: {method} {path} with B's ids answered {response.status_code}, "
                                   f"not {expected}")
                # A's own path ids with B's values in the query (one at a time: each alone must tell nothing) or the
                # body (B's order id to verify A's checkout): answered as made-up values of the same shape are.
                own_ids = {name: a_ids[name] for name in path_names}
                probes = [({name: value}, None) for name, value in query.items()]
                b_in_body = [value for value in b_values.values() if body is not None and value in json.dumps(body)]
                if path_names and b_in_body:
                    probes.append((query, b_in_body))
                for params, in_body in probes:
                    got, got_sent = await send(own_ids, params, own)
                    replaced = {value: _same_shape(value) for value in [*params.values(), *(in_body or [])]}
                    made_up_body = json.loads(_replace(json.dumps(body), replaced)) if in_body else body
                    other, _ = await send(own_ids, {k: replaced[v] for k, v in params.items()}, own,
                                          body=made_up_body)
                    if other.status_code != got.status_code or (
                            _normalised(other, list(replaced.values())) != _normalised(got, list(replaced))):
                        tally.leak(f"{who}: {method} {path} with B's {sorted(params) or 'body values'}: "
                                   f"{got.status_code} "
                                   f"{got.text[:300]}; made-up ones {other.status_code} {other.text[:300]}")
                    for name in _leaked(got.text, b_values, got_sent):
                        tally.leak(f"{who}: {method} {path} with B's {sorted(params) or 'body values'}: B's {name} "
                                   "in the answer")
                if query or has_body:  # the plain call too (A's own view), e.g. the lists without filters
                    plain, plain_sent = await send(b_ids, {}, own)
                    for name in _leaked(plain.text, b_values, plain_sent):
                        tally.leak(f"{who}: {method} {path}: B's {name} in A's own answer")
                # A staff credential is no API key: it opens none of these routes to B's data either.
                for staff_role, headers in (staff.items() if role is None else ()):
                    answer, staff_sent = await send(b_ids, query, headers)
                    if ROUTES[(method, path)].permission is None and answer.status_code != 401:
                        tally.leak(f"{method} {path} with a {staff_role} token answered {answer.status_code}")
                    if path_names and answer.is_success:
                        tally.leak(f"{method} {path} with a {staff_role} token and B's ids answered "
                                   f"{answer.status_code}")

        assert walked == API_KEY_ROUTES, f"key routes missing from the OpenAPI document: {API_KEY_ROUTES - walked}"

        # The lists show A's own data (so the absence of B's above is not that of an empty answer).
        for who, (own, role) in credentials.items():
            for path, shown in (("/api/v1/invoices", a.invoice["id"]), ("/api/v1/webhook-endpoints", a.endpoint_id),
                                ("/api/v1/webhook-deliveries", a.delivery_id)):
                listed = await http.get(path, headers=own)
                tally.requests += 1
                assert listed.status_code == 200 and shown in listed.text, (who, path, listed.text)
            usage = await http.get("/api/v1/usage", headers=own,
                                   params={"metric": a.metric_code, "from": "2026-01-01"})
            tally.requests += 1
            assert usage.status_code == 200 and usage.json()["organisation_id"] == a.organisation_id, usage.text
            # A key sees its project's usage; an organisation user the organisation's (every project).
            assert usage.json()["project_id"] == ("" if role is not None else a.project_id), (who, usage.text)

    after = await snapshot(world)
    changed = sorted(name for name in before if before[name] != after[name])
    print(f"\nkey walk: {tally.operations} operations, {tally.requests} requests, {len(tally.leaks)} leaks, "
          f"B's resources changed: {changed}")
    print("\n".join(tally.leaks))
    assert tally.leaks == []
    assert after == before
    # What A's key sent (events naming B in their metadata) landed in A's project, none in B's.
    assert set(await stored_events_of(world, b.project_id)) == set(b.event_ids)


async def _mandate(world: World, tenant: Tenant) -> str:
    """The tenant's live mandate (made by an operator, waiting for its authorisation at the sandbox's Checkout)."""
    made = await world.admin.post(f"/api/v1/admin/organisations/{tenant.organisation_id}/mandates",
                                  json={"method": "upi", "max_amount": "5000.00",
                                        "idempotency_key": f"walk-{tenant.organisation_id}"})
    assert made.status_code in (200, 201), made.text
    return made.json()["id"]


def _org_principal(role: Role) -> Principal:
    return Principal(actor="walk", role=role, organisation_id="org_walk")


async def _b_ids(world: World) -> dict[str, str]:
    """B's id for every path parameter of the admin API that names something of B's."""
    b, admin = world.b, world.admin
    keys = (await admin.get("/api/v1/admin/api-keys", params={"project_id": b.project_id})).json()["data"]
    payments = (await admin.get(f"/api/v1/admin/invoices/{b.invoice['id']}/payments")).json()
    return {
        "organisation_id": b.organisation_id, "project_id": b.project_id, "api_key_id": keys[0]["id"],
        "metric_id": b.metric_id, "plan_id": b.plan_id, "plan_version_id": b.plan_version_id,
        "subscription_id": b.subscription_id, "invoice_id": b.invoice["id"],
        "endpoint_id": b.endpoint_id, "delivery_id": b.delivery_id, "message_id": b.message_id,
        "payment_id": next(iter(p["id"] for p in payments.get("payments", [])), "pay_none"),
        "feature": "sso", "sequence": "1", "user_id": "usr_none", "token_id": "tok_none", "rule_id": "alr_none",
        "run_id": "rec_none", "invoice_run_id": "run_none", "discrepancy_id": "dis_none",
        "review_item_id": "rev_none", "reconciliation_id": "urc_none", "coupon_id": "cpn_none",
        "coupon_redemption_id": "cpr_none", "plan_code": "plan-none", "grant_id": "crg_none",
        "credit_note_id": b.credit_note["id"], "mandate_id": "mdt_none",
        "document_id": b.invoice["id"],  # an e-invoice registration is keyed by its invoice
    }


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        assert name in ids, f"{path}: no id stands for path parameter {name!r}; add it to _b_ids"
        return ids[name]

    return re.sub(r"{([^}]+)}", one, path)


async def test_staff_routes_refuse_a_project_key_and_roles_without_the_permission(world):
    """Every non-public route that is not a key route answers A's key 401; every staff route a viewer's or an
    operator's token lacks the permission for answers 403 permission_denied; none of them changes anything."""
    document = (await world.admin.get("/openapi.json")).json()
    ids = await _b_ids(world)
    before = await b_as_it_is(world)
    audit_before = (await world.admin.get("/api/v1/admin/audit-log", params={"limit": 5})).json()
    roles = {"viewer": (Role.VIEWER, world.viewer), "operator": (Role.OPERATOR, world.operator),
             "A's member": (Role.MEMBER, world.member_token), "A's owner": (Role.OWNER, world.owner_token)}
    operations = requests = refused_by_role = 0
    wrong: list[str] = []
    async with httpx.AsyncClient(base_url=world.gateway, timeout=30) as http:
        for method, path, operation in _operations(document):
            access = ROUTES.get((method, path))
            if access is None or access.public or access.api_key:
                continue  # public routes, the key routes (walked above) and the document itself
            operations += 1
            url = _fill(path, ids)
            # A well-formed JSON body where the route takes one: the refusal must not hang on its content.
            body = {"json": {}} if "requestBody" in operation else {}
            answer = await http.request(method, url, headers={"Authorization": f"Bearer {world.a.key}"}, **body)
            requests += 1
            if answer.status_code != 401:
                wrong.append(f"{method} {path} with A's key: {answer.status_code} {answer.text[:200]}")
            for b_value in world.b.values().values():
                if b_value in answer.text and b_value not in url:
                    wrong.append(f"{method} {path} with A's key shows {b_value}")
            if access.permission is None:
                continue  # the signed-in person's own routes: a bearer token is no session
            for role_name, (role, token) in roles.items():
                principal = Principal(actor="walk", role=role) if role.staff else _org_principal(role)
                if principal.may(access.permission):
                    continue  # granted: not sent (it would act)
                answer = await http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **body)
                requests += 1
                refused_by_role += 1
                expected = f"the {role.value} role does not grant '{access.permission.value}'"
                if answer.status_code != 403 or answer.json().get("detail") != expected:
                    wrong.append(f"{method} {path} as {role_name}: {answer.status_code} {answer.text[:200]}")

        # When is the role checked: before the route's own validation of the body (a body of the wrong shape is
        # still 403), after the edge's parsing and input policy (a body that is not JSON at all is 400 first).
        viewer = {"Authorization": f"Bearer {world.viewer}"}
        wrong_shape = await http.post("/api/v1/admin/metrics", headers=viewer, json={"code": 5})
        assert wrong_shape.status_code == 403, wrong_shape.text
        not_json = await http.post("/api/v1/admin/metrics", headers={**viewer, "Content-Type": "application/json"},
                                   content=b"{")
        assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_argument", not_json.text
        nul = await http.post("/api/v1/admin/metrics", headers=viewer, json={"code": "a\u0000"})
        assert nul.status_code == 400, nul.text
        requests += 3

    assert await snapshot(world) == before
    assert (await world.admin.get("/api/v1/admin/audit-log", params={"limit": 5})).json() == audit_before
    print(f"\nstaff walk: {operations} operations, {requests} requests ({refused_by_role} refused by role), "
          f"{len(wrong)} wrong")
    assert wrong == []


# --- gRPC ----------------------------------------------------------------------------------------------------

_PB2 = {"ingest": ingest_pb2, "invoicing": invoicing_pb2, "metering": metering_pb2, "payments": payments_pb2,
        "notification": notification_pb2}
_ACCESS = {"ingest": INGEST_ACCESS, "invoicing": INVOICING_ACCESS, "metering": METERING_ACCESS,
           "payments": PAYMENTS_ACCESS, "notification": NOTIFICATION_ACCESS}


async def _call(
    channel: grpc.aio.Channel, path: str, method, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """The status and details of one call of ``path`` with an empty request (raw bytes, whatever the method's
    types)."""
    request = b""
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(path)(iter([request]), metadata=metadata, timeout=10)
            async for _ in call:
                pass
        elif method.client_streaming:
            await channel.stream_unary(path)(iter([request]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            async for _ in channel.unary_stream(path)(request, metadata=metadata, timeout=10):
                pass
        else:
            await channel.unary_unary(path)(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def test_every_grpc_method_refuses_callers_outside_the_mesh_and_a_key_stays_in_its_project(
    world, ingest, invoicing, metering, payments, notification
):
    runtimes = {"ingest": ingest, "invoicing": invoicing, "metering": metering, "payments": payments,
                "notification": notification}
    a, b = world.a, world.b
    key = (("authorization", f"Bearer {a.key}"),)
    forged = (*key, ("x-billing-mesh", f"gateway:{a.key}"), ("x-billing-actor-organisation", b.organisation_id))
    methods = calls = 0
    wrong: list[str] = []
    for name, pb2 in _PB2.items():
        assert pb2.DESCRIPTOR.services_by_name, name
        async with grpc.aio.insecure_channel(runtimes[name].address) as channel:
            for service in pb2.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    path = f"/{service.full_name}/{method.name}"
                    methods += 1
                    assert path in _ACCESS[name], f"{path} has no entry in {name}'s ACCESS table"
                    api_key_method = _ACCESS[name][path] is mesh.API_KEY
                    # Refused by the mesh's interceptor (its words, so not a servicer's refusal of an empty
                    # request): nothing, A's key, and A's key presented as a mesh token. The API-key methods
                    # refuse a call without a key themselves; a key is what they take ((c) below).
                    cases = (("no credential", (), mesh.NO_CREDENTIAL), ("A's key", key, mesh.NO_CREDENTIAL),
                             ("A's key as mesh", forged, f"{mesh.MESH_HEADER} is not valid"))
                    for label, metadata, refusal in cases:
                        if api_key_method:
                            if label != "no credential":
                                continue
                            refusal = "no API key: send 'authorization: Bearer <key>' (or 'x-api-key') metadata"
                        code, details = await _call(channel, path, method, metadata)
                        calls += 1
                        if (code, details) != (grpc.StatusCode.UNAUTHENTICATED, refusal):
                            wrong.append(f"{path} with {label}: {code.name} {details}")

    # The only ways in without the mesh: ingest's two API-key methods, and health (documented as public).
    open_methods = {path: access for table in _ACCESS.values() for path, access in table.items()
                    if isinstance(access, mesh.Open)}
    assert open_methods == {"/billing.ingest.v1.IngestService/IngestEvents": mesh.API_KEY,
                            "/billing.ingest.v1.IngestService/StreamEvents": mesh.API_KEY}, open_methods
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        health = await channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
        calls += 1
    assert health == b"\x08\x01"  # SERVING

    # (c) ingest's API-key methods: whatever the events and the metadata name, they land in A's project.
    async with grpc.aio.insecure_channel(ingest.address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        claims = (("x-billing-actor", f"project:{b.project_id}"), ("x-billing-actor-organisation", b.organisation_id),
                  ("x-billing-actor-role", "admin"))
        event_ids = [f"grpc-by-a-{secrets.token_hex(3)}" for _ in range(2)]

        def event(event_id: str) -> ingest_pb2.Event:
            return ingest_pb2.Event(event_id=event_id, metric=b.metric_code, value="5", dimensions={
                "organisation_id": b.organisation_id, "project_id": b.project_id})

        reply = await stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=[event(event_ids[0])]),
                                        metadata=key + claims)
        calls += 1

        async def batches():
            yield ingest_pb2.StreamEventsRequest(sequence=1, events=[event(event_ids[1])])

        acks = [ack async for ack in stub.StreamEvents(batches(), metadata=key + claims)]
        calls += 1
    outcomes = [reply.outcome, *(ack.outcome for ack in acks)]
    assert all(o.accepted_count == 1 for o in outcomes), outcomes
    mine = set(await stored_events_of(world, a.project_id))
    assert set(event_ids) <= mine
    assert set(await stored_events_of(world, b.project_id)) == set(b.event_ids)
    print(f"\ngrpc walk: {methods} methods, {calls} calls, {len(wrong)} wrong")
    assert wrong == []


def test_placeholder_ids_are_of_the_same_shape():
    value = "inv_01JD8ZQ7XKQ3V9M2B5N6P7R8S9"
    other = _same_shape(value)
    assert other != value and len(other) == len(value) and other[:-4] == value[:-4]
    assert re.fullmatch(r"inv_[0-9A-Z]+", other)
