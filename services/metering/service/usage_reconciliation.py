"""Usage reconciliation: a run compares, for a window of acceptance time,

1. the distinct events ingest accepted (its stream, BILLING_INGEST) with those metering stores, per project and hour
   of the events' timestamps, once metering's consumer has acknowledged past the window's last message (so a
   missing event is lost, not late);
2. the 15-minute buckets of those hours (and of the window's own hours) with a recomputation from stored events,
   and the UTC days they fall in with the sum of their buckets;

and stores a report. ``UsageReconciliation.run_scheduled`` runs the previous full hour (and the few before it that
have no finished report) once across replicas; ``run_on_demand`` any window up to 24 hours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument, NotFound, Unavailable
from billing_runtime.logging import get_logger
from services.metering.adapters.accepted_stream import AcceptedStream, WindowAgedOut
from services.metering.adapters.messages import decode_event_batch
from services.metering.adapters.usage_reconciliation import AcceptedEvents, ReconciliationRepository
from services.metering.config import MeteringSettings
from services.metering.domain.event_batch import PoisonBatch
from services.metering.domain.usage_reconciliation import (
    HOUR,
    DiscrepancyKind,
    Findings,
    ReconciliationStatus,
    Report,
    Window,
    check_window,
    compare_aggregates,
    hour_of,
    previous_hour,
)

log = get_logger(__name__)

DISCREPANCIES = Gauge(
    "billing_metering_usage_reconciliation_discrepancies",
    "Discrepancies of the latest finished usage reconciliation (missing events and aggregate mismatches).",
)
RUNS = Counter(
    "billing_metering_usage_reconciliation_runs_total",
    "Usage reconciliation runs, by result: clean, discrepancies, metering_behind, failed.",
    ["result"],
)
# Events sent to PostgreSQL's temp table per statement.
_FLUSH_EVENTS = 5_000


class UsageReconciliation:
    def __init__(
        self,
        repository: ReconciliationRepository,
        stream: AcceptedStream | None,
        settings: MeteringSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repository = repository
        self._stream = stream
        self._settings = settings
        self._clock = clock

    # -- runs -----------------------------------------------------------------------------------------------

    async def run_on_demand(self, start: datetime | None, end: datetime | None) -> Report:
        window = check_window(start, end, self._clock())
        if self._stream is None:
            raise Unavailable("NATS is not connected yet")
        report_id = await self._repository.start_on_demand(window, self._clock())
        await self._run(report_id, window)
        report = await self._repository.get(report_id)
        assert report is not None
        return report

    async def run_scheduled(self) -> list[str]:
        """Claim and run the windows due: the previous full hour (``delay`` after its end) and the ones before it
        within the look-back that have no finished report. Returns the ids of the reports this process ran."""
        now = self._clock()
        latest = previous_hour(now, timedelta(seconds=self._settings.usage_reconciliation_delay_seconds))
        ran = []
        for back in range(self._settings.usage_reconciliation_lookback_hours):
            window = Window(latest.start - back * HOUR, latest.end - back * HOUR)
            stale = timedelta(seconds=self._settings.usage_reconciliation_stale_seconds)
            report_id = await self._repository.claim_scheduled(window, self._clock(), stale)
            if report_id is not None:
                await self._run(report_id, window)
                ran.append(report_id)
        await self.refresh_gauge()
        return ran

    async def refresh_gauge(self) -> None:
        """The gauge shows the latest finished report, whichever replica ran it."""
        latest = await self._repository.latest_finished_discrepancies()
        DISCREPANCIES.set(latest or 0)

    async def _run(self, report_id: str, window: Window) -> None:
        findings = Findings()
        try:
            status = await self._compare(window, findings)
            error = ""
        except asyncio.CancelledError:
            raise
        except WindowAgedOut as aged:
            status, error = ReconciliationStatus.FAILED, str(aged)
        except Exception as failure:  # noqa: BLE001 - stored in the report and counted; the next run tries again
            log.exception("usage reconciliation failed", report=report_id)
            status, error = ReconciliationStatus.FAILED, f"{type(failure).__name__}: {failure}"
        await self._repository.finish(report_id, status, findings, self._clock(), error)
        RUNS.labels(status.value).inc()
        if status in (ReconciliationStatus.CLEAN, ReconciliationStatus.DISCREPANCIES):
            DISCREPANCIES.set(findings.totals.discrepancies)
        log.info("usage reconciliation finished", report=report_id, status=status.value,
                 window_start=window.start.isoformat(), discrepancies=findings.totals.discrepancies, error=error)

    async def _compare(self, window: Window, findings: Findings) -> ReconciliationStatus:
        assert self._stream is not None
        async with self._repository.connection() as conn:
            accepted = AcceptedEvents(conn)
            await accepted.open()
            try:
                last = await self._read_window(accepted, window, findings)
                if last and not await self._stream.wait_acknowledged(
                    last, self._settings.usage_reconciliation_wait_seconds
                ):
                    return ReconciliationStatus.METERING_BEHIND
                counts = await accepted.stored_per_hour()
            finally:
                await accepted.close()
        findings.add_counts(counts)
        hours = sorted({c.hour for c in counts} | set(_hours(window)))
        findings.add_aggregates(compare_aggregates(DiscrepancyKind.BUCKET_MISMATCH,
                                                   *await self._repository.bucket_sides(hours)))
        findings.add_aggregates(compare_aggregates(DiscrepancyKind.DAY_MISMATCH,
                                                   *await self._repository.day_sides(hours)))
        return findings.status

    async def _read_window(self, accepted: AcceptedEvents, window: Window, findings: Findings) -> int:
        """Put the window's accepted events into the temp table; returns the last stream sequence read (0: none)."""
        assert self._stream is not None
        last = 0
        columns: tuple[list[str], list[str], list[str], list[int]] = ([], [], [], [])
        async for message in self._stream.read(window.start, window.end):
            last = message.sequence
            findings.totals.messages += 1
            try:
                batch = decode_event_batch(message.payload)
            except PoisonBatch:
                continue  # never stored: the dead letters show it
            columns[0].extend(batch.organisation_ids)
            columns[1].extend(batch.project_ids)
            columns[2].extend(batch.event_ids)
            columns[3].extend(hour_of(us) for us in batch.timestamps_us)
            if len(columns[2]) >= _FLUSH_EVENTS:
                await accepted.add(*columns)
                columns = ([], [], [], [])
        if columns[2]:
            await accepted.add(*columns)
        return last

    # -- reading reports ------------------------------------------------------------------------------------

    async def get(self, report_id: str) -> Report:
        if not report_id:
            raise InvalidArgument("is required", field="id")
        report = await self._repository.get(report_id[:100])
        if report is None:
            raise NotFound("no usage reconciliation with this id")
        return report

    async def list(self, page_size: int, page_token: str) -> tuple[list[Report], str]:
        """Newest first."""
        size = paging.page_size(page_size)
        before = paging.page_after(page_token)
        rows = await self._repository.list(size + 1, before)
        return paging.split_page(rows, size)

    # -- the schedule ---------------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Every ``usage_reconciliation_check_seconds``: run the due windows (one replica each)."""
        while True:
            try:
                await self.run_scheduled()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the database away: try at the next check
                log.warning("usage reconciliation check failed", error=str(error) or repr(error))
            await asyncio.sleep(self._settings.usage_reconciliation_check_seconds)


def _hours(window: Window) -> list[datetime]:
    start = window.start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while start < window.end:
        hours.append(start)
        start += HOUR
    return hours
