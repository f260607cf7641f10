"""Rate limits over PostgreSQL (``gateway.rate_limits``), shared by every gateway replica: a check is one atomic
statement (GCRA, ``domain/ratelimit.py``), timed by the database's clock, so replicas on hosts whose clocks
disagree still count alike. Idle keys (TAT in the past) are deleted at most once a minute per process, on the way.

Neither ``limits`` nor ``pyrate-limiter`` is used (docs/security.md, "Rate limits"): ``limits`` keeps shared
state only in Redis, Memcached or MongoDB, which the platform does not run; ``pyrate-limiter``'s PostgreSQL bucket
brings a second driver and pool (psycopg) beside asyncpg and stores a row per admitted request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.logging import get_logger
from services.gateway.domain import ratelimit
from services.gateway.domain.ratelimit import Backoff, Decision, Rate

log = get_logger(__name__)

_PURGE_EVERY_SECONDS = 60.0

_params = (sa.bindparam("interval", type_=sa.Interval), sa.bindparam("window", type_=sa.Interval))

# Admitted: the row's new TAT comes back. Refused: the WHERE of the update fails and nothing comes back.
_CHECK = sa.text(
    """
    INSERT INTO gateway.rate_limits AS r (key, tat) VALUES (:key, now() + :interval)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + :interval
    WHERE greatest(r.tat, now()) + :interval - now() <= :window
    RETURNING r.tat, now() AS now
    """
).bindparams(*_params)
_READ = sa.text("SELECT tat, strikes, now() AS now FROM gateway.rate_limits WHERE key = :key")
# Locks the key's row (creating an idle one) for the read-modify-write of a sign-in failure.
_LOCK = sa.text(
    """
    INSERT INTO gateway.rate_limits AS r (key, tat) VALUES (:key, now())
    ON CONFLICT (key) DO UPDATE SET key = excluded.key
    RETURNING r.tat, r.strikes, now() AS now
    """
)
_WRITE = sa.text("UPDATE gateway.rate_limits SET tat = :tat, strikes = :strikes WHERE key = :key")
_RESET = sa.text("DELETE FROM gateway.rate_limits WHERE key = :key")
_PURGE = sa.text("DELETE FROM gateway.rate_limits WHERE tat < now()")


class PostgresRateLimits:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._purged = time.monotonic()

    async def check(self, key: str, rate: Rate) -> Decision:
        async with self._engine.begin() as conn:
            row = (await conn.execute(_CHECK, {"key": key, "interval": rate.interval, "window": rate.window})).first()
            if row is not None:
                decision = ratelimit.admitted(rate, row.tat, row.now)
            else:
                current = (await conn.execute(_READ, {"key": key})).first()
                decision = ratelimit.refused(rate, current.tat if current else None,
                                             current.now if current else datetime.now(UTC))
        await self._maybe_purge()
        return decision

    async def peek(self, key: str, rate: Rate) -> Decision:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_READ, {"key": key})).first()
            now = row.now if row is not None else (await conn.execute(sa.text("SELECT now()"))).scalar_one()
        return ratelimit.peek(rate, row.tat if row is not None else None, now)

    async def fail(self, key: str, rate: Rate, max_backoff: timedelta) -> Decision:
        async with self._engine.begin() as conn:
            row = (await conn.execute(_LOCK, {"key": key})).one()
            state = ratelimit.fail(rate, Backoff(row.tat, row.strikes), row.now, max_backoff)
            await conn.execute(_WRITE, {"key": key, "tat": state.tat, "strikes": state.strikes})
        return ratelimit.peek(rate, state.tat, row.now)

    async def reset(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_RESET, {"key": key})

    async def purge(self) -> int:
        """Delete idle keys; how many."""
        async with self._engine.begin() as conn:
            return (await conn.execute(_PURGE)).rowcount

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._purged < _PURGE_EVERY_SECONDS:
            return
        self._purged = time.monotonic()
        try:
            await self.purge()
        except Exception:  # noqa: BLE001 - housekeeping; the next minute tries again
            log.warning("rate limit purge failed", exc_info=True)

