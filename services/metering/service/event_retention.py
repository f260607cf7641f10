"""Event partitions and retention, run at start-up and then every interval (docs/operations.md).

Every replica keeps the partitions ahead of the events (creating one is serialised by an advisory lock, and a
no-op when another replica made it). Retention runs on one replica at a time (the winner of a session advisory
lock): it asks invoicing for the horizon, archives the months old enough and invoiced, oldest first, and finishes
any month a crash left half done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metering.adapters.event_partitions import RETENTION_LOCK, ArchivedMonth, EventPartitions
from services.metering.domain.event_retention import archivable_months, months_to_create

log = structlog.get_logger(__name__)


@dataclass
class RetentionOutcome:
    created: list[datetime] = field(default_factory=list)
    archived: list[ArchivedMonth] = field(default_factory=list)
    keys_finished: list[datetime] = field(default_factory=list)
    skipped: str = ""


class EventRetention:
    def __init__(
        self,
        engine: AsyncEngine,
        horizon: Callable[[], Awaitable[datetime | None]],
        *,
        enabled: bool,
        archive_dir: str,
        min_age_days: int,
        interval_seconds: float = 3600.0,
    ) -> None:
        self._engine = engine
        self._partitions = EventPartitions(engine)
        self._horizon = horizon
        self._enabled = enabled
        self._archive_dir = Path(archive_dir) if archive_dir else None
        self._min_age_days = min_age_days
        self._interval = interval_seconds

    async def maintain_partitions(self, now: datetime | None = None) -> list[datetime]:
        now = now or datetime.now(UTC)
        return await self._partitions.ensure_months(months_to_create(now, self._min_age_days))

    async def run_once(self, now: datetime | None = None) -> RetentionOutcome:
        """Archive what may be archived now; a no-op on the replicas that lose the lock."""
        now = now or datetime.now(UTC)
        outcome = RetentionOutcome()
        if not self._enabled or self._archive_dir is None:
            outcome.skipped = "disabled" if not self._enabled else "no archive directory"
            return outcome
        async with self._engine.connect() as lock:
            won = await lock.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": RETENTION_LOCK})
            if not won.scalar():
                outcome.skipped = "another replica runs retention"
                return outcome
            try:
                await self._run_locked(now, outcome)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": RETENTION_LOCK})
                await lock.commit()
        return outcome

    async def _run_locked(self, now: datetime, outcome: RetentionOutcome) -> None:
        assert self._archive_dir is not None
        archived = await self._partitions.archived_months()
        # A crash after the drop: the archive is complete, the keys remain to delete.
        for month, (dropped_at, trimmed_at) in sorted(archived.items()):
            if dropped_at is not None and trimmed_at is None:
                await self._partitions.trim_keys(month)
                outcome.keys_finished.append(month)
        horizon = await self._horizon()
        candidates = await self._partitions.existing_months() | await self._partitions.default_months(now)
        for month in archivable_months(candidates, now, self._min_age_days, horizon):
            if archived.get(month, (None, None))[0] is not None:
                # Archived and dropped before, yet back (a restore): never overwrite the archive.
                log.warning("archived month has events again; not archived twice", month=month.isoformat())
                continue
            await self._partitions.ensure_months([month])  # rows still in DEFAULT get their partition
            outcome.archived.append(await self._partitions.archive_month(month, self._archive_dir))

    async def run(self) -> None:
        """Start-up and then every interval: partitions ahead, then retention. Failures are logged and retried."""
        while True:
            try:
                await self.maintain_partitions()
            except Exception:  # noqa: BLE001 - retried next interval; DEFAULT catches events meanwhile
                log.exception("event partition maintenance failed")
            try:
                outcome = await self.run_once()
                if outcome.archived:
                    log.info("event retention archived", months=[a.month.strftime("%Y-%m") for a in outcome.archived])
            except Exception:  # noqa: BLE001 - rerun-safe; retried next interval
                log.exception("event retention failed")
            await asyncio.sleep(self._interval)
