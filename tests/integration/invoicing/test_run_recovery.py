"""Invoice runs survive interruption: a run a crash left running is resumed, a draft stored but never issued is
issued by the next run (not billed twice), and the scheduler closes last month once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial

import pytest
import sqlalchemy as sa

from billing.invoicing.v1 import invoicing_pb2 as pb
from services.invoicing.adapters.repository import OrganisationRepository
from services.invoicing.adapters.run_locks import PostgresRunLocks
from services.invoicing.adapters.tables import invoice_runs
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.service.invoice_runs import InvoiceRuns
from tests.integration.invoicing.conftest import invoices_of
from tests.integration.invoicing.test_invoice_runs import billed_organisation


async def wait_finished(invoicing, run_id: str) -> sa.Row:
    for _ in range(600):
        async with invoicing.engine.connect() as conn:
            run = (await conn.execute(sa.select(invoice_runs).where(invoice_runs.c.id == run_id))).one()
        if run.state != "running":
            return run
        await asyncio.sleep(0.05)
    pytest.fail(f"run {run_id} did not finish")


async def test_a_run_left_running_by_a_crash_is_resumed(invoicing, invoicing_stub, metering, metering_stub, jetstream,
                                                        period_close):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    async with invoicing.engine.begin() as conn:
        await conn.execute(
            sa.insert(invoice_runs).values(
                id="run_01KCRASHEDRUN0000000000000", period_key="2026-10", organisation_id=organisation_id,
                state="running", trigger="api",
            )
        )
    _, runs = period_close
    assert await runs.resume_interrupted() >= 1
    run = await wait_finished(invoicing, "run_01KCRASHEDRUN0000000000000")
    assert (run.state, run.invoiced) == ("completed", 1)
    assert len(await invoices_of(invoicing_stub, organisation_id)) == 1


async def test_a_draft_stored_before_a_crash_is_issued_by_the_next_run_and_billed_once(
    invoicing, invoicing_stub, metering, metering_stub, jetstream, period_close, monkeypatch
):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    close, _ = period_close

    async def crash(draft_ids):
        raise ConnectionError("the process died between storing and issuing")

    with monkeypatch.context() as patch:
        patch.setattr(close, "issue", crash)
        async with invoicing.uow() as uow:
            domain_organisation = await OrganisationRepository(uow.connection).get(organisation_id)
        with pytest.raises(ConnectionError):
            await close.close_batch([domain_organisation], "2026-10")
    (draft,) = await invoices_of(invoicing_stub, organisation_id)
    assert draft.status == pb.INVOICE_STATUS_DRAFT and draft.number == ""

    started = await invoicing_stub.StartInvoiceRun(
        pb.StartInvoiceRunRequest(period_key="2026-10", organisation_id=organisation_id)
    )
    run = await wait_finished(invoicing, started.invoice_run.id)
    assert (run.invoiced, run.already_invoiced, run.failed) == (1, 0, 0)
    (issued,) = await invoices_of(invoicing_stub, organisation_id)
    assert issued.id == draft.id and issued.status == pb.INVOICE_STATUS_ISSUED and issued.number


async def test_the_scheduler_closes_the_previous_month_once(invoicing, invoicing_stub, metering, metering_stub,
                                                             jetstream, period_close):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    close, _ = period_close
    on_the_first = InvoiceRuns(
        partial(InvoicingUnitOfWork, invoicing.engine), close, lambda coro, name: invoicing.spawn(coro, name=name),
        clock=lambda: datetime(2026, 11, 1, 0, 5, tzinfo=UTC),
    )
    started = await on_the_first.scheduled_close()
    assert started is not None and (started.period_key, started.trigger) == ("2026-10", "scheduler")
    assert await on_the_first.scheduled_close() is None  # still running
    finished = await wait_finished(invoicing, started.id)
    assert finished.state == "completed"
    # The run covers every organisation of the test database; other tests leave some that cannot be billed.
    assert organisation_id not in {failure["organisation_id"] for failure in finished.failures}
    assert len(await invoices_of(invoicing_stub, organisation_id)) == 1
    again = await on_the_first.scheduled_close()
    if finished.not_due == 0 and finished.failed == 0:
        assert again is None  # closed: nothing to do until next month
    else:
        assert again is not None and again.id != started.id  # retried until nothing is left
        await wait_finished(invoicing, again.id)
    assert len(await invoices_of(invoicing_stub, organisation_id)) == 1


async def test_a_run_another_replica_executes_is_left_to_it_until_its_lock_is_released(
    invoicing, invoicing_stub, metering, metering_stub, jetstream, period_close
):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    run_id = "run_01KOTHERREPLICARUN0000000"
    async with invoicing.engine.begin() as conn:
        await conn.execute(sa.insert(invoice_runs).values(
            id=run_id, period_key="2026-10", organisation_id=organisation_id, state="running", trigger="api",
            invoiced=1,  # the other replica's progress so far
        ))
    close, _ = period_close
    starting = InvoiceRuns(partial(InvoicingUnitOfWork, invoicing.engine), close,
                           lambda coro, name: invoicing.spawn(coro, name=name),
                           locks=PostgresRunLocks(invoicing.engine))
    async with PostgresRunLocks(invoicing.engine).hold(run_id) as held:  # the other replica, on its own connection
        assert held
        await starting.execute(run_id, resumed=True)
        async with invoicing.engine.connect() as conn:
            row = (await conn.execute(sa.select(invoice_runs).where(invoice_runs.c.id == run_id))).one()
        assert (row.state, row.invoiced) == ("running", 1)  # not run a second time, counts not zeroed
        assert await invoices_of(invoicing_stub, organisation_id) == []
    await starting.execute(run_id, resumed=True)
    run = await wait_finished(invoicing, run_id)
    assert (run.state, run.invoiced) == ("completed", 1)
    assert len(await invoices_of(invoicing_stub, organisation_id)) == 1
