"""The usage quota checks read, kept in memory: a ``QuotaBook`` per metering process.

For every (organisation, metric code, billing period) a check has asked about, the book keeps the metric's
usage over the period (what ``GetUsageTotals`` answers) and when it was read. Invariants:

- **Lag bound.** A value is served only while ``max_lag`` has not passed since the read that produced it
  *started* (everything metering committed before that moment is in it). A background loop re-reads every
  tracked pair every ``refresh_interval`` in one batched read, so values normally stay well inside the bound; if
  the loop falls behind (a slow database), a check reads synchronously rather than serve an older value.
- **One read at a time per pair.** Concurrent checks of a pair that must be read share one read.
- **Idle pairs are dropped** after ``idle_seconds`` without a check; a later check reads them again.
- **First overage.** When usage of a pair with a known limit is seen over it and the book does not know when
  that first happened, the moment is recorded (``OverageLog``: the earliest stored wins, so replicas agree) and
  the stored moment is what grace is measured from.

The hot path (``fresh``) is a dict lookup and a clock read: no await, no lock, no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from prometheus_client import Counter, Histogram

from billing_runtime.logging import get_logger

log = get_logger(__name__)

USAGE_READS = Counter(
    "billing_metering_quota_usage_reads_total",
    "Reads of quota usage: refresh (the background loop, one batch) or sync (a check that found no fresh value).",
    ["kind"],
)
USAGE_READ_SECONDS = Histogram(
    "billing_metering_quota_usage_read_seconds",
    "Time of one batched read of quota usage; refresh interval + this is how far checks lag metering.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
_REFRESH_READS, _SYNC_READS = USAGE_READS.labels("refresh"), USAGE_READS.labels("sync")


class UsageKey(NamedTuple):
    organisation_id: str
    metric_code: str
    period_start: datetime
    period_end: datetime


class UsageReader(Protocol):
    async def read(self, keys: Sequence[UsageKey]) -> list[Decimal]:
        """Usage over each key's period, in order, in one batched read; 0 when no metric defines the code."""
        ...


class OverageLog(Protocol):
    async def record(self, observed: Sequence[tuple[UsageKey, Decimal, datetime]]) -> dict[UsageKey, datetime]:
        """Store when usage of each pair was first seen over a limit (key, limit, moment) unless a moment is stored
        already for that pair and limit; answer the stored (earliest recorded) moment of each."""
        ...


class Usage:
    """What the book knows of one pair."""

    __slots__ = ("first_over", "last_used", "limit", "read_at", "usage_time", "used")

    def __init__(self, used: Decimal, read_at: float, usage_time: datetime, last_used: float) -> None:
        self.used = used
        self.read_at = read_at  # monotonic clock when the read started
        self.usage_time = usage_time  # the same moment on the wall clock: usage is metered up to here
        self.last_used = last_used
        self.limit: Decimal | None = None  # the quota's limit the last check saw (None: no quota)
        self.first_over: datetime | None = None  # when usage first went over that limit in the period


class QuotaBook:
    def __init__(
        self,
        reader: UsageReader,
        overages: OverageLog,
        *,
        max_lag: float = 0.5,
        refresh_interval: float = 0.2,
        idle_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 0 < refresh_interval < max_lag:
            raise ValueError("the refresh interval must be positive and shorter than the lag bound")
        self._reader = reader
        self._overages = overages
        self.max_lag = max_lag
        self._interval = refresh_interval
        self._idle = idle_seconds
        self._clock = clock
        self._wall = wall
        self._entries: dict[UsageKey, Usage] = {}
        # Reads under way: key -> (monotonic start, the read's task).
        self._reading: dict[UsageKey, tuple[float, asyncio.Future[dict[UsageKey, Usage]]]] = {}
        self._recording: dict[UsageKey, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: UsageKey) -> Usage | None:
        """The pair's usage if read within the lag bound, else None. The hot path: no await, no I/O."""
        entry = self._entries.get(key)
        if entry is not None:
            now = self._clock()
            if now - entry.read_at <= self.max_lag:
                entry.last_used = now
                return entry
        return None

    async def usage(self, keys: Sequence[UsageKey]) -> list[Usage]:
        """Usage of every key within the lag bound: from memory, or read now (what is missing in one read,
        sharing reads already under way that started recently enough)."""
        found: list[Usage | None] = [self.fresh(key) for key in keys]
        if all(entry is not None for entry in found):
            return found  # type: ignore[return-value]
        now = self._clock()
        waits: dict[UsageKey, asyncio.Future[dict[UsageKey, Usage]]] = {}
        to_read: list[UsageKey] = []
        for key, entry in zip(keys, found, strict=True):
            if entry is not None or key in waits:
                continue
            under_way = self._reading.get(key)
            if under_way is not None and now - under_way[0] <= self.max_lag:
                waits[key] = under_way[1]
            elif key not in to_read:
                to_read.append(key)
        if to_read:
            _SYNC_READS.inc()
            read = self._start_read(to_read, now)
            for key in to_read:
                waits[key] = read
        for future in set(waits.values()):
            await asyncio.shield(future)
        answers = []
        for key, entry in zip(keys, found, strict=True):
            if entry is None:
                entry = (await waits[key])[key]
                entry.last_used = self._clock()
            answers.append(entry)
        return answers

    async def first_over(self, key: UsageKey, entry: Usage, limit: Decimal | None) -> datetime | None:
        """When usage of the pair first went over ``limit`` in the period, recording it if it just did; None
        while it has not. Remembers the limit so the background loop records later overages too."""
        if limit != entry.limit:  # a plan change: an overage of another limit says nothing about this one
            entry.limit, entry.first_over = limit, None
        if limit is None or entry.first_over is not None or entry.used <= limit:
            return entry.first_over
        pending = self._recording.get(key)
        try:
            if pending is None:
                await self._record([(key, limit, entry.usage_time)])
            else:
                await asyncio.shield(pending)
        except Exception as error:  # noqa: BLE001 - the check still answers; grace counts from now
            log.warning("could not record a quota overage", organisation_id=key.organisation_id,
                        metric_code=key.metric_code, error=str(error) or repr(error))
        return entry.first_over

    def _start_read(self, keys: list[UsageKey], started: float) -> asyncio.Future[dict[UsageKey, Usage]]:
        """Begin one batched read of ``keys``; registered at once, so checks arriving meanwhile share it."""
        future: asyncio.Future[dict[UsageKey, Usage]] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._reading[key] = (started, future)
        task = asyncio.ensure_future(self._read(keys, started))

        def settle(task: asyncio.Task[dict[UsageKey, Usage]]) -> None:
            for key in keys:
                if self._reading.get(key, (0.0, None))[1] is future:
                    del self._reading[key]
            if task.cancelled():
                future.cancel()
            elif (error := task.exception()) is not None:
                future.set_exception(error)
                future.exception()  # marked retrieved: whoever waits raises it
            else:
                future.set_result(task.result())

        task.add_done_callback(settle)
        return future

    async def _read(self, keys: list[UsageKey], started: float) -> dict[UsageKey, Usage]:
        usage_time = self._wall()
        with USAGE_READ_SECONDS.time():
            values = await self._reader.read(keys)
        result = {key: self._store(key, used, started, usage_time) for key, used in zip(keys, values, strict=True)}
        over = [(key, entry.limit, entry.usage_time) for key, entry in result.items()
                if entry.limit is not None and entry.first_over is None and entry.used > entry.limit
                and key not in self._recording]
        if over:
            await self._record(over)
        return result

    def _store(self, key: UsageKey, used: Decimal, started: float, usage_time: datetime) -> Usage:
        entry = self._entries.get(key)
        if entry is None:
            entry = Usage(used, started, usage_time, started)
            self._entries[key] = entry
        elif started >= entry.read_at:  # a slower, older read never overwrites a newer one
            entry.used, entry.read_at, entry.usage_time = used, started, usage_time
        return entry

    async def _record(self, observed: list[tuple[UsageKey, Decimal, datetime]]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key, _, _ in observed:
            self._recording[key] = future
        try:
            stored = await self._overages.record(observed)
            limits = {key: limit for key, limit, _ in observed}
            for key, moment in stored.items():
                entry = self._entries.get(key)
                if entry is not None and entry.limit == limits[key]:
                    entry.first_over = moment
        finally:
            for key, _, _ in observed:
                if self._recording.get(key) is future:
                    del self._recording[key]
            future.set_result(None)  # waiters re-read entry.first_over (still None if recording failed)

    async def refresh(self) -> None:
        """One round of the background loop: drop idle pairs, re-read the rest in one batch."""
        now = self._clock()
        idle = [key for key, entry in self._entries.items() if now - entry.last_used > self._idle]
        for key in idle:
            del self._entries[key]
        keys = list(self._entries)
        if keys:
            _REFRESH_READS.inc()
            await asyncio.shield(self._start_read(keys, now))

    async def run(self) -> None:
        """Refresh every ``refresh_interval`` (from the start of one read to the next) for the life of the service;
        a failed round is logged and the next one tries again (meanwhile checks read synchronously)."""
        while True:
            started = self._clock()
            try:
                await self.refresh()
            except Exception as error:  # noqa: BLE001 - the loop must outlive a database hiccup
                log.warning("quota usage refresh failed", error=str(error) or repr(error), pairs=len(self._entries))
            with contextlib.suppress(Exception):
                await asyncio.sleep(max(0.0, started + self._interval - self._clock()))
