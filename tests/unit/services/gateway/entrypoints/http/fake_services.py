"""The gateway's FastAPI app in front of fake gRPC stubs: each RPC records its request and answers what the test
queued (a reply or a domain error), so route mapping is tested without services."""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

import argon2
import grpc
from fastapi.testclient import TestClient

from billing.ingest.v1 import ingest_pb2
from billing_runtime.error_mapping import to_grpc_status
from billing_runtime.errors import DomainError, NotFound, Unauthenticated
from services.gateway.adapters.passwords import Argon2Passwords
from services.gateway.config import GatewaySettings
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User, mint_token
from services.gateway.entrypoints.http.app import create_app
from tests.unit.services.gateway.fakes import FakeGatewayUow, FakeRateLimits, FakeSessions, FakeTokens, FakeUsers

# argon2id at its lowest cost: the route tests check behaviour, not hashing time.
CHEAP_PASSWORDS = Argon2Passwords(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

ADMIN_TOKEN = "unit-test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRETS_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31: the fakes store no sealed secret


def rpc_error(error: DomainError) -> grpc.aio.AioRpcError:
    """The error a real stub raises when the service aborts with ``error`` (field detail included)."""
    status = to_grpc_status(error)
    return grpc.aio.AioRpcError(status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata),
                                details=status.details)


class FakeStub:
    """Any attribute is an RPC: ``await stub.GetPlan(request, timeout=..., metadata=...)``."""

    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = defaultdict(list)
        self.replies: dict[str, deque[Any]] = defaultdict(deque)

    def answer(self, rpc: str, *replies: Any) -> None:
        """Queue replies (protobuf messages or DomainErrors) for ``rpc``; the last one repeats."""
        self.replies[rpc].extend(replies)

    def __getattr__(self, rpc: str):
        if rpc.startswith("_"):
            raise AttributeError(rpc)

        async def call(request: Any, **_: Any) -> Any:
            self.requests[rpc].append(request)
            queue = self.replies[rpc]
            if not queue:
                raise AssertionError(f"no reply queued for {rpc}")
            reply = queue.popleft() if len(queue) > 1 else queue[0]
            if isinstance(reply, DomainError):
                raise rpc_error(reply)
            return reply

        return call


class FakeIngest(FakeStub):
    """Knows API keys: secret -> project."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, ingest_pb2.Project] = {}

    async def VerifyApiKey(self, request: ingest_pb2.VerifyApiKeyRequest, **_: Any):  # noqa: N802
        project = self.keys.get(request.secret)
        if project is None:
            raise rpc_error(Unauthenticated("API key is not valid"))
        return ingest_pb2.VerifyApiKeyResponse(project=project)


class FakeClients:
    def __init__(self) -> None:
        self.invoicing = FakeStub()
        self.ingest = FakeIngest()
        self.metering = FakeStub()
        self.payments = FakeStub()
        self.notification = FakeStub()
        self.addresses = {"invoicing": "fake", "ingest": "fake", "metering": "fake", "payments": "fake",
                          "notification": "fake"}


class Gateway:
    """The app, its fakes, and the audit entries it wrote."""

    def __init__(self, login_throttle: Any = None, **settings_overrides: Any) -> None:
        self.clients = FakeClients()
        self.audit: list[dict[str, Any]] = []
        self.users = FakeUsers()
        self.tokens = FakeTokens(self.users)
        self.rate_limits = FakeRateLimits()
        self.sessions = FakeSessions(self.users)
        settings = GatewaySettings(admin_token=ADMIN_TOKEN, database_url="postgresql://unused/unused",
                                   secrets_key=SECRETS_KEY, **settings_overrides)
        self.app = create_app(
            settings, self.clients, engine=None,
            uow_factory=lambda: FakeGatewayUow(self.users, self.tokens, self.audit, self.sessions),
            rate_limits=self.rate_limits, passwords=CHEAP_PASSWORDS, login_throttle=login_throttle,
        )
        # https: the session cookie is Secure, and a client keeps a Secure cookie for https only.
        self.http = TestClient(self.app, raise_server_exceptions=False, base_url="https://testserver")

    @property
    def invoicing(self) -> FakeStub:
        return self.clients.invoicing

    @property
    def metering(self) -> FakeStub:
        return self.clients.metering

    @property
    def payments(self) -> FakeStub:
        return self.clients.payments

    @property
    def notification(self) -> FakeStub:
        return self.clients.notification

    def add_key(self, secret: str, organisation_id: str) -> None:
        self.clients.ingest.keys[secret] = ingest_pb2.Project(id=f"prj_{secret}", organisation_id=organisation_id)

    def staff(self, role: str, *, disabled: bool = False, organisation_id: str | None = None) -> dict[str, str]:
        """Headers carrying a new user's token with ``role`` (an organisation user's with ``organisation_id``)."""
        number = len(self.users.rows) + 1
        minted = mint_token()
        user = User(id=f"usr_{number:04d}", email=f"staff{number}@example.com", name=f"Staff {number}",
                    role=Role(role), created_at=datetime.now(UTC),
                    disabled_at=datetime.now(UTC) if disabled else None, organisation_id=organisation_id)
        self.users.rows[user.id] = user
        self.tokens.rows[f"tok_{number:04d}"] = Token(
            id=f"tok_{number:04d}", user_id=user.id, name="test", prefix=minted.prefix,
            secret_hash=minted.secret_hash, created_at=datetime.now(UTC),
        )
        return {"Authorization": f"Bearer {minted.secret}"}

    def org_user(self, role: str, organisation_id: str) -> dict[str, str]:
        """Headers carrying a new organisation user's token (role member or owner)."""
        return self.staff(role, organisation_id=organisation_id)

    def person(self, role: str, password: str = "correct horse battery", *, email: str = "",
               organisation_id: str | None = None) -> User:
        """A user who can sign in with ``password`` (an organisation user with ``organisation_id``)."""
        number = len(self.users.rows) + 1
        user = User(id=f"usr_{number:04d}", email=email or f"person{number}@example.com", name=f"Person {number}",
                    role=Role(role), created_at=datetime.now(UTC), has_password=True,
                    organisation_id=organisation_id)
        self.users.rows[user.id] = user
        self.users.password_hashes[user.id] = CHEAP_PASSWORDS._hasher.hash(password)
        return user

    def audited(self) -> list[tuple[str, str]]:
        return [(entry["action"], entry["resource_id"]) for entry in self.audit]


__all__ = ["ADMIN", "ADMIN_TOKEN", "FakeStub", "Gateway", "NotFound", "rpc_error"]
