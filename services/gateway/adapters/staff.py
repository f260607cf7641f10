"""Staff users and their tokens over PostgreSQL (the gateway's schema), and the gateway's unit of work."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing_runtime.database import UnitOfWork
from services.gateway.adapters.secrets_keyring import SecretsKeyring, SecretUnreadable
from services.gateway.adapters.tables import sessions, staff_tokens, users
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import Token, User
from services.gateway.domain.sessions import ResealedTotpSecrets, Session, SignIn

# A token's last use is recorded at most this often: a busy automation token would otherwise write a row
# per request.
_TOUCH_EVERY = timedelta(minutes=1)


def _to_user(row: Any) -> User:
    return User(
        id=row.id, email=row.email, name=row.name, role=Role(row.role), created_at=row.created_at,
        disabled_at=row.disabled_at, has_password=row.password_hash is not None, totp_enabled=row.totp_enabled,
        organisation_id=row.organisation_id,
    )


def _to_token(row: Any) -> Token:
    return Token(
        id=row.id, user_id=row.user_id, name=row.name, prefix=row.prefix, secret_hash=row.secret_hash,
        created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
        allowed_cidrs=tuple(row.allowed_cidrs or ()),
        last_used_at=row.last_used_at,
    )


def _to_session(row: Any) -> Session:
    return Session(
        id_hash=row.id_hash, user_id=row.user_id, csrf_hash=row.csrf_hash, created_at=row.created_at,
        expires_at=row.expires_at, last_seen_at=row.last_seen_at, revoked_at=row.revoked_at, source_ip=row.source_ip,
        user_agent=row.user_agent,
    )


def _totp_secret_at(user_id: str) -> str:
    """Where a user's TOTP secret is stored: what its sealed value is bound to."""
    return f"gateway.users.totp_secret:{user_id}"


class UserRepository:
    """Users; their TOTP secrets are sealed with the keyring on the way in and opened on the way out."""

    def __init__(self, conn: AsyncConnection, keyring: SecretsKeyring) -> None:
        self._conn = conn
        self._keyring = keyring

    async def add(
        self, *, user_id: str, email: str, name: str, role: Role, organisation_id: str | None = None
    ) -> User | None:
        row = (
            await self._conn.execute(
                insert(users)
                .values(id=user_id, email=email, name=name, role=role.value, organisation_id=organisation_id)
                .on_conflict_do_nothing(index_elements=[users.c.email])
                .returning(users)
            )
        ).first()
        return _to_user(row) if row is not None else None

    async def get(self, user_id: str) -> User | None:
        row = (await self._conn.execute(sa.select(users).where(users.c.id == user_id))).first()
        return _to_user(row) if row is not None else None

    async def list(self, *, limit: int, after: str | None) -> list[User]:
        query = sa.select(users).order_by(users.c.id).limit(limit)
        if after is not None:
            query = query.where(users.c.id > after)
        return [_to_user(row) for row in (await self._conn.execute(query)).all()]

    async def update(
        self, user_id: str, *, name: str | None, role: Role | None, disabled_at: datetime | None | bool
    ) -> User | None:
        values: dict[str, Any] = {"updated_at": sa.func.now()}
        if name is not None:
            values["name"] = name
        if role is not None:
            values["role"] = role.value
        if disabled_at is not False:
            values["disabled_at"] = disabled_at
        row = (
            await self._conn.execute(sa.update(users).where(users.c.id == user_id).values(**values).returning(users))
        ).first()
        return _to_user(row) if row is not None else None

    async def count_active_admins(self) -> int:
        # FOR UPDATE on the admins: two concurrent demotions of the last two admins serialise, and the second sees
        # one admin left.
        rows = await self._conn.execute(
            sa.select(users.c.id)
            .where(users.c.role == Role.ADMIN.value, users.c.disabled_at.is_(None))
            .with_for_update()
        )
        return len(rows.all())

    async def get_sign_in(self, *, email: str | None = None, user_id: str | None = None) -> SignIn | None:
        condition = users.c.email == email if email is not None else users.c.id == user_id
        row = (await self._conn.execute(sa.select(users).where(condition))).first()
        if row is None:
            return None
        return SignIn(user=_to_user(row), password_hash=row.password_hash,
                      totp_secret=self._open_totp_secret(row.id, row.totp_secret), totp_last_step=row.totp_last_step)

    def _open_totp_secret(self, user_id: str, stored: str | None) -> str | None:
        if stored is None:
            return None
        try:
            return self._keyring.open(stored, _totp_secret_at(user_id)).value
        except SecretUnreadable as error:
            raise SecretUnreadable(f"the TOTP secret of user {user_id} {error}") from None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._conn.execute(
            sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash, updated_at=sa.func.now())
        )

    async def set_totp(self, user_id: str, *, secret: str | None, enabled: bool, last_step: int | None) -> None:
        sealed = self._keyring.seal(secret, _totp_secret_at(user_id)) if secret is not None else None
        await self._conn.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(totp_secret=sealed, totp_enabled=enabled, totp_last_step=last_step, updated_at=sa.func.now())
        )

    async def reseal_totp_secrets(self, *, after: str | None, limit: int) -> ResealedTotpSecrets:
        # Each value is replaced only if it is still the one read: a secret changed meanwhile (a new enrolment, a
        # reset, another replica's housekeeping) is already sealed with the current key, or gone.
        query = (
            sa.select(users.c.id, users.c.totp_secret)
            .where(users.c.totp_secret.is_not(None),
                   sa.not_(users.c.totp_secret.startswith(self._keyring.sealed_prefix, autoescape=True)))
            .order_by(users.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(users.c.id > after)
        rows = (await self._conn.execute(query)).all()
        resealed, unreadable = 0, []
        for row in rows:
            where = _totp_secret_at(row.id)
            try:
                secret = self._keyring.open(row.totp_secret, where).value
            except SecretUnreadable:
                unreadable.append(row.id)
                continue
            result = await self._conn.execute(
                sa.update(users).where(users.c.id == row.id, users.c.totp_secret == row.totp_secret)
                .values(totp_secret=self._keyring.seal(secret, where))
            )
            resealed += result.rowcount
        return ResealedTotpSecrets(scanned=len(rows), last_user_id=rows[-1].id if rows else None, resealed=resealed,
                                   unreadable=tuple(unreadable))

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        # One conditional UPDATE: of two requests with the same code, only one moves the step on.
        result = await self._conn.execute(
            sa.update(users)
            .where(users.c.id == user_id,
                   sa.or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step))
            .values(totp_last_step=step)
        )
        return result.rowcount == 1


class SessionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: Session) -> None:
        await self._conn.execute(
            sa.insert(sessions).values(
                id_hash=session.id_hash, user_id=session.user_id, csrf_hash=session.csrf_hash,
                created_at=session.created_at, expires_at=session.expires_at, last_seen_at=session.last_seen_at,
                source_ip=session.source_ip, user_agent=session.user_agent,
            )
        )

    async def get_with_user(self, id_hash: str) -> tuple[Session, User] | None:
        row = (
            await self._conn.execute(
                sa.select(
                    *[column.label(f"s_{column.name}") for column in sessions.c],
                    *[column.label(f"u_{column.name}") for column in users.c],
                )
                .join_from(sessions, users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id_hash == id_hash)
            )
        ).first()
        if row is None:
            return None
        values = row._asdict()
        return (
            _to_session(_Row({name[2:]: value for name, value in values.items() if name.startswith("s_")})),
            _to_user(_Row({name[2:]: value for name, value in values.items() if name.startswith("u_")})),
        )

    async def touch(self, id_hash: str, now: datetime) -> None:
        await self._conn.execute(
            sa.update(sessions).where(sessions.c.id_hash == id_hash, sessions.c.last_seen_at < now)
            .values(last_seen_at=now)
        )

    async def revoke(self, id_hash: str, now: datetime) -> None:
        await self._conn.execute(
            sa.update(sessions).where(sessions.c.id_hash == id_hash, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_all(self, user_id: str, now: datetime, *, keep: str | None = None) -> int:
        query = sa.update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        if keep is not None:
            query = query.where(sessions.c.id_hash != keep)
        return (await self._conn.execute(query.values(revoked_at=now))).rowcount

    async def prune(self, ended_before: datetime, idle: timedelta, limit: int) -> int:
        # Session.ended_at before ended_before, in SQL. SKIP LOCKED: replicas pruning at once take different rows,
        # and a row a request holds (touching it) waits for the next round instead of blocking this one.
        ended = (
            sa.select(sessions.c.id_hash)
            .where(sa.or_(sessions.c.expires_at < ended_before, sessions.c.revoked_at < ended_before,
                          sessions.c.last_seen_at < ended_before - idle))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self._conn.execute(sa.delete(sessions).where(sessions.c.id_hash.in_(ended)))).rowcount


class StaffTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, *, token_id: str, user_id: str, name: str, prefix: str, secret_hash: str, expires_at: datetime | None,
        allowed_cidrs: tuple[str, ...] = (),
    ) -> Token:
        row = (
            await self._conn.execute(
                sa.insert(staff_tokens)
                .values(
                    id=token_id, user_id=user_id, name=name, prefix=prefix, secret_hash=secret_hash,
                    expires_at=expires_at, allowed_cidrs=list(allowed_cidrs),
                )
                .returning(staff_tokens)
            )
        ).one()
        return _to_token(row)

    async def get(self, token_id: str) -> Token | None:
        row = (await self._conn.execute(sa.select(staff_tokens).where(staff_tokens.c.id == token_id))).first()
        return _to_token(row) if row is not None else None

    async def get_with_user(self, prefix: str) -> tuple[Token, User] | None:
        row = (
            await self._conn.execute(
                sa.select(
                    *[column.label(f"t_{column.name}") for column in staff_tokens.c],
                    *[column.label(f"u_{column.name}") for column in users.c],
                )
                .join_from(staff_tokens, users, users.c.id == staff_tokens.c.user_id)
                .where(staff_tokens.c.prefix == prefix)
            )
        ).first()
        if row is None:
            return None
        values = row._asdict()
        return (
            _to_token(_Row({name[2:]: value for name, value in values.items() if name.startswith("t_")})),
            _to_user(_Row({name[2:]: value for name, value in values.items() if name.startswith("u_")})),
        )

    async def list(self, *, user_id: str, limit: int, after: str | None) -> list[Token]:
        query = (
            sa.select(staff_tokens).where(staff_tokens.c.user_id == user_id).order_by(staff_tokens.c.id).limit(limit)
        )
        if after is not None:
            query = query.where(staff_tokens.c.id > after)
        return [_to_token(row) for row in (await self._conn.execute(query)).all()]

    async def revoke(self, token_id: str, now: datetime) -> Token | None:
        row = (
            await self._conn.execute(
                sa.update(staff_tokens)
                .where(staff_tokens.c.id == token_id)
                .values(revoked_at=sa.func.coalesce(staff_tokens.c.revoked_at, now))
                .returning(staff_tokens)
            )
        ).first()
        return _to_token(row) if row is not None else None

    async def expire(self, token_id: str, expires_at: datetime) -> Token | None:
        row = (
            await self._conn.execute(
                sa.update(staff_tokens)
                .where(staff_tokens.c.id == token_id)
                .values(expires_at=expires_at)
                .returning(staff_tokens)
            )
        ).first()
        return _to_token(row) if row is not None else None

    async def touch(self, token_id: str, now: datetime) -> None:
        await self._conn.execute(
            sa.update(staff_tokens)
            .where(
                staff_tokens.c.id == token_id,
                sa.or_(staff_tokens.c.last_used_at.is_(None), staff_tokens.c.last_used_at < now - _TOUCH_EVERY),
            )
            .values(last_used_at=now)
        )


class _Row:
    """Attribute access over one table's columns of a joined row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class GatewayUnitOfWork(UnitOfWork):
    """One transaction with the gateway's repositories on it (``uow.connection`` stays available for the audit
    log); the keyring seals and opens the secrets they store."""

    _users: UserRepository | None = None
    _tokens: StaffTokenRepository | None = None
    _sessions: SessionRepository | None = None

    def __init__(self, engine: AsyncEngine, keyring: SecretsKeyring) -> None:
        super().__init__(engine)
        self._keyring = keyring

    @property
    def users(self) -> UserRepository:
        if self._users is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._users

    @property
    def tokens(self) -> StaffTokenRepository:
        if self._tokens is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._tokens

    @property
    def sessions(self) -> SessionRepository:
        if self._sessions is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._sessions

    async def __aenter__(self) -> GatewayUnitOfWork:
        await super().__aenter__()
        self._users = UserRepository(self.connection, self._keyring)
        self._tokens = StaffTokenRepository(self.connection)
        self._sessions = SessionRepository(self.connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._users = self._tokens = self._sessions = None
        await super().__aexit__(exc_type, exc, tb)
