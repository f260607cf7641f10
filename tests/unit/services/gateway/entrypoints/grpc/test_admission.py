"""The gRPC API's admission, with the gateway's in-memory fakes: every method of the contract is served behind
it, the caller's address is the peer's (or a trusted proxy's report), and a write over the limit is answered
RESOURCE_EXHAUSTED with retry-after before anything runs. The end-to-end refusals (no token, a role without the
permission) are in tests/integration/gateway/test_access_grpc.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from billing.gateway.v1 import access_pb2 as pb
from billing_runtime.errors import PermissionDenied, Unauthenticated
from services.gateway.config import GatewaySettings
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User, mint_token
from services.gateway.entrypoints.grpc.access import SERVICE, AccessServicer
from services.gateway.entrypoints.grpc.admission import (
    Admission,
    StaffCall,
    admitted_servicer,
    peer_host,
    safe_methods,
)
from tests.unit.services.gateway.entrypoints.http.fake_services import SECRETS_KEY
from tests.unit.services.gateway.fakes import FakeGatewayUow, FakeRateLimits, FakeTokens, FakeUsers

ADMIN_TOKEN = "unit-admin-token-0123456789"


class FakeContext:
    def __init__(self, metadata: tuple[tuple[str, str], ...] = (), peer: str = "ipv4:127.0.0.1:50000") -> None:
        self._metadata = metadata
        self._peer = peer
        self.aborted: tuple[Any, ...] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, dict(trailing_metadata))
        raise grpc.aio.AbortError()


class World:
    def __init__(self, **settings: Any) -> None:
        self.users = FakeUsers()
        self.tokens = FakeTokens(self.users)
        self.audit: list[dict[str, Any]] = []
        self.rate_limits = FakeRateLimits(now=datetime.now(UTC))
        self.settings = GatewaySettings(admin_token=ADMIN_TOKEN, database_url="postgresql://unused/unused",
                                        secrets_key=SECRETS_KEY, **settings)
        self.admission = Admission(self.settings, self.uow, self.rate_limits, safe_methods(SERVICE))

    def uow(self) -> FakeGatewayUow:
        return FakeGatewayUow(self.users, self.tokens, self.audit)

    def token(self, role: str) -> tuple[tuple[str, str], ...]:
        number = len(self.users.rows) + 1
        minted = mint_token()
        self.users.rows[f"usr_{number:04d}"] = User(id=f"usr_{number:04d}", email=f"u{number}@example.com",
                                                   name="U", role=Role(role), created_at=datetime.now(UTC))
        self.tokens.rows[f"tok_{number:04d}"] = Token(id=f"tok_{number:04d}", user_id=f"usr_{number:04d}", name="t",
                                                      prefix=minted.prefix, secret_hash=minted.secret_hash,
                                                      created_at=datetime.now(UTC))
        return (("authorization", f"Bearer {minted.secret}"),)


def path(name: str) -> str:
    return f"/{SERVICE.full_name}/{name}"


@pytest.mark.parametrize(("peer", "host"), [
    ("ipv4:10.0.0.7:51234", "10.0.0.7"), ("ipv6:[::1]:51234", "::1"), ("ipv6:%5B2001:db8::1%5D:443", "2001:db8::1"),
    ("unix:/tmp/socket", ""), ("", ""),
])
def test_the_peer_address_is_read_from_grpcs_peer_string(peer, host):
    assert peer_host(peer) == host


def test_the_methods_that_change_nothing_are_the_ones_the_contract_marks():
    assert safe_methods(SERVICE) == {path(name) for name in ("WhoAmI", "GetUser", "ListUsers", "ListTokens")}


class Recording:
    """A servicer whose every method records the admitted call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, StaffCall]] = []

    def __getattr__(self, name: str):
        async def behaviour(request: Any, call: StaffCall) -> str:
            self.calls.append((name, call))
            return name
        return behaviour


async def test_every_method_of_the_contract_runs_behind_the_admission():
    world, servicer = World(), Recording()
    served = admitted_servicer(SERVICE, servicer, world.admission)
    assert sorted(vars(served)) == sorted(m.name for m in SERVICE.methods)
    for method in SERVICE.methods:
        with pytest.raises(Unauthenticated):
            await getattr(served, method.name)(None, FakeContext())
    assert servicer.calls == []
    assert await served.CreateUser(None, FakeContext(world.token("admin"))) == "CreateUser"
    # A servicer without every method fails at start-up, not at the call; the real one has them all.
    with pytest.raises(AttributeError):
        admitted_servicer(SERVICE, object(), world.admission)
    admitted_servicer(SERVICE, AccessServicer(world.uow, None, None), world.admission)  # type: ignore[arg-type]


async def test_the_bootstrap_token_acts_as_admin_and_a_role_without_the_permission_is_refused():
    world = World()
    call = await world.admission.admit(path("CreateUser"), FakeContext((("authorization", f"Bearer {ADMIN_TOKEN}"),)))
    assert (call.principal.actor, call.principal.role, call.source) == ("admin-token", Role.ADMIN, "127.0.0.1")
    with pytest.raises(PermissionDenied, match="the operator role does not grant 'manage_users'"):
        await world.admission.admit(path("ListUsers"), FakeContext(world.token("operator")))
    with pytest.raises(PermissionDenied, match="no permission entry"):
        await world.admission.admit("/billing.gateway.v1.AccessService/Unknown", FakeContext(world.token("admin")))


async def test_the_admin_allowlist_judges_the_address_a_trusted_proxy_reports():
    world = World(admin_allowed_cidrs="203.0.113.0/24", trusted_proxies="10.0.0.0/8")
    admin = world.token("admin")
    proxied = FakeContext((*admin, ("x-forwarded-for", "203.0.113.9")), peer="ipv4:10.0.0.5:4000")
    assert (await world.admission.admit(path("WhoAmI"), proxied)).source == "203.0.113.9"
    for context in (FakeContext(admin, peer="ipv4:10.0.0.5:4000"),  # the proxy itself
                    FakeContext((*admin, ("x-forwarded-for", "203.0.113.9")), peer="ipv4:198.51.100.1:4000")):
        with pytest.raises(PermissionDenied, match="admin API does not answer"):
            await world.admission.admit(path("WhoAmI"), context)


async def test_a_write_over_the_limit_is_resource_exhausted_with_retry_after_and_runs_nothing():
    world, servicer = World(admin_write_limit_per_minute=1), Recording()
    served = admitted_servicer(SERVICE, servicer, world.admission)
    admin = world.token("admin")
    await served.CreateToken(pb.CreateTokenRequest(), FakeContext(admin))
    refused = FakeContext(admin)
    with pytest.raises(grpc.aio.AbortError):
        await served.RevokeToken(pb.RevokeTokenRequest(), refused)
    assert refused.aborted is not None
    code, details, trailing = refused.aborted
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 1 a minute" in details
    assert trailing["retry-after"] == "60" and trailing["ratelimit-policy"] == '"staff-writes";q=1;w=60'
    await served.ListTokens(pb.ListTokensRequest(), FakeContext(admin))  # reads are not limited
    assert [name for name, _ in servicer.calls] == ["CreateToken", "ListTokens"]
