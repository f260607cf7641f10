"""Event retention, run at start-up and then every interval (docs/operations.md, "Event retention").

Retention runs on one replica at a time (the winner of a session advisory lock): it first finishes any month a
crash left half deleted, then asks invoicing for the horizon and archives the months old enough and invoiced,
oldest first (adapters/event_archives.py: export, record, delete in batches, mark deleted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metering.adapters.event_archives import (
    RETENTION_LOCK,
    ArchivedMonth,
    ArchiveRecord,
    EventArchives,
)
from services.metering.domain.event_retention import add_months, archivable_months, day_slices, months_from

log = structlog.get_logger(__name__)


@dataclass
class RetentionOutcome:
    archived: list[ArchivedMonth] = field(default_factory=list)
    deletes_finished: list[datetime] = field(default_factory=list)
    refused: list[datetime] = field(default_factory=list)
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
        self._archives = EventArchives(engine)
        self._horizon = horizon
        self._enabled = enabled
        self._archive_dir = Path(archive_dir) if archive_dir else None
        self._min_age_days = min_age_days
        self._interval = interval_seconds

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
        records = await self._archives.records()
        for month, record in sorted(records.items()):
            if record.deleted_at is None:
                # A crash after the record: the archive is verified, the rest of the month's rows to delete.
                await self._delete(record)
                outcome.deletes_finished.append(month)
            elif await self._archives.has_rows(month):
                # Cannot happen (ingest refuses events older than 35 days, the month is >= 42 days old; a manual
                # restore is the one way): never deleted without an archive that holds them, never archived twice.
                log.error("archived month has events again; left alone", month=month.strftime("%Y-%m"))
                outcome.refused.append(month)
        horizon = await self._horizon()
        first = max((add_months(m, 1) for m in records), default=None) or await self._archives.first_stored_day()
        if first is None:
            return
        cutoff = now - timedelta(days=self._min_age_days)
        candidates = {m for m in months_from(first, cutoff) if m not in records and await self._archives.has_rows(m)}
        for month in archivable_months(candidates, now, self._min_age_days, horizon):
            archived = await self._archives.export_month(month, self._archive_dir)
            await self._archives.record(archived)
            record = (await self._archives.records())[month]
            await self._delete(record)
            outcome.archived.append(archived)
            log.info("event month archived and deleted", month=month.strftime("%Y-%m"), rows=archived.rows,
                     file=str(archived.path))

    async def _delete(self, record: ArchiveRecord) -> None:
        assert self._archive_dir is not None
        await self._archives.check_before_deleting(record, self._archive_dir)
        for start, end in day_slices(record.month):
            await self._archives.delete_slice(start, end)
        await self._archives.mark_deleted(record.month)

    async def run(self) -> None:
        """Start-up and then every interval. Failures are logged and retried (every step is rerun-safe)."""
        while True:
            try:
                outcome = await self.run_once()
                if outcome.archived or outcome.deletes_finished:
                    log.info(
                        "event retention ran",
                        archived=[a.month.strftime("%Y-%m") for a in outcome.archived],
                        deletes_finished=[m.strftime("%Y-%m") for m in outcome.deletes_finished],
                    )
            except Exception:  # noqa: BLE001 - rerun-safe; retried next interval
                log.exception("event retention failed")
            await asyncio.sleep(self._interval)
