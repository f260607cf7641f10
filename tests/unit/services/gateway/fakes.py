"""In-memory stand-ins for the gateway's repositories (``services.gateway.service.ports``), and a unit of work
holding them that is also the audit log's connection for the route tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from billing_runtime import gcra as ratelimit
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User
from services.gateway.domain.sessions import Session, SessionPolicy, SignIn


class FakeUsers:
    def __init__(self) -> None:
        self.rows: dict[str, User] = {}
        self.password_hashes: dict[str, str] = {}
        self.totp: dict[str, tuple[str | None, int | None]] = {}  # user id -> (secret, last step)

    async def add(
        self, *, user_id: str, email: str, name: str, role: Role, organisation_id: str | None = None
    ) -> User | None:
        if any(user.email == email for user in self.rows.values()):
            return None
        if role.staff == (organisation_id is not None):  # the table's CHECK (gateway migration 0007)
            raise AssertionError("users_organisation_check")
        self.rows[user_id] = User(id=user_id, email=email, name=name, role=role, created_at=datetime.now(UTC),
                                  organisation_id=organisation_id)
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

    async def get_sign_in(self, *, email: str | None = None, user_id: str | None = None) -> SignIn | None:
        user = next((u for u in self.rows.values() if (u.email == email if email is not None else u.id == user_id)),
                    None)
        if user is None:
            return None
        secret, last_step = self.totp.get(user.id, (None, None))
        return SignIn(user=user, password_hash=self.password_hashes.get(user.id), totp_secret=secret,
                      totp_last_step=last_step)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.password_hashes[user_id] = password_hash
        self.rows[user_id] = replace(self.rows[user_id], has_password=True)

    async def set_totp(self, user_id: str, *, secret: str | None, enabled: bool, last_step: int | None) -> None:
        self.totp[user_id] = (secret, last_step)
        self.rows[user_id] = replace(self.rows[user_id], totp_enabled=enabled)

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        secret, last_step = self.totp.get(user_id, (None, None))
        if last_step is not None and step <= last_step:
            return False
        self.totp[user_id] = (secret, step)
        return True


class FakeSessions:
    def __init__(self, users: FakeUsers) -> None:
        self.rows: dict[str, Session] = {}
        self._users = users

    async def add(self, session: Session) -> None:
        self.rows[session.id_hash] = session

    async def get_with_user(self, id_hash: str) -> tuple[Session, User] | None:
        session = self.rows.get(id_hash)
        return (session, self._users.rows[session.user_id]) if session is not None else None

    async def touch(self, id_hash: str, now: datetime) -> None:
        self.rows[id_hash] = replace(self.rows[id_hash], last_seen_at=now)

    async def revoke(self, id_hash: str, now: datetime) -> None:
        session = self.rows[id_hash]
        self.rows[id_hash] = replace(session, revoked_at=session.revoked_at or now)

    async def revoke_all(self, user_id: str, now: datetime, *, keep: str | None = None) -> int:
        ended = [s for s in self.rows.values() if s.user_id == user_id and s.revoked_at is None and s.id_hash != keep]
        for session in ended:
            self.rows[session.id_hash] = replace(session, revoked_at=now)
        return len(ended)

    async def prune(self, ended_before: datetime, idle: timedelta, limit: int) -> int:
        policy = SessionPolicy(idle=idle)
        ended = [k for k, s in self.rows.items() if s.ended_at(policy) < ended_before][:limit]
        for id_hash in ended:
            del self.rows[id_hash]
        return len(ended)


class FakeTokens:
    def __init__(self, users: FakeUsers) -> None:
        self.rows: dict[str, Token] = {}
        self._users = users

    async def add(
        self, *, token_id: str, user_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None,
        allowed_cidrs: tuple[str, ...] = (),
    ) -> Token:
        self.rows[token_id] = Token(
            id=token_id, user_id=user_id, name=name, prefix=prefix, secret_hash=secret_hash,
            created_at=datetime.now(UTC), expires_at=expires_at, allowed_cidrs=allowed_cidrs,
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

    def __init__(
        self, users: FakeUsers, tokens: FakeTokens, audit: list[dict[str, Any]],
        sessions: FakeSessions | None = None,
    ) -> None:
        self.users = users
        self.tokens = tokens
        self.sessions = sessions if sessions is not None else FakeSessions(users)
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
