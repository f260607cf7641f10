"""In-memory stand-ins for the gateway's repositories (``services.gateway.service.ports``), and a unit of work
holding them that is also the audit log's connection for the route tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.gateway.domain import ratelimit
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User


class FakeUsers:
    def __init__(self) -> None:
        self.rows: dict[str, User] = {}

    async def add(self, *, user_id: str, email: str, name: str, role: Role) -> User | None:
        if any(user.email == email for user in self.rows.values()):
            return None
        self.rows[user_id] = User(id=user_id, email=email, name=name, role=role, created_at=datetime.now(UTC))
        return self.rows[user_id]

    async def get(self, user_id: str) -> User | None:
        return self.rows.get(user_id)

    async def list(self, *, limit: int, after: str | None) -> list[User]:
        return [self.rows[k] for k in sorted(self.rows) if after is None or k > after][:limit]

    async def update(
        self, user_id: str, *, name: str | None, role: Role | None, disabled_at: datetime | None | bool
    ) -> User | None:
        user = self.rows.get(user_id)
        if user is None:
            return None
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if role is not None:
            changes["role"] = role
        if disabled_at is not False:
            changes["disabled_at"] = disabled_at
        self.rows[user_id] = replace(user, **changes)
        return self.rows[user_id]

    async def count_active_admins(self) -> int:
        return sum(1 for u in self.rows.values() if u.role is Role.ADMIN and u.disabled_at is None)


class FakeTokens:
    def __init__(self, users: FakeUsers) -> None:
        self.rows: dict[str, Token] = {}
        self._users = users

    async def add(
        self, *, token_id: str, user_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None
    ) -> Token:
        self.rows[token_id] = Token(
            id=token_id, user_id=user_id, name=name, prefix=prefix, secret_hash=secret_hash,
            created_at=datetime.now(UTC), expires_at=expires_at,
        )
        return self.rows[token_id]

    async def get(self, token_id: str) -> Token | None:
        return self.rows.get(token_id)

    async def get_with_user(self, prefix: str) -> tuple[Token, User] | None:
        for token in self.rows.values():
            if token.prefix == prefix:
                return token, self._users.rows[token.user_id]
        return None

    async def list(self, *, user_id: str, limit: int, after: str | None) -> list[Token]:
        return [t for k, t in sorted(self.rows.items()) if t.user_id == user_id and (after is None or k > after)][
            :limit
        ]

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        token = self.rows.get(token_id)
        if token is None:
            return None
        self.rows[token_id] = replace(token, revoked_at=token.revoked_at or now)
        return self.rows[token_id]

    async def expire(self, token_id: str, expires_at: datetime) -> Token | None:
        token = self.rows.get(token_id)
        if token is None:
            return None
        self.rows[token_id] = replace(token, expires_at=expires_at)
        return self.rows[token_id]

    async def touch(self, token_id: str, now: datetime) -> None:
        self.rows[token_id] = replace(self.rows[token_id], last_used_at=now)


class FakeAuditConnection:
    """Records each statement's parameters: the audit log's inserts in the route tests."""

    def __init__(self, log: list[dict[str, Any]]) -> None:
        self._log = log

    async def execute(self, statement: Any) -> None:
        self._log.append(statement.compile().params)


class FakeGatewayUow:
    """A transaction over the fakes (all share one store; nothing rolls back)."""

    def __init__(self, users: FakeUsers, tokens: FakeTokens, audit: list[dict[str, Any]]) -> None:
        self.users = users
        self.tokens = tokens
        self.connection = FakeAuditConnection(audit)

    async def __aenter__(self) -> FakeGatewayUow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class FakeRateLimits:
    """``service.rate_limits.RateLimits`` in memory, on a clock the test moves (``now``)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 1, 1, tzinfo=UTC)
        self.rows: dict[str, ratelimit.Backoff] = {}

    def _tat(self, key: str) -> datetime | None:
        row = self.rows.get(key)
        return row.tat if row is not None else None

    async def check(self, key: str, rate: ratelimit.Rate) -> ratelimit.Decision:
        decision = ratelimit.check(rate, self._tat(key), self.now)
        if decision.allowed:
            self.rows[key] = ratelimit.Backoff(decision.tat, self.rows.get(key, ratelimit.Backoff(self.now)).strikes)
        return decision

    async def peek(self, key: str, rate: ratelimit.Rate) -> ratelimit.Decision:
        return ratelimit.peek(rate, self._tat(key), self.now)

    async def fail(self, key: str, rate: ratelimit.Rate, max_backoff: timedelta) -> ratelimit.Decision:
        self.rows[key] = ratelimit.fail(rate, self.rows.get(key), self.now, max_backoff)
        return ratelimit.peek(rate, self.rows[key].tat, self.now)

    async def reset(self, key: str) -> None:
        self.rows.pop(key, None)
