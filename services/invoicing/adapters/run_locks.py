"""Invoice runs' execution locks as PostgreSQL session advisory locks: one per run, held on a connection of its own
for as long as the run executes. A process that dies closes its connection, and PostgreSQL lets the lock go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.logging import get_logger

log = get_logger(__name__)

_TRY_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))")


class PostgresRunLocks:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def hold(self, run_id: str) -> AsyncIterator[bool]:
        key = {"key": f"invoicing:invoice-run:{run_id}"}
        async with self._engine.connect() as conn:
            held = bool((await conn.execute(_TRY_LOCK, key)).scalar_one())
            await conn.commit()  # not idle in a transaction while the run works; the session lock stays
            try:
                yield held
            finally:
                if held:
                    try:
                        await conn.execute(_UNLOCK, key)
                        await conn.commit()
                    except Exception:  # noqa: BLE001 - never hand a connection still holding it back to the pool
                        log.warning("invoice run lock not released; dropping its connection", run_id=run_id)
                        await conn.invalidate()
