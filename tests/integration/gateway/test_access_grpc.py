"""The gateway's gRPC AccessService against the real gateway, its PostgreSQL schema and invoicing, driven with a
plain ``grpc.aio`` channel as an operator's tool would (no mesh credential): users and tokens managed with the
REST API's rules, each call admitted by its staff token from the one permission table (no token:
UNAUTHENTICATED; a role without the permission: PERMISSION_DENIED, and nothing changes), every write in the audit
log with its actor, role, request id and the peer's address, and the staff write limit shared with REST."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from billing.gateway.v1 import access_pb2 as pb
from billing.gateway.v1 import access_pb2_grpc
from billing_runtime.error_mapping import from_grpc_error
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.gateway.domain.access import Role
from services.gateway.entrypoints.http.permissions import METHODS
from tests.conftest import running_service
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, new_project
from tests.integration.helpers import organisation_request

SERVICE = pb.DESCRIPTOR.services_by_name["AccessService"]
Metadata = tuple[tuple[str, str], ...]


def bearer(secret: str) -> Metadata:
    return (("authorization", f"Bearer {secret}"),)


BOOTSTRAP = bearer(GATEWAY_ADMIN_TOKEN)


def email(label: str) -> str:
    return f"grpc-{label}-{secrets.token_hex(4)}@example.com"


@pytest.fixture
async def access(gateway_runtime) -> AsyncIterator[access_pb2_grpc.AccessServiceStub]:
    async with grpc.aio.insecure_channel(gateway_runtime.address) as channel:
        yield access_pb2_grpc.AccessServiceStub(channel)


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def staff_member(access, role: str, metadata: Metadata = BOOTSTRAP) -> tuple[pb.User, str]:
    """A new user of ``role`` and a token of theirs (made by ``metadata``'s credential)."""
    user = (await access.CreateUser(pb.CreateUserRequest(email=email(role), name=role.title(),
                                                         role=pb.Role.Value(f"ROLE_{role.upper()}")),
                                    metadata=metadata)).user
    minted = await access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="grpc"), metadata=metadata)
    return user, minted.secret


async def all_users(access) -> list[pb.User]:
    users, page_token = [], ""
    while True:
        page = await access.ListUsers(pb.ListUsersRequest(page_size=500, page_token=page_token), metadata=BOOTSTRAP)
        users += page.users
        if not (page_token := page.next_page_token):
            return users


async def audit_of(admin_http: httpx.AsyncClient, resource_id: str) -> list[dict]:
    answer = await admin_http.get("/api/v1/admin/audit-log", params={"resource_id": resource_id, "limit": 500})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_an_admin_manages_users_and_tokens_over_grpc_and_each_write_is_audited(access, admin_http):
    admin, admin_secret = await staff_member(access, "admin")
    as_admin = bearer(admin_secret)
    me = await access.WhoAmI(pb.WhoAmIRequest(), metadata=as_admin)
    assert (me.actor, me.role, me.credential) == (f"user:{admin.id}", pb.ROLE_ADMIN, f"token:{admin_secret[:11]}")
    assert list(me.permissions) == ["configure", "manage_users", "operate", "read"]

    request_id = f"grpc-test-{secrets.token_hex(4)}"
    created = await access.CreateUser(
        pb.CreateUserRequest(email=email("Viewer").upper(), name="Vee", role=pb.ROLE_VIEWER),
        metadata=(*as_admin, ("x-request-id", request_id)))
    user = created.user
    assert user.email == user.email.lower() and user.role == pb.ROLE_VIEWER and not user.HasField("disable_time")
    taken = await refusal(access.CreateUser(pb.CreateUserRequest(email=user.email, name="Again", role=pb.ROLE_ADMIN),
                                            metadata=as_admin))
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await access.GetUser(pb.GetUserRequest(user_id=user.id), metadata=as_admin)).user == user
    # The REST API sees the same user: one store, one set of rules.
    assert (await admin_http.get(f"/api/v1/admin/users/{user.id}")).json()["role"] == "viewer"

    assert user.id in {u.id for u in await all_users(access)}

    minted = await access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="laptop"), metadata=as_admin)
    assert minted.secret.startswith("bt_") and minted.token.prefix == minted.secret[:11]
    assert minted.token.state == pb.TOKEN_STATE_ACTIVE and not minted.token.HasField("expire_time")
    as_user = bearer(minted.secret)
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=as_user)).role == pb.ROLE_VIEWER

    promoted = await access.UpdateUser(pb.UpdateUserRequest(user_id=user.id, role=pb.ROLE_OPERATOR),
                                       metadata=as_admin)
    assert (promoted.user.role, promoted.user.name) == (pb.ROLE_OPERATOR, "Vee"), "unset fields are left alone"
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=as_user)).role == pb.ROLE_OPERATOR
    across = await refusal(access.UpdateUser(pb.UpdateUserRequest(user_id=user.id, role=pb.ROLE_MEMBER),
                                             metadata=as_admin))
    assert across.code() == grpc.StatusCode.INVALID_ARGUMENT and from_grpc_error(across).field == "role"

    rotated = await access.RotateToken(pb.RotateTokenRequest(token_id=minted.token.id, overlap_seconds=600),
                                       metadata=as_admin)
    assert rotated.previous.id == minted.token.id and rotated.previous.HasField("expire_time")
    assert rotated.token.name == "laptop" and rotated.secret.startswith("bt_")
    as_successor = bearer(rotated.secret)
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=as_user)).actor == f"user:{user.id}", "the overlap"
    tokens = (await access.ListTokens(pb.ListTokensRequest(user_id=user.id), metadata=as_admin)).tokens
    assert [t.id for t in tokens] == [minted.token.id, rotated.token.id]
    assert tokens[0].HasField("last_use_time"), "the token's use is recorded"

    revoked = await access.RevokeToken(pb.RevokeTokenRequest(token_id=minted.token.id), metadata=as_admin)
    assert revoked.token.state == pb.TOKEN_STATE_REVOKED
    assert (await refusal(access.WhoAmI(pb.WhoAmIRequest(), metadata=as_user))).code() == \
        grpc.StatusCode.UNAUTHENTICATED
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=as_successor)).role == pb.ROLE_OPERATOR

    disabled = await access.UpdateUser(pb.UpdateUserRequest(user_id=user.id, disabled=True), metadata=as_admin)
    assert disabled.user.HasField("disable_time")
    refused = await refusal(access.WhoAmI(pb.WhoAmIRequest(), metadata=as_successor))
    assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAUTHENTICATED, "token is not valid")
    assert (await admin_http.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {rotated.secret}"})
            ).status_code == 401, "REST refuses it too"
    no_token = await refusal(access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="x"), metadata=as_admin))
    assert no_token.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The REST API's audit entries, with the gRPC caller's actor, role and address.
    entries = await audit_of(admin_http, user.id) + await audit_of(admin_http, minted.token.id)
    assert {(e["actor"], e["role"], e["source_ip"]) for e in entries} == {(f"user:{admin.id}", "admin", "127.0.0.1")}
    assert sorted(e["action"] for e in entries) == sorted([
        "user.create:viewer", "staff_token.create", "user.role:viewer->operator", "staff_token.rotate",
        "staff_token.revoke", "user.disable"])
    created_entry = next(e for e in entries if e["action"] == "user.create:viewer")
    assert created_entry["request_id"] == request_id
    role_change = next(e for e in entries if e["action"].startswith("user.role:"))
    assert (role_change["before"], role_change["after"]) == ({"role": "viewer"}, {"role": "operator"})


async def test_an_organisation_user_belongs_to_an_organisation_invoicing_knows(access, invoicing_stub):
    unknown = await refusal(access.CreateUser(pb.CreateUserRequest(
        email=email("member"), name="M", role=pb.ROLE_MEMBER, organisation_id="org_nosuch"), metadata=BOOTSTRAP))
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT and from_grpc_error(unknown).field == "organisation_id"
    organisation = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation
    member = (await access.CreateUser(pb.CreateUserRequest(
        email=email("member"), name="M", role=pb.ROLE_MEMBER, organisation_id=organisation.id),
        metadata=BOOTSTRAP)).user
    assert (member.role, member.organisation_id) == (pb.ROLE_MEMBER, organisation.id)
    token = (await access.CreateToken(pb.CreateTokenRequest(user_id=member.id, name="m"), metadata=BOOTSTRAP)).secret
    # An organisation user's role grants no staff permission: not even WhoAmI (REST's /admin/me needs read).
    denied = await refusal(access.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(token)))
    assert (denied.code(), denied.details()) == (grpc.StatusCode.PERMISSION_DENIED,
                                                  "the member role does not grant 'read'")


def empty_call(channel: grpc.aio.Channel, method) -> grpc.aio.UnaryUnaryMultiCallable:
    response = message_factory.GetMessageClass(method.output_type)
    return channel.unary_unary(f"/{SERVICE.full_name}/{method.name}",
                               request_serializer=lambda message: message.SerializeToString(),
                               response_deserializer=response.FromString)


async def test_every_method_refuses_a_missing_or_bad_credential_and_a_role_without_its_permission(
        access, gateway_runtime, ingest_stub, invoicing_stub, admin_http):
    """Walks the descriptor, so a method added later is walked too: no credential, a project's API key, a
    made-up token and a garbage header are UNAUTHENTICATED; a viewer, an operator and an organisation's member
    and owner are PERMISSION_DENIED wherever their role lacks the method's permission (organisation roles grant
    no staff permission at all), before the request is looked at."""
    organisation_id, _, api_key = await new_project(invoicing_stub, ingest_stub)
    roles = {role: (await staff_member(access, role))[1] for role in ("viewer", "operator")}
    for role in ("member", "owner"):
        user = (await access.CreateUser(pb.CreateUserRequest(
            email=email(role), name=role, role=pb.Role.Value(f"ROLE_{role.upper()}"), organisation_id=organisation_id),
            metadata=BOOTSTRAP)).user
        roles[role] = (await access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="t"), metadata=BOOTSTRAP)
                       ).secret
    audit_before = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 1})).json()
    unauthenticated = {"no credential": (), "a project key": bearer(api_key),
                       "a made-up token": bearer("bt_AAAAAAAA_" + "A" * 32),
                       "not a bearer": (("authorization", f"Basic {GATEWAY_ADMIN_TOKEN}"),)}
    wrong, calls = [], 0
    async with grpc.aio.insecure_channel(gateway_runtime.address) as channel:
        for method in SERVICE.methods:
            path = f"/{SERVICE.full_name}/{method.name}"
            assert path in METHODS, f"{path} has no permission entry"
            call = empty_call(channel, method)
            request = message_factory.GetMessageClass(method.input_type)()
            for label, metadata in unauthenticated.items():
                error = await refusal(call(request, metadata=metadata))
                calls += 1
                if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                    wrong.append(f"{method.name} with {label}: {error.code().name} {error.details()}")
            permission = METHODS[path].permission
            for role, secret in roles.items():
                if Role(role).may(permission):
                    continue
                error = await refusal(call(request, metadata=bearer(secret)))
                calls += 1
                expected = (grpc.StatusCode.PERMISSION_DENIED, f"the {role} role does not grant '{permission.value}'")
                if (error.code(), error.details()) != expected:
                    wrong.append(f"{method.name} as {role}: {error.code().name} {error.details()}")
    assert wrong == [], wrong
    assert calls == len(SERVICE.methods) * 4 + 2 * (len(SERVICE.methods) - 1) + 2 * len(SERVICE.methods)
    assert (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 1})).json() == audit_before


async def test_a_viewer_is_denied_every_write_and_nothing_changes(access, admin_http):
    target, target_secret = await staff_member(access, "operator")
    target_token = (await access.ListTokens(pb.ListTokensRequest(user_id=target.id), metadata=BOOTSTRAP)).tokens[0]
    viewer, viewer_secret = await staff_member(access, "viewer")
    as_viewer = bearer(viewer_secret)
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=as_viewer)).role == pb.ROLE_VIEWER  # reads: allowed

    new_email = email("never")
    writes = [
        access.CreateUser(pb.CreateUserRequest(email=new_email, name="N", role=pb.ROLE_ADMIN), metadata=as_viewer),
        access.UpdateUser(pb.UpdateUserRequest(user_id=viewer.id, role=pb.ROLE_ADMIN), metadata=as_viewer),
        access.UpdateUser(pb.UpdateUserRequest(user_id=target.id, disabled=True), metadata=as_viewer),
        access.CreateToken(pb.CreateTokenRequest(user_id=viewer.id, name="more"), metadata=as_viewer),
        access.RotateToken(pb.RotateTokenRequest(token_id=target_token.id), metadata=as_viewer),
        access.RevokeToken(pb.RevokeTokenRequest(token_id=target_token.id), metadata=as_viewer),
    ]
    for write in writes:
        error = await refusal(write)
        assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED,
                                                    "the viewer role does not grant 'manage_users'")

    assert new_email not in {u.email for u in await all_users(access)}
    assert (await admin_http.get(f"/api/v1/admin/users/{viewer.id}")).json()["role"] == "viewer"
    assert (await admin_http.get(f"/api/v1/admin/users/{target.id}")).json()["disabled_at"] is None
    tokens = (await admin_http.get(f"/api/v1/admin/users/{target.id}/tokens")).json()["data"]
    assert [(t["id"], t["state"], t["expires_at"]) for t in tokens] == [(target_token.id, "active", None)]
    assert len((await admin_http.get(f"/api/v1/admin/users/{viewer.id}/tokens")).json()["data"]) == 1
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(target_secret))).role == pb.ROLE_OPERATOR
    log = (await admin_http.get("/api/v1/admin/audit-log", params={"actor": f"user:{viewer.id}"})).json()
    assert log == []


async def test_a_token_limited_to_ranges_is_judged_by_the_grpc_peer(access):
    user, _ = await staff_member(access, "viewer")
    elsewhere = await access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="vpn",
                                                               allowed_cidrs=["10.20.0.0/16"]), metadata=BOOTSTRAP)
    here = await access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="here", allowed_cidrs=["127.0.0.1"]),
                                    metadata=BOOTSTRAP)
    assert list(here.token.allowed_cidrs) == ["127.0.0.1/32"]
    denied = await refusal(access.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(elsewhere.secret)))
    assert (denied.code(), denied.details()) == (grpc.StatusCode.PERMISSION_DENIED,
                                                  "this token is not allowed from this address")
    # A forwarded address is believed only from a trusted proxy (none here): it cannot open the token.
    forged = (*bearer(elsewhere.secret), ("x-forwarded-for", "10.20.1.1"))
    assert (await refusal(access.WhoAmI(pb.WhoAmIRequest(), metadata=forged))).code() == \
        grpc.StatusCode.PERMISSION_DENIED
    assert (await access.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(here.secret))).role == pb.ROLE_VIEWER

    bad = await refusal(access.CreateToken(pb.CreateTokenRequest(user_id=user.id, name="x",
                                                                 allowed_cidrs=["10.0.0.0/8", "nope"]),
                                           metadata=BOOTSTRAP))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and from_grpc_error(bad).field == "allowed_cidrs[1]"
    past = await refusal(access.CreateToken(
        pb.CreateTokenRequest(user_id=user.id, name="x", expire_time=Timestamp(seconds=1)), metadata=BOOTSTRAP))
    assert past.code() == grpc.StatusCode.INVALID_ARGUMENT and from_grpc_error(past).field == "expire_time"


LIMIT = 3


@pytest.fixture
async def limited_gateway(database_url, nats_url, ingest, invoicing, metering, refused_address):
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=refused_address, notification_address=refused_address,
        admin_write_limit_per_minute=LIMIT,
    ) as runtime:
        yield runtime


async def test_grpc_and_rest_writes_share_the_credentials_write_limit(access, limited_gateway):
    """One budget per credential, whichever API a write comes through: over it, RESOURCE_EXHAUSTED with
    retry-after in the trailing metadata, and the refused write did nothing; reads are not limited."""
    _, secret = await staff_member(access, "admin")  # on the session's gateway (no limit): a fresh budget
    as_admin = bearer(secret)
    run = secrets.token_hex(3)
    async with grpc.aio.insecure_channel(limited_gateway.address) as channel, \
            httpx.AsyncClient(base_url=limited_gateway.http_address, timeout=30,
                              headers={"Authorization": f"Bearer {secret}"}) as rest:
        limited = access_pb2_grpc.AccessServiceStub(channel)
        first = await rest.post("/api/v1/admin/users", json={"email": f"lim-{run}-0@example.com", "name": "L",
                                                               "role": "viewer"})
        assert first.status_code == 201, first.text
        for n in (1, 2):
            await limited.CreateUser(pb.CreateUserRequest(email=f"lim-{run}-{n}@example.com", name="L",
                                                          role=pb.ROLE_VIEWER), metadata=as_admin)
        call = limited.CreateUser(pb.CreateUserRequest(email=f"lim-{run}-3@example.com", name="L",
                                                       role=pb.ROLE_VIEWER), metadata=as_admin)
        error = await refusal(call)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        trailing = dict(error.trailing_metadata() or ())
        assert 1 <= int(trailing["retry-after"]) <= 60 // LIMIT
        assert trailing["ratelimit-policy"] == f'"staff-writes";q={LIMIT};w=60'
        assert (await rest.post("/api/v1/admin/users", json={"email": f"lim-{run}-4@example.com", "name": "L",
                                                              "role": "viewer"})).status_code == 429
        assert (await limited.ListUsers(pb.ListUsersRequest(), metadata=as_admin)).users, "reads are not limited"
    emails = {u.email for u in await all_users(access)}
    assert {f"lim-{run}-{n}@example.com" for n in range(3)} <= emails
    assert not {f"lim-{run}-{n}@example.com" for n in (3, 4)} & emails


async def test_the_service_is_in_the_gateways_health_and_reflection(gateway_runtime):
    """Probes and tools (buf curl, grpcurl) find it without a credential."""
    async with grpc.aio.insecure_channel(gateway_runtime.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE.full_name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        listed = [service.name async for answer in answers for service in answer.list_services_response.service]
    assert SERVICE.full_name in listed
