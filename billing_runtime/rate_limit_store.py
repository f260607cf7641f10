"""Rate limits over PostgreSQL (a service's ``<schema>.rate_limits``), shared by every replica of the service: a
check is one atomic statement (GCRA, ``billing_runtime/gcra.py``), timed by the database's clock, so replicas on
hosts whose clocks disagree still count alike. Idle keys (TAT in the past) are deleted at most once a minute per
process, on the way. The gateway keeps its staff-write and sign-in limits here, ingest its per-project event rates.

Neither ``limits`` nor ``pyrate-limiter`` is used (docs/security.md, "Rate limits"): ``limits`` keeps shared
state only in Redis, Memcached or MongoDB, which the platform does not run; ``pyrate-limiter``'s PostgreSQL bucket
brings a second driver and pool (psycopg) beside asyncpg and stores a row per admitted request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime import gcra
from billing_runtime.gcra import Backoff, Decision, Grant, Rate
from billing_runtime.logging import get_logger

log = get_logger(__name__)

_PURGE_EVERY_SECONDS = 60.0

_params = (sa.bindparam("interval", type_=sa.Interval), sa.bindparam("window", type_=sa.Interval))


def rate_limits_table(metadata: sa.MetaData) -> sa.Table:
    """The table in a service's schema: one GCRA timestamp per key, plus the lockouts in a row of a sign-in key.
    A row whose tat is past is idle and may be deleted at any time. Unlogged: no WAL per check; a crash (or a
    failover to a standby) empties it, which only gives every key its whole budget back."""
    return sa.Table(
        "rate_limits",
        metadata,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strikes", sa.Integer, nullable=False, server_default="0"),
        sa.Index("rate_limits_tat_idx", "tat"),
        prefixes=["UNLOGGED"],
    )


def create_rate_limits_table(op, schema: str) -> None:  # noqa: ANN001 - alembic's op
    """Create the table (and its index) in ``schema``; used by a service's migration."""
    rate_limits_table(sa.MetaData(schema=schema)).create(op.get_bind())


class PostgresRateLimits:
    def __init__(self, engine: AsyncEngine, schema: str = "gateway") -> None:
        if not schema.isidentifier():
            raise ValueError("a schema name is an identifier")
        table = f"{schema}.rate_limits"
        self._engine = engine
        self._purged = time.monotonic()
        # Admitted: the row's new TAT comes back. Refused: the WHERE of the update fails and nothing comes back.
        self._check = sa.text(
            f"""
            INSERT INTO {table} AS r (key, tat) VALUES (:key, now() + :interval)
            ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + :interval
            WHERE greatest(r.tat, now()) + :interval - now() <= :window
            RETURNING r.tat, now() AS now
            """
        ).bindparams(*_params)
        self._read = sa.text(f"SELECT tat, strikes, now() AS now FROM {table} WHERE key = :key")
        # Locks the key's row (creating an idle one) for a read-modify-write (a sign-in failure, a weighted take).
        self._lock = sa.text(
            f"""
            INSERT INTO {table} AS r (key, tat) VALUES (:key, now())
            ON CONFLICT (key) DO UPDATE SET key = excluded.key
            RETURNING r.tat, r.strikes, now() AS now
            """
        )
        self._write = sa.text(f"UPDATE {table} SET tat = :tat, strikes = :strikes WHERE key = :key")
        self._reset = sa.text(f"DELETE FROM {table} WHERE key = :key")
        self._purge = sa.text(f"DELETE FROM {table} WHERE tat < now()")

    async def check(self, key: str, rate: Rate) -> Decision:
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._check, {"key": key, "interval": rate.interval,
                                                    "window": rate.window})).first()
            if row is not None:
                decision = gcra.admitted(rate, row.tat, row.now)
            else:
                current = (await conn.execute(self._read, {"key": key})).first()
                decision = gcra.refused(rate, current.tat if current else None,
                                        current.now if current else datetime.now(UTC))
        await self._maybe_purge()
        return decision

    async def take(self, key: str, rate: Rate, need: int, want: int | None = None) -> Grant:
        """``gcra.take`` on the key's shared state: at least ``need`` units and up to ``want``, or none."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._lock, {"key": key})).one()
            grant = gcra.take(rate, row.tat, row.now, need, want)
            if grant.granted:
                await conn.execute(self._write, {"key": key, "tat": grant.tat, "strikes": row.strikes})
        await self._maybe_purge()
        return grant

    async def peek(self, key: str, rate: Rate) -> Decision:
        async with self._engine.connect() as conn:
            row = (await conn.execute(self._read, {"key": key})).first()
            now = row.now if row is not None else (await conn.execute(sa.text("SELECT now()"))).scalar_one()
        return gcra.peek(rate, row.tat if row is not None else None, now)

    async def fail(self, key: str, rate: Rate, max_backoff: timedelta) -> Decision:
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._lock, {"key": key})).one()
            state = gcra.fail(rate, Backoff(row.tat, row.strikes), row.now, max_backoff)
            await conn.execute(self._write, {"key": key, "tat": state.tat, "strikes": state.strikes})
        return gcra.peek(rate, state.tat, row.now)

    async def reset(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(self._reset, {"key": key})

    async def purge(self) -> int:
        """Delete idle keys; how many."""
        async with self._engine.begin() as conn:
            return (await conn.execute(self._purge)).rowcount

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._purged < _PURGE_EVERY_SECONDS:
            return
        self._purged = time.monotonic()
        try:
            await self.purge()
        except Exception:  # noqa: BLE001 - housekeeping; the next minute tries again
            log.warning("rate limit purge failed", exc_info=True)
