"""Closing periods and invoice runs against in-memory repositories and a fake metering: what gets invoiced,
what is left alone, numbering, events, reissue after void, and runs that count what their batches did."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.invoicing.adapters import messages
from services.invoicing.domain.invoice import InvoiceStatus, LineKind, Party
from services.invoicing.service import catalog, invoices, organisations, subscriptions
from services.invoicing.service.billing_inputs import Supplier, UsageTotal, UsageTotalQuery
from services.invoicing.service.invoice_runs import InvoiceRuns, ProcessRunLocks
from services.invoicing.service.organisations import CreateOrganisation
from services.invoicing.service.period_close import IssuingPolicy, PeriodClose
from tests.unit.services.invoicing.service.fakes import FakeInvoiceRuns, FakeOutbox, FakeUnitOfWork, Tables

NOW = datetime(2027, 1, 5, 6, 0, tzinfo=UTC)  # December 2026 has ended everywhere
POLICY = IssuingPolicy(
    supplier=Supplier(Party(name="Billing Platform Demo Pvt Ltd", country="IN", state_code="29"), "29"),
    series="INV", payment_terms_days=15, time_zone="Asia/Kolkata",
)
TERMS = {"currency": "INR", "base_fee": "1000",
         "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.5"}}]}


class FakeUsage:
    """Metering, as the period close asks it: the same total for every question, the same usage every day, and
    the questions asked."""

    def __init__(self, total: str = "200", per_day: str = "0", aggregation: str = "sum") -> None:
        self.total = Decimal(total)
        self.per_day = Decimal(per_day)
        self.aggregation = aggregation
        self.asked: list[UsageTotalQuery] = []
        self.days_asked: list[tuple[str, datetime, datetime, str]] = []

    async def usage_totals(self, queries: Sequence[UsageTotalQuery]) -> list[UsageTotal]:
        self.asked.extend(queries)
        return [UsageTotal(q.organisation_id, q.metric_code, True, "met_1", self.aggregation, self.total, 1)
                for q in queries]

    async def event_values(self, organisation_id: str, metric_code: str, start: datetime, end: datetime):
        raise AssertionError("per-unit charges are priced from totals")

    async def daily_usage(self, organisation_id: str, metric_code: str, start: datetime, end: datetime,
                          time_zone: str) -> dict[date, Decimal]:
        self.days_asked.append((metric_code, start, end, time_zone))
        first, last = (moment.astimezone(ZoneInfo(time_zone)).date() for moment in (start, end))
        return {first + timedelta(days=n): self.per_day for n in range((last - first).days)}


async def organisation(tables: Tables, name: str, *, subscribed_from: str | None = "2026-12-01") -> str:
    created, _ = await organisations.create_organisation(
        FakeUnitOfWork(tables), FakeOutbox(),
        CreateOrganisation(name=name, billing_email="a@b.example", billing_currency="INR", country="IN",
                           state_code="29", timezone="Asia/Kolkata"),
    )
    if subscribed_from is not None:
        await subscriptions.create_subscription(FakeUnitOfWork(tables), FakeOutbox(), organisation_id=created.id,
                                                plan_code="standard", start_date=subscribed_from, now=NOW)
    return created.id


@pytest.fixture
async def tables() -> Tables:
    tables = Tables()
    await catalog.create_plan(FakeUnitOfWork(tables), code="standard", name="Standard", terms=TERMS)
    return tables


def close_for(tables: Tables, usage: FakeUsage) -> PeriodClose:
    return PeriodClose(lambda: FakeUnitOfWork(tables), FakeOutbox(), usage, POLICY, clock=lambda: NOW)


async def stored(tables: Tables, organisation_id: str):
    return [i for i in tables.invoices.values() if i.organisation_id == organisation_id]


async def test_a_due_period_is_priced_stored_issued_numbered_and_announced(tables):
    organisation_id = await organisation(tables, "Acme")
    tables.outbox.clear()
    usage = FakeUsage("200")
    acme = tables.organisations[organisation_id].value
    progress = await close_for(tables, usage).close_batch([acme], "2026-12")
    assert (progress.invoiced, progress.failed) == (1, 0)
    [invoice] = await stored(tables, organisation_id)
    assert invoice.status is InvoiceStatus.ISSUED and invoice.number.startswith("INV/")
    assert (invoice.issue_date, invoice.due_date) == (date(2027, 1, 5), date(2027, 1, 20))
    assert invoice.subtotal_minor == 100_000 + 10_000  # base fee 1,000.00 + 200 calls at 0.50
    assert invoice.total_minor == 129_800  # with 18% GST (CGST + SGST within Karnataka)
    assert [q.metric_code for q in usage.asked] == ["api_calls"]
    [(subject, event_id, message)] = tables.outbox
    assert subject == messages.INVOICE_ISSUED and message == messages.invoice_issued(event_id, invoice)

    again = await close_for(tables, usage).close_batch([acme], "2026-12")
    assert (again.invoiced, again.already_invoiced) == (0, 1) and len(tables.outbox) == 1


async def test_what_is_not_invoiced_is_counted(tables):
    no_plan = await organisation(tables, "No Plan", subscribed_from=None)
    later = await organisation(tables, "Later", subscribed_from="2027-01-01")
    batch = [tables.organisations[i].value for i in (no_plan, later)]
    progress = await close_for(tables, FakeUsage()).close_batch(batch, "2026-12")
    assert (progress.no_subscription, progress.invoiced) == (2, 0)  # neither had a plan in December
    not_due = await close_for(tables, FakeUsage()).close_batch(batch[1:], "2027-01")
    assert not_due.not_due == 1 and tables.invoices == {}


async def test_numbers_follow_each_other_across_batches(tables):
    ids = [await organisation(tables, f"Org {n}") for n in range(3)]
    close = close_for(tables, FakeUsage())
    await close.close_batch([tables.organisations[i].value for i in ids[:2]], "2026-12")
    await close.close_batch([tables.organisations[ids[2]].value], "2026-12")
    numbers = sorted(i.number for i in tables.invoices.values())
    assert [int(n.rsplit("/", 1)[1]) for n in numbers] == [1, 2, 3]


async def test_a_voided_invoice_is_reissued_once_under_a_new_number(tables):
    organisation_id = await organisation(tables, "Acme")
    close = close_for(tables, FakeUsage())
    await close.close_batch([tables.organisations[organisation_id].value], "2026-12")
    [first] = await stored(tables, organisation_id)
    with pytest.raises(FailedPrecondition, match="only a voided invoice"):
        await close.reissue(first.id)
    await invoices.void_invoice(FakeUnitOfWork(tables), FakeOutbox(), invoice_id=first.id, reason="wrong", now=NOW)
    reissued, created = await close.reissue(first.id)
    assert created and reissued.replaces_invoice_id == first.id and reissued.number != first.number
    assert await close.reissue(first.id) == (reissued, False)
    with pytest.raises(NotFound):
        await close.reissue("inv_01KNOSUCHINVOICE000000000")


async def test_the_projected_invoice_reads_usage_so_far_and_stores_nothing(tables):
    organisation_id = await organisation(tables, "Acme", subscribed_from="2027-01-01")
    usage = FakeUsage("10")
    projected = await close_for(tables, usage).projected(organisation_id)
    assert projected.invoice.id == "projected" and projected.invoice.status is InvoiceStatus.DRAFT
    assert projected.forecast is None and usage.days_asked == []
    assert [q.end for q in usage.asked] == [NOW] and tables.invoices == {}


async def test_the_forecast_reads_the_complete_days_in_the_organisation_s_zone_and_prices_the_period_end(tables):
    # NOW is 11:30 on 5 January in Kolkata: 1-4 January are complete, 26.52 days are left.
    organisation_id = await organisation(tables, "Acme", subscribed_from="2027-01-01")
    usage = FakeUsage("450", per_day="100")
    projected = await close_for(tables, usage).projected(organisation_id, with_forecast=True)
    assert usage.days_asked == [("api_calls", datetime(2026, 12, 31, 18, 30, tzinfo=UTC),
                                 datetime(2027, 1, 4, 18, 30, tzinfo=UTC), "Asia/Kolkata")]
    forecast = projected.forecast
    assert forecast is not None and forecast.projection.days_observed == 4
    (calls,) = forecast.projection.metrics
    # 450 so far + 100 a day x 26.520833... days = 3,102.083333
    assert (calls.so_far, calls.projected) == (Decimal(450), Decimal("3102.083333"))
    # 1,000.00 base + 3,102.083333 x 0.50 = 1,551.04; CGST and SGST of 9 % each: 229.5936 -> 229.59.
    assert forecast.invoice.subtotal_minor == 255104 and projected.invoice.subtotal_minor == 122500
    assert forecast.invoice.total_minor == 255104 + 2 * 22959 and tables.invoices == {}  # 9 % twice


async def test_a_forecast_of_levels_asks_metering_for_no_history(tables):
    organisation_id = await organisation(tables, "Acme", subscribed_from="2027-01-01")
    usage = FakeUsage("450", per_day="100", aggregation="max")
    projected = await close_for(tables, usage).projected(organisation_id, with_forecast=True)
    assert usage.days_asked == [] and projected.forecast is not None
    assert projected.forecast.invoice.total_minor == projected.invoice.total_minor


class Spawned:
    """Collects the background work a run starts, to await it in the test."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def __call__(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def wait(self) -> None:
        await asyncio.gather(*self.tasks)


async def test_a_run_closes_every_organisation_batch_by_batch_and_counts_it(tables):
    for n in range(3):
        await organisation(tables, f"Org {n}")
    await organisation(tables, "No Plan", subscribed_from=None)
    spawned = Spawned()
    runs = InvoiceRuns(lambda: FakeUnitOfWork(tables), close_for(tables, FakeUsage()), spawned, batch_size=2,
                       clock=lambda: NOW)
    run, created = await runs.start(period_key="2026-12", idempotency_key="r1")
    assert created and (await runs.start(period_key="2026-12", idempotency_key="r1")) == (run, False)
    await spawned.wait()
    finished = tables.runs[run.id].value
    assert (finished.state, finished.organisations_total, finished.organisations_done) == ("completed", 4, 4)
    assert (finished.invoiced, finished.no_subscription, finished.failed) == (3, 1, 0)
    with pytest.raises(NotFound):
        await runs.start(period_key="2026-12", organisation_id="org_01KNOSUCHORGANISATION00000")


async def test_a_run_left_running_is_resumed_and_counts_from_zero(tables):
    organisation_id = await organisation(tables, "Acme")
    spawned = Spawned()
    runs = InvoiceRuns(lambda: FakeUnitOfWork(tables), close_for(tables, FakeUsage()), spawned, clock=lambda: NOW)
    await close_for(tables, FakeUsage()).close_batch([tables.organisations[organisation_id].value], "2026-12")
    async with FakeUnitOfWork(tables) as uow:  # as a crash leaves it: running, with counts of a first attempt
        crashed, _ = await uow.invoice_runs.add("run_01KCRASHED000000000000000", "2026-12", organisation_id, "api",
                                                idempotency_key="", fingerprint="")
        await uow.invoice_runs.set_total(crashed.id, 1)
    tables.runs[crashed.id].value.invoiced = 1
    assert await runs.resume_interrupted() == 1
    await spawned.wait()
    resumed = tables.runs[crashed.id].value
    assert (resumed.state, resumed.invoiced, resumed.already_invoiced) == ("completed", 0, 1)
    assert len(tables.invoices) == 1


async def test_the_scheduler_closes_last_month_until_nothing_is_left(tables):
    await organisation(tables, "Acme")
    spawned = Spawned()
    runs = InvoiceRuns(lambda: FakeUnitOfWork(tables), close_for(tables, FakeUsage()), spawned, clock=lambda: NOW)
    started = await runs.scheduled_close()
    assert started is not None and (started.period_key, started.trigger) == ("2026-12", "scheduler")
    assert await runs.scheduled_close() is None  # still running
    await spawned.wait()
    assert await runs.scheduled_close() is None  # completed with nothing left


async def test_a_run_another_replica_executes_is_left_to_it(tables):
    organisation_id = await organisation(tables, "Acme")
    locks = ProcessRunLocks()  # shared, as replicas share PostgreSQL's advisory locks
    spawned = Spawned()
    starting = InvoiceRuns(lambda: FakeUnitOfWork(tables), close_for(tables, FakeUsage()), spawned, locks=locks,
                           clock=lambda: NOW)
    async with FakeUnitOfWork(tables) as uow:
        running, _ = await uow.invoice_runs.add("run_01KRUNNINGELSEWHERE0000000", "2026-12", organisation_id, "api",
                                                idempotency_key="", fingerprint="")
    tables.runs[running.id].value.invoiced = 1  # the other replica's progress so far
    async with locks.hold(running.id) as held:
        assert held
        assert await starting.resume_interrupted() == 1
        await spawned.wait()
        untouched = tables.runs[running.id].value
        assert (untouched.state, untouched.invoiced) == ("running", 1)  # not run again, counts not zeroed
        assert tables.invoices == {}
    await starting.execute(running.id, resumed=True)  # its holder died: the lock is free, the run resumes
    assert tables.runs[running.id].value.state == "completed"
    assert len(tables.invoices) == 1


async def test_schedulers_of_two_replicas_checking_at_once_start_one_run(tables, monkeypatch):
    await organisation(tables, "Acme")
    spawned = Spawned()
    replicas = [InvoiceRuns(lambda: FakeUnitOfWork(tables), close_for(tables, FakeUsage()), spawned, clock=lambda: NOW)
                for _ in range(2)]

    async def nothing_yet(self, period_key: str, trigger: str) -> None:
        return None  # both looked before either had started its run

    monkeypatch.setattr(FakeInvoiceRuns, "latest_for", nothing_yet)
    first, second = [await replica.scheduled_close() for replica in replicas]
    assert first is not None and second is None
    assert [run.value.id for run in tables.runs.values()] == [first.id]
    await spawned.wait()


async def test_in_its_grace_period_a_draft_is_priced_again_then_issued_when_it_ends(tables):
    organisation_id = await organisation(tables, "Acme")
    acme = tables.organisations[organisation_id].value
    december_end = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)  # midnight in Asia/Kolkata
    moment = [december_end + timedelta(minutes=5)]
    usage = FakeUsage("200")
    close = PeriodClose(lambda: FakeUnitOfWork(tables), FakeOutbox(), usage, POLICY, clock=lambda: moment[0],
                        grace=timedelta(hours=24))
    progress = await close.close_batch([acme], "2026-12")
    assert (progress.not_due, progress.invoiced) == (1, 0)
    [draft] = await stored(tables, organisation_id)
    assert draft.status is InvoiceStatus.DRAFT and draft.subtotal_minor == 100_000 + 10_000

    usage.total, moment[0] = Decimal(300), december_end + timedelta(hours=24) - timedelta(seconds=1)
    progress = await close.close_batch([acme], "2026-12")
    assert (progress.not_due, progress.invoiced) == (1, 0)
    [again] = await stored(tables, organisation_id)
    assert again.id == draft.id and again.status is InvoiceStatus.DRAFT and again.subtotal_minor == 115_000

    moment[0] = december_end + timedelta(hours=24)
    progress = await close.close_batch([acme], "2026-12")
    assert (progress.not_due, progress.invoiced) == (0, 1)
    [issued] = await stored(tables, organisation_id)
    assert issued.id == draft.id and issued.number and issued.subtotal_minor == 115_000


async def test_the_scheduler_also_runs_an_earlier_period_that_still_has_drafts(tables):
    organisation_id = await organisation(tables, "Acme", subscribed_from="2026-11-21")
    acme = tables.organisations[organisation_id].value
    november_end = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    in_grace = PeriodClose(lambda: FakeUnitOfWork(tables), FakeOutbox(), FakeUsage(), POLICY,
                           clock=lambda: november_end + timedelta(hours=1), grace=timedelta(days=30))
    assert (await in_grace.close_batch([acme], "2026-11")).not_due == 1
    spawned = Spawned()
    runs = InvoiceRuns(lambda: FakeUnitOfWork(tables), close_for(tables, FakeUsage()), spawned, clock=lambda: NOW)
    await runs.scheduled_close()
    await spawned.wait()
    assert sorted(run.value.period_key for run in tables.runs.values()) == ["2026-11", "2026-12"]
    assert sorted((i.period_key, i.status.value) for i in await stored(tables, organisation_id)) == [
        ("2026-11", "issued"), ("2026-12", "issued")]


async def test_a_plan_change_is_priced_before_it_is_made_with_the_base_fees_prorated_by_days(tables):
    """The projected invoice as if the plan changed today (5 January in Bengaluru): 4 of January's 31 days on
    Standard (₹1,000 a month) and 27 on Pro (₹3,100 a month), the usage priced on each side; nothing stored."""
    await catalog.create_plan(FakeUnitOfWork(tables), code="pro", name="Pro", terms={
        "currency": "INR", "base_fee": "3100",
        "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.25"}}]})
    organisation_id = await organisation(tables, "Acme", subscribed_from="2027-01-01")
    (subscription,) = [k.value for k in tables.subscriptions.values() if k.value.organisation_id == organisation_id]
    close = close_for(tables, FakeUsage("10"))
    change = {"subscription_id": subscription.id, "plan_code": "pro"}

    as_is = (await close.projected(organisation_id)).invoice
    changed = (await close.projected(organisation_id, plan_change=change)).invoice

    assert [line.amount_minor for line in as_is.lines] == [100000, 500]
    # ₹1,000 × 4/31 = ₹129.03 and ₹3,100 × 27/31 = ₹2,700.00; the usage on each side of the change.
    assert sorted(line.amount_minor for line in changed.lines) == sorted([12903, 500, 270000, 250])
    assert changed.total_minor > as_is.total_minor
    assert tables.subscriptions[subscription.id].value == subscription and tables.invoices == {}

    # Refused as the change itself would be, naming the same fields.
    with pytest.raises(InvalidArgument) as same:
        await close.projected(organisation_id, plan_change={**change, "plan_code": "standard"})
    assert same.value.field == "plan_version_id"
    with pytest.raises(InvalidArgument) as early:
        await close.projected(organisation_id, plan_change={**change, "effective_date": "2026-12-31"})
    assert early.value.field == "effective_date"
    with pytest.raises(NotFound):
        await close.projected(organisation_id, plan_change={**change, "subscription_id": "sub_other"})


async def test_the_projected_invoice_carries_the_late_usage_adjustments_the_close_then_bills(tables):
    """December is invoiced with 200 calls; 100 more arrive late. January's projection shows the adjustment line
    the close of January then carries, read as the close reads it: one more usage call, for December."""
    organisation_id = await organisation(tables, "Acme")
    usage = FakeUsage("200")
    assert (await close_for(tables, usage).close_batch([tables.organisations[organisation_id].value],
                                                       "2026-12")).invoiced == 1
    usage.total, usage.asked = Decimal(300), []
    projected = (await close_for(tables, usage).projected(organisation_id)).invoice
    # The projection asked for December again (whole period) and January so far: nothing else.
    assert sorted((q.start.date(), q.end) for q in usage.asked) == [
        (date(2026, 11, 30), datetime(2026, 12, 31, 18, 30, tzinfo=UTC)), (date(2026, 12, 31), NOW)]
    [adjustment] = [line for line in projected.lines if line.kind is LineKind.USAGE_ADJUSTMENT]
    assert (adjustment.metric_code, adjustment.adjusts_period_key, adjustment.quantity,
            adjustment.amount_minor) == ("api_calls", "2026-12", Decimal(100), 5000)  # 100 x 0.50
    assert projected.subtotal_minor == 100_000 + 15_000 + 5_000 and len(tables.invoices) == 1

    february = datetime(2027, 2, 5, 6, 0, tzinfo=UTC)
    close = PeriodClose(lambda: FakeUnitOfWork(tables), FakeOutbox(), usage, POLICY, clock=lambda: february)
    assert (await close.close_batch([tables.organisations[organisation_id].value], "2027-01")).invoiced == 1
    [january] = [i for i in tables.invoices.values() if i.period_key == "2027-01"]

    def billed(invoice):
        return [(line.number, line.kind, line.description, line.metric_code, line.adjusts_period_key, line.quantity,
                 line.amount_minor) for line in invoice.lines], invoice.total_minor
    assert billed(january) == billed(projected)
