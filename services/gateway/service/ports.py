"""What the gateway's use cases need from storage, as Protocols: the adapters implement them over PostgreSQL
(:mod:`services.gateway.adapters.staff`), unit tests with in-memory fakes (``tests/unit/gateway/fakes.py``)."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User


class Users(Protocol):
    async def add(self, *, user_id: str, email: str, name: str, role: Role) -> User | None:
        """Store a new user; None when the email is taken."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def list(self, *, limit: int, after: str | None) -> list[User]:
        """Up to ``limit`` users in id order after ``after``."""
        ...

    async def update(
        self, user_id: str, *, name: str | None, role: Role | None, disabled_at: datetime | None | bool
    ) -> User | None:
        """Change what is given (``disabled_at``: a time to disable, None to enable, False to leave as is)."""
        ...

    async def count_active_admins(self) -> int: ...


class StaffTokens(Protocol):
    async def add(
        self, *, token_id: str, user_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None
    ) -> Token: ...

    async def get(self, token_id: str) -> Token | None: ...

    async def get_with_user(self, prefix: str) -> tuple[Token, User] | None:
        """The token with this prefix and its user."""
        ...

    async def list(self, *, user_id: str, limit: int, after: str | None) -> list[Token]: ...

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        """Revoke once, keeping the first revocation time; None for an unknown token."""
        ...

    async def expire(self, token_id: str, expires_at: datetime) -> Token | None: ...

    async def touch(self, token_id: str, now: datetime) -> None:
        """Record a use (at most about once a minute is enough; the adapter may skip writes)."""
        ...


class StaffTransaction(Protocol):
    """One transaction over the gateway's repositories (``async with uow:`` commits or rolls back)."""

    @property
    def users(self) -> Users: ...

    @property
    def tokens(self) -> StaffTokens: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
