"""Invoice runs: closing a period for one organisation or all of them, in the background, with progress.

A run is a row with counts; its work is :class:`~services.invoicing.service.period_close.PeriodClose` batch by
batch. A run interrupted by a crash is still ``running`` in the table and is resumed when the service starts:
what it had issued counts as already invoiced the second time, so resuming is just running again.

With replicas, one process executes a run at a time (:class:`RunLocks`): a replica starting while another
executes a run leaves it alone instead of running it a second time beside it (which would zero its counts mid-run
and count its invoices twice, once as invoiced and once as already invoiced). The scheduler's runs are keyed by the
run they follow, so replicas checking at the same moment start one run between them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.invoicing.domain.billing_period import parse_period_key
from services.invoicing.domain.organisation import Organisation
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.period_close import PeriodClose
from services.invoicing.service.ports import InvoiceRunRecord, InvoicingTransaction, RunLocks

log = get_logger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]


def previous_month_key(now: datetime) -> str:
    """The key of the calendar month before ``now``'s (in UTC): what the scheduler closes on the 1st."""
    year, month = now.year, now.month
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


class ProcessRunLocks:
    """Run locks within one process only: enough with a single replica (and for tests); several replicas need
    locks they share (the PostgreSQL adapter)."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    @asynccontextmanager
    async def hold(self, run_id: str) -> AsyncIterator[bool]:
        if run_id in self._held:
            yield False
            return
        self._held.add(run_id)
        try:
            yield True
        finally:
            self._held.discard(run_id)


class InvoiceRuns:
    def __init__(
        self,
        uow: Callable[[], InvoicingTransaction],
        close: PeriodClose,
        spawn: Spawn,
        *,
        locks: RunLocks | None = None,
        batch_size: int = 200,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._close = close
        self._spawn = spawn
        self._locks: RunLocks = locks if locks is not None else ProcessRunLocks()
        self._batch_size = batch_size
        self._clock = clock

    async def start(
        self, *, period_key: str, organisation_id: str = "", trigger: str = "api", idempotency_key: str = ""
    ) -> tuple[InvoiceRunRecord, bool]:
        """Record a run and start it in the background. (run, created); the same idempotency key returns the
        first run without starting another."""
        try:
            parse_period_key(period_key)
        except InvalidArgument as error:
            raise InvalidArgument(error.message, field="period_key") from None
        async with self._uow() as uow:
            if organisation_id and await uow.organisations.get(organisation_id) is None:
                raise NotFound(f"no organisation with id {organisation_id!r}")
            run, created = await uow.invoice_runs.add(
                new_id("run"),
                period_key,
                organisation_id,
                trigger,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint({"period_key": period_key, "organisation_id": organisation_id}),
            )
        if created:
            self._spawn(self.execute(run.id), f"invoice-run-{run.id}")
            log.info("invoice run started", run_id=run.id, period_key=period_key,
                     organisation_id=organisation_id or "all", trigger=trigger)
        return run, created

    async def resume_interrupted(self) -> int:
        """Start again every run left ``running`` that no live process executes (a crash's); returns how many
        were found running (those another replica executes are left to it)."""
        async with self._uow() as uow:
            runs = await uow.invoice_runs.running()
        for run in runs:
            self._spawn(self.execute(run.id, resumed=True), f"invoice-run-{run.id}")
        return len(runs)

    async def execute(self, run_id: str, *, resumed: bool = False) -> None:
        """Close the run's period batch by batch, adding each batch's counts to the run as it goes; nothing when
        another process executes it."""
        async with self._locks.hold(run_id) as held:
            if not held:
                log.info("invoice run executed by another process", run_id=run_id)
                return
            await self._execute(run_id, resumed)

    async def _execute(self, run_id: str, resumed: bool) -> None:
        async with self._uow() as uow:
            repository = uow.invoice_runs
            run = await repository.get(run_id)
            if run is None or run.state != "running":
                return  # finished by another process before this one took the lock
            if resumed:
                log.info("invoice run resumed", run_id=run.id, period_key=run.period_key)
            await repository.reset_counts(run_id)
            total = 1 if run.organisation_id else await uow.organisations.count()
            await repository.set_total(run_id, total)
        started = self._clock()
        state = "completed"
        try:
            after: str | None = None
            while True:
                batch = await self._next_batch(run.organisation_id, after)
                if not batch:
                    break
                progress = await self._close.close_batch(batch, run.period_key, run_id=run_id)
                async with self._uow() as uow:
                    await uow.invoice_runs.add_progress(run_id, progress)
                after = batch[-1].id
                if run.organisation_id:
                    break
        except Exception:  # noqa: BLE001 - a run that breaks is marked failed, and can be started again
            state = "failed"
            log.exception("invoice run failed", run_id=run_id)
        async with self._uow() as uow:
            await uow.invoice_runs.finish(run_id, state, self._clock())
            finished = await uow.invoice_runs.get(run_id)
        assert finished is not None
        log.info("invoice run finished", run_id=run_id, state=state, period_key=run.period_key,
                 seconds=round((self._clock() - started).total_seconds(), 3), invoiced=finished.invoiced,
                 already_invoiced=finished.already_invoiced, not_due=finished.not_due,
                 no_subscription=finished.no_subscription, failed=finished.failed)

    async def _next_batch(self, organisation_id: str, after: str | None) -> list[Organisation]:
        async with self._uow() as uow:
            repository = uow.organisations
            if organisation_id:
                organisation = await repository.get(organisation_id)
                return [organisation] if organisation else []
            return await repository.list(limit=self._batch_size, after=after)

    async def scheduled_close(self) -> InvoiceRunRecord | None:
        """What the scheduler does: close the previous calendar month unless a scheduled run of it finished
        with nothing left (organisations in zones west of UTC end their month later, and drafts in their grace
        period are priced again, so a run that found some not yet due is repeated until none is). An earlier
        period that still has drafts (a grace period reaching past the month after it) is run the same way.
        Returns the first run started, if any."""
        key = previous_month_key(self._clock())
        async with self._uow() as uow:
            older = [k for k in await uow.invoices.draft_period_keys() if k < key]
        started = None
        for period_key in [key, *older]:
            run = await self._scheduled_close_of(period_key)
            started = started or run
        return started

    async def _scheduled_close_of(self, key: str) -> InvoiceRunRecord | None:
        async with self._uow() as uow:
            latest = await uow.invoice_runs.latest_for(key, "scheduler")
        if latest is not None and (latest.state == "running" or (latest.state == "completed" and latest.not_due == 0
                                                                 and latest.failed == 0)):
            return None
        # Keyed by the run it follows: replicas that check at the same moment start one run between them.
        after = latest.id if latest is not None else "none"
        run, created = await self.start(period_key=key, trigger="scheduler", idempotency_key=f"scheduler:{key}:{after}")
        return run if created else None


async def get_run(uow: InvoicingTransaction, run_id: str) -> InvoiceRunRecord:
    if not run_id:
        raise InvalidArgument("is required", field="invoice_run_id")
    async with uow:
        run = await uow.invoice_runs.get(run_id)
    if run is None:
        raise NotFound(f"no invoice run with id {run_id!r}")
    return run


async def list_runs(
    uow: InvoicingTransaction, page_size: int, page_token: str
) -> tuple[list[InvoiceRunRecord], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        rows = await uow.invoice_runs.list(limit=size + 1, before=before)
    return paging.split_page(rows, size)
