"""Archiving a month of stored events: export to a file, record it, delete the month's rows in batches.

Each step is rerun-safe (docs/operations.md, "Event retention"):

1. Export: in one repeatable-read snapshot, count the month's rows and COPY them (ordered by timestamp, project_id,
   event_id) to ``events_YYYY_MM.csv.gz`` (gzip CSV with a header), written to a temporary name, fsynced and
   renamed; the file is read back and its rows counted, and ``events_YYYY_MM.manifest.json`` (rows, sha256) is
   written beside it. Any mismatch raises, nothing is recorded.
2. Record: a row in ``metering.event_archives`` (file, rows, sha256, exported_at). Only from here on may the
   month's rows be deleted; a crash before it means exporting again next run (replacing the file).
3. Delete: before deleting, the file is checked against the recorded sha256 and the rows left in the month must
   be no more than the recorded count; then the rows are deleted one UTC day at a time in batches of at most
   ``DELETE_BATCH`` rows, each its own short transaction (the BRIN index on timestamp finds them; the consumer's
   inserts touch other rows and are never waited for). A crash in the middle means deleting the rest next run.
4. Mark ``deleted_at``.

The deletes are bounded by the recorded month's range: only rows that the verified archive holds. They cannot be
rows that arrived after the export: ingest refuses events older than 35 days and a month is archived only once
its end is at least 42 days (default 62) old, so no event of it is accepted again.
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

from services.metering.domain.event_retention import add_months, archive_name

log = structlog.get_logger(__name__)

RETENTION_LOCK = "metering:event-retention"
COLUMNS = ("project_id", "event_id", "organisation_id", "metric", "value", "timestamp", "dimensions")
DELETE_BATCH = 10_000


@dataclass(frozen=True)
class ArchivedMonth:
    month: datetime
    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class ArchiveRecord:
    month: datetime
    file_name: str
    rows: int
    sha256: str
    deleted_at: datetime | None


class ArchiveMismatch(RuntimeError):
    """The database and an archive disagree: nothing is deleted."""


class EventArchives:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @staticmethod
    async def _raw(conn):  # the asyncpg connection under SQLAlchemy's pool
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        return raw

    async def records(self) -> dict[datetime, ArchiveRecord]:
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            rows = await raw.fetch(
                "SELECT month_start, file_name, row_count, sha256, deleted_at FROM metering.event_archives"
            )
        return {
            row[0].astimezone(UTC): ArchiveRecord(row[0].astimezone(UTC), row[1], row[2], row[3], row[4])
            for row in rows
        }

    async def first_stored_day(self) -> datetime | None:
        """The earliest UTC day with stored usage (usage_days folds every stored event); None when none."""
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            first = await raw.fetchval("SELECT min(day_start) FROM metering.usage_days")
        return first.astimezone(UTC) if first is not None else None

    async def has_rows(self, month: datetime) -> bool:
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            return await raw.fetchval(
                "SELECT EXISTS (SELECT 1 FROM metering.events WHERE timestamp >= $1 AND timestamp < $2)",
                month, add_months(month, 1),
            )

    async def count_rows(self, month: datetime) -> int:
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            return await raw.fetchval(
                "SELECT count(*) FROM metering.events WHERE timestamp >= $1 AND timestamp < $2",
                month, add_months(month, 1),
            )

    async def export_month(self, month: datetime, directory: Path) -> ArchivedMonth:
        """Step 1: the month's rows to a verified file and its manifest."""
        end, stem = add_months(month, 1), archive_name(month)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        path = directory / f"{stem}.csv.gz"
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            async with raw.transaction(isolation="repeatable_read", readonly=True):
                await raw.execute("SET LOCAL TIME ZONE 'UTC'")
                expected = await raw.fetchval(
                    "SELECT count(*) FROM metering.events WHERE timestamp >= $1 AND timestamp < $2", month, end
                )
                rows = await _export(raw, month, end, path)
        if rows != expected:
            raise ArchiveMismatch(f"{stem}: COPY wrote {rows} rows, the month holds {expected}")
        read_back, digest = await asyncio.to_thread(_verify, path)
        if read_back != rows:
            raise ArchiveMismatch(f"{path}: {read_back} rows read back, {rows} exported")
        manifest = {
            "month": month.strftime("%Y-%m"), "file": path.name, "rows": rows, "sha256": digest,
            "columns": list(COLUMNS), "format": "csv with header, gzip",
            "exported_at": datetime.now(UTC).isoformat(),
        }
        await asyncio.to_thread(
            _write_atomically, directory / f"{stem}.manifest.json", json.dumps(manifest, indent=2).encode()
        )
        return ArchivedMonth(month, path, rows, digest)

    async def record(self, archived: ArchivedMonth) -> None:
        """Step 2: from here on the month's rows may be deleted."""
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            await raw.execute(
                "INSERT INTO metering.event_archives (month_start, month_end, file_name, row_count, sha256)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (month_start) DO NOTHING",
                archived.month, add_months(archived.month, 1), archived.path.name, archived.rows, archived.sha256,
            )

    async def check_before_deleting(self, record: ArchiveRecord, directory: Path) -> None:
        """The recorded file is there with its checksum, and the month holds no more rows than it."""
        path = directory / record.file_name
        digest = await asyncio.to_thread(_sha256, path)
        if digest != record.sha256:
            raise ArchiveMismatch(f"{path}: sha256 {digest}, recorded {record.sha256}; nothing deleted")
        left = await self.count_rows(record.month)
        if left > record.rows:
            raise ArchiveMismatch(
                f"{archive_name(record.month)}: {left} rows stored, {record.rows} archived; nothing deleted"
            )

    async def delete_slice(self, start: datetime, end: datetime, batch: int = DELETE_BATCH) -> int:
        """Step 3 for one slice of a recorded month: its rows deleted in batches, each its own transaction."""
        deleted = 0
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            while True:
                status = await raw.execute(
                    "DELETE FROM metering.events WHERE ctid = ANY(ARRAY(SELECT ctid FROM metering.events"
                    " WHERE timestamp >= $1 AND timestamp < $2 LIMIT $3))",
                    start, end, batch,
                )
                count = int(status.split()[-1])
                deleted += count
                if count < batch:
                    return deleted

    async def mark_deleted(self, month: datetime) -> None:
        """Step 4."""
        async with self._engine.connect() as conn:
            raw = await self._raw(conn)
            await raw.execute(
                "UPDATE metering.event_archives SET deleted_at = now() WHERE month_start = $1 AND deleted_at IS NULL",
                month,
            )


async def _export(raw, start: datetime, end: datetime, path: Path) -> int:
    """COPY the month's rows into ``path`` (gzip CSV with a header), atomically; returns the rows written."""
    temporary = path.with_name(f".{path.name}.tmp")
    # Chunks arrive from COPY a few at a time; writing them here, in a background job, is what streaming costs.
    with open(temporary, "wb") as file:  # noqa: ASYNC230
        with gzip.GzipFile(fileobj=file, mode="wb", mtime=0) as compressed:

            async def write(chunk: bytes) -> None:
                compressed.write(chunk)

            status = await raw.copy_from_query(
                f"SELECT {', '.join(COLUMNS)} FROM metering.events WHERE timestamp >= $1 AND timestamp < $2"
                " ORDER BY timestamp, project_id, event_id",
                start, end, output=write, format="csv", header=True,
            )
        file.flush()
        os.fsync(file.fileno())
    await asyncio.to_thread(os.replace, temporary, path)
    await asyncio.to_thread(_fsync_directory, path.parent)
    return int(status.split()[-1])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path) -> tuple[int, str]:
    """Rows of the archive read back (CSV, header excluded) and the file's sha256."""
    digest = _sha256(path)
    with gzip.open(path, "rt", newline="", encoding="utf-8") as text:
        reader = csv.reader(text)
        header = next(reader)
        if tuple(header) != COLUMNS:
            raise ArchiveMismatch(f"{path}: unexpected header {header}")
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
