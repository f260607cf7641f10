"""Async SQLAlchemy engine on asyncpg, and the unit of work: one transaction per RPC or consumed message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction, create_async_engine


def async_url(url: str) -> str:
    """Accept the usual ``postgresql://`` / ``postgres://`` forms and select the asyncpg driver."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    except ArgumentError:
        raise ValueError(f"database_url is not a URL such as postgresql://user@host:5432/db: {url!r}") from None
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"database_url must be a PostgreSQL URL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(url: str, *, application_name: str, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": application_name}, "timeout": 5},
    )


async def ping(engine: AsyncEngine, timeout: float) -> None:
    """Raise unless the database answers ``SELECT 1`` within ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


class UnitOfWork:
    """One database transaction. Commits when the block ends normally, rolls back on any exception.

    Repositories take ``uow.connection``; events recorded with an outbox in the same transaction are
    published only if the transaction commits. ``after_commit`` callbacks run once the commit succeeded.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._after_commit: list[Callable[[], None]] = []

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._connection

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    async def __aenter__(self) -> UnitOfWork:
        self._connection = await self._engine.connect()
        self._transaction = await self._connection.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._connection is not None and self._transaction is not None
        try:
            if exc_type is None:
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        finally:
            await self._connection.close()
            self._connection = None
        if exc_type is None:
            for callback in self._after_commit:
                callback()
