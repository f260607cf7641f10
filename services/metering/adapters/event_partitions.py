"""Monthly partitions of ``metering.events``: created ahead of the events, and archived then dropped when old.

Creating: a month's partition is created by one transaction under an advisory lock (replicas take turns). When
the DEFAULT partition already holds rows of that month (events outside the months created ahead, or a restored
archive), they are moved: taken out of DEFAULT into a temporary table, the partition created, the rows put back,
all in the same transaction.

Archiving a month (docs/operations.md, "Event retention"), rerun-safe at every step: the partition is exported with
COPY to ``events_YYYY_MM.csv.gz`` (written to a temporary name, fsynced, renamed) with a manifest beside it (rows,
sha256), the file is read back and its rows counted, the month is recorded in ``metering.event_archives``, then
the partition is detached and dropped in one transaction that checks its row count again; lastly the month's
``event_keys`` are deleted in batches. A crash before the drop leaves the partition (the next run exports again,
replacing the file); after it, the complete archive and its record (the next run finishes the keys).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metering.domain.event_retention import (
    add_months,
    archive_file_name,
    partition_month,
    partition_name,
)

log = structlog.get_logger(__name__)

PARTITIONS_LOCK = "metering:event-partitions"
RETENTION_LOCK = "metering:event-retention"
COLUMNS = ("project_id", "event_id", "organisation_id", "metric", "value", "timestamp", "dimensions")
_KEY_BATCH = 10_000


@dataclass(frozen=True)
class ArchivedMonth:
    month: datetime
    path: Path
    rows: int
    sha256: str


class EventPartitions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _raw(self, conn):  # the asyncpg connection under SQLAlchemy's pool
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        return raw

    async def existing_months(self) -> set[datetime]:
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            names = await raw.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'metering.events'::regclass"
            )
        return {m for row in names if (m := partition_month(row[0])) is not None}

    async def default_months(self, before: datetime) -> set[datetime]:
        """The months of rows in the DEFAULT partition before ``before`` (a scan of DEFAULT, which is small)."""
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            rows = await raw.fetch(
                "SELECT DISTINCT date_trunc('month', timestamp, 'UTC') FROM metering.events_default"
                " WHERE timestamp < $1",
                before,
            )
        return {row[0].astimezone(UTC) for row in rows}

    async def archived_months(self) -> dict[datetime, tuple[datetime | None, datetime | None]]:
        """Recorded archives: month -> (dropped_at, keys_trimmed_at)."""
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            rows = await raw.fetch("SELECT month_start, dropped_at, keys_trimmed_at FROM metering.event_archives")
        return {row[0].astimezone(UTC): (row[1], row[2]) for row in rows}

    async def ensure_months(self, months: list[datetime]) -> list[datetime]:
        """Create the partitions of those months that have none; returns the months created."""
        created = []
        known = await self.existing_months()
        for month in months:
            if month in known:
                continue
            if await self._create_month(month):
                created.append(month)
        return created

    async def _create_month(self, month: datetime) -> bool:
        name, end = partition_name(month), add_months(month, 1)
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            async with raw.transaction():
                await raw.execute("SELECT pg_advisory_xact_lock(hashtext($1))", PARTITIONS_LOCK)
                exists = await raw.fetchval("SELECT to_regclass($1) IS NOT NULL", f"metering.{name}")
                if exists:
                    return False
                moved = await raw.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM metering.events_default WHERE timestamp >= $1 AND timestamp < $2)",
                    month, end,
                )
                if moved:
                    await raw.execute(
                        "CREATE TEMPORARY TABLE moving_events ON COMMIT DROP AS"
                        " WITH m AS (DELETE FROM metering.events_default WHERE timestamp >= $1 AND timestamp < $2"
                        " RETURNING *) SELECT * FROM m".replace("$1", _literal(month)).replace("$2", _literal(end))
                    )
                await raw.execute(
                    f"CREATE TABLE metering.{name} PARTITION OF metering.events"
                    f" FOR VALUES FROM ({_literal(month)}) TO ({_literal(end)})"
                )
                if moved:
                    await raw.execute("INSERT INTO metering.events SELECT * FROM moving_events")
        log.info("event partition created", partition=name, moved_from_default=moved)
        return True

    # -- archiving ------------------------------------------------------------------------------------------

    async def archive_month(
        self, month: datetime, directory: Path, *, crash_before_drop: bool = False
    ) -> ArchivedMonth:
        """Export the month's partition to a file, verify it, record it, drop the partition, trim its keys."""
        name, end = partition_name(month), add_months(month, 1)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        path = directory / archive_file_name(month)
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            await raw.execute("SET TIME ZONE 'UTC'")
            async with raw.transaction(isolation="repeatable_read", readonly=True):
                expected = await raw.fetchval(f"SELECT count(*) FROM metering.{name}")
                rows = await _export(raw, name, path)
        if rows != expected:
            raise RuntimeError(f"{name}: COPY wrote {rows} rows, the partition holds {expected}")
        read_back, digest = await asyncio.to_thread(_verify, path)
        if read_back != rows:
            raise RuntimeError(f"{path}: {read_back} rows read back, {rows} exported")
        await asyncio.to_thread(
            _write_atomically,
            directory / f"{partition_name(month)}.manifest.json",
            json.dumps({
                "month": month.strftime("%Y-%m"), "file": path.name, "rows": rows, "sha256": digest,
                "columns": list(COLUMNS), "format": "csv with header, gzip",
                "exported_at": datetime.now(UTC).isoformat(),
            }, indent=2).encode(),
        )
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            await raw.execute(
                "INSERT INTO metering.event_archives (month_start, month_end, file_name, row_count, sha256)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (month_start) DO UPDATE SET file_name = EXCLUDED.file_name,"
                " row_count = EXCLUDED.row_count, sha256 = EXCLUDED.sha256, exported_at = now()",
                month, end, path.name, rows, digest,
            )
            if crash_before_drop:
                raise RuntimeError("simulated crash between export and drop")
            async with raw.transaction():
                await raw.execute("SET LOCAL lock_timeout = '10s'")
                # Still exactly what the file holds (nothing arrived since the export), or no drop.
                now_count = await raw.fetchval(f"SELECT count(*) FROM metering.{name}")
                if now_count != rows:
                    raise RuntimeError(f"{name}: {now_count} rows now, {rows} archived; exported again next run")
                await raw.execute(f"ALTER TABLE metering.events DETACH PARTITION metering.{name}")
                await raw.execute(f"DROP TABLE metering.{name}")
                await raw.execute(
                    "UPDATE metering.event_archives SET dropped_at = now() WHERE month_start = $1", month
                )
        log.info("event partition archived and dropped", partition=name, rows=rows, file=str(path))
        await self.trim_keys(month)
        return ArchivedMonth(month, path, rows, digest)

    async def trim_keys(self, month: datetime) -> int:
        """Delete the month's deduplication keys in batches, then record it done."""
        end, deleted = add_months(month, 1), 0
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            while True:
                status = await raw.execute(
                    "DELETE FROM metering.event_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM metering.event_keys"
                    " WHERE timestamp >= $1 AND timestamp < $2 LIMIT $3))",
                    month, end, _KEY_BATCH,
                )
                count = int(status.split()[-1])
                deleted += count
                if count < _KEY_BATCH:
                    break
            await raw.execute(
                "UPDATE metering.event_archives SET keys_trimmed_at = now() WHERE month_start = $1", month
            )
        return deleted


def _literal(instant: datetime) -> str:
    return f"'{instant.astimezone(UTC).isoformat()}'::timestamptz"


async def _export(raw, partition: str, path: Path) -> int:
    """COPY the partition into ``path`` (gzip CSV with a header), atomically; returns the rows written."""
    temporary = path.with_name(f".{path.name}.tmp")
    # Chunks arrive from COPY a few at a time; writing them here, in a background job, is what streaming costs.
    with open(temporary, "wb") as file:  # noqa: ASYNC230
        with gzip.GzipFile(fileobj=file, mode="wb", mtime=0) as compressed:

            async def write(chunk: bytes) -> None:
                compressed.write(chunk)

            status = await raw.copy_from_query(
                f"SELECT {', '.join(COLUMNS)} FROM metering.{partition} ORDER BY timestamp, project_id, event_id",
                output=write, format="csv", header=True,
            )
        file.flush()
        os.fsync(file.fileno())
    await asyncio.to_thread(os.replace, temporary, path)
    await asyncio.to_thread(_fsync_directory, path.parent)
    return int(status.split()[-1])


def _verify(path: Path) -> tuple[int, str]:
    """Rows of the archive read back (CSV, header excluded) and the file's sha256."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with gzip.open(path, "rt", newline="", encoding="utf-8") as text:
        reader = csv.reader(text)
        header = next(reader)
        if tuple(header) != COLUMNS:
            raise RuntimeError(f"{path}: unexpected header {header}")
        rows = sum(1 for _ in reader)
    return rows, digest


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
