"""Invoice runs: closing a period for one organisation or all of them, in the background, with progress.

A run is a row with counts; its work is :class:`~services.invoicing.service.period_close.PeriodClose` batch by
batch. A run interrupted by a crash is still ``running`` in the table and is resumed when the service starts:
what it had issued counts as already invoiced the second time, so resuming is just running again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
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
from services.invoicing.service.ports import InvoiceRunRecord, InvoicingTransaction

log = get_logger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]


def previous_month_key(now: datetime) -> str:
    """The key of the calendar month before ``now``'s (in UTC): what the scheduler closes on the 1st."""
    year, month = now.year, now.month
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


class InvoiceRuns:
    def __init__(
        self,
        uow: Callable[[], InvoicingTransaction],
        close: PeriodClose,
        spawn: Spawn,
        *,
        batch_size: int = 200,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._close = close
        self._spawn = spawn
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
        """Start again every run a crash left ``running``; returns how many."""
        async with self._uow() as uow:
            runs = await uow.invoice_runs.running()
        for run in runs:
            log.info("invoice run resumed", run_id=run.id, period_key=run.period_key)
            self._spawn(self.execute(run.id), f"invoice-run-{run.id}")
        return len(runs)

    async def execute(self, run_id: str) -> None:
        """Close the run's period batch by batch, adding each batch's counts to the run as it goes."""
        async with self._uow() as uow:
            repository = uow.invoice_runs
            run = await repository.get(run_id)
            if run is None or run.state != "running":
                return
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
        with nothing left (organisations in zones west of UTC end their month later, so a run that found some
        not yet due is repeated until none is). Returns the run started, if any."""
        key = previous_month_key(self._clock())
        async with self._uow() as uow:
            latest = await uow.invoice_runs.latest_for(key, "scheduler")
        if latest is not None and (latest.state == "running" or (latest.state == "completed" and latest.not_due == 0
                                                                 and latest.failed == 0)):
            return None
        run, _ = await self.start(period_key=key, trigger="scheduler")
        return run


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
