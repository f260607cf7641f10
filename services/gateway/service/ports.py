"""What the gateway's use cases need from storage, as Protocols: the adapters implement them over PostgreSQL
(:mod:`services.gateway.adapters.staff`), unit tests with in-memory fakes (``tests/unit/gateway/fakes.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User
from services.gateway.domain.sessions import ResealedTotpSecrets, Session, SignIn


class Users(Protocol):
    async def add(
        self, *, user_id: str, email: str, name: str, role: Role, organisation_id: str | None = None
    ) -> User | None:
        """Store a new user (an organisation user with their organisation); None when the email is taken."""
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

    async def get_sign_in(self, *, email: str | None = None, user_id: str | None = None) -> SignIn | None:
        """The user (by email or id) with their password hash and second factor's state."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def set_totp(self, user_id: str, *, secret: str | None, enabled: bool, last_step: int | None) -> None:
        """Replace the second factor's state (a pending secret, enabled or not, the last step used)."""
        ...

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record ``step`` as used if it is later than the last one; False when another request used it first."""
        ...

    async def reseal_totp_secrets(self, *, after: str | None, limit: int) -> ResealedTotpSecrets:
        """Seal again with the current key up to ``limit`` TOTP secrets (in user id order after ``after``) that are
        stored in plain text or under a previous key; one that no configured key opens is left as it is and
        named."""
        ...


class StaffTokens(Protocol):
    async def add(
        self, *, token_id: str, user_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None,
        allowed_cidrs: tuple[str, ...] = (),
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


class Sessions(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get_with_user(self, id_hash: str) -> tuple[Session, User] | None: ...

    async def touch(self, id_hash: str, now: datetime) -> None: ...

    async def revoke(self, id_hash: str, now: datetime) -> None: ...

    async def revoke_all(self, user_id: str, now: datetime, *, keep: str | None = None) -> int:
        """Revoke every active session of the user but ``keep`` (an id hash); how many were revoked."""
        ...

    async def prune(self, ended_before: datetime, idle: timedelta, limit: int) -> int:
        """Delete at most ``limit`` sessions that ended (``Session.ended_at`` with this idle timeout) before
        ``ended_before``, skipping rows another transaction holds; how many were deleted."""
        ...


class Passwords(Protocol):
    """argon2id (``adapters/passwords.py``); slow on purpose, so asynchronous (a worker thread)."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password, and, taking as long, for a missing hash (an unknown email)."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class Totp(Protocol):
    """RFC 6238 codes (``adapters/totp.py``)."""

    def new_secret(self) -> str: ...

    def uri(self, secret: str, email: str) -> str: ...

    def code_at(self, secret: str, step: int) -> str: ...


class LoginThrottle(Protocol):
    """Slows down password guessing: ``check`` before a sign-in is tried (raise ``ResourceExhausted`` or similar
    to refuse it), ``failed`` / ``succeeded`` after. ``source`` is the client's address; ``email`` as typed
    (normalised to lower case). The default does nothing (``service.sessions.NO_LOGIN_THROTTLE``); the shared
    rate limiter plugs in here."""

    async def check(self, source: str, email: str) -> None: ...

    async def failed(self, source: str, email: str) -> None: ...

    async def succeeded(self, source: str, email: str) -> None: ...


class Organisations(Protocol):
    """Whether an organisation exists: invoicing owns them (``adapters/services.py``)."""

    async def exists(self, organisation_id: str) -> bool: ...


class StaffTransaction(Protocol):
    """One transaction over the gateway's repositories (``async with uow:`` commits or rolls back)."""

    @property
    def users(self) -> Users: ...

    @property
    def tokens(self) -> StaffTokens: ...

    @property
    def sessions(self) -> Sessions: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
