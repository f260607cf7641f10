"""The grace period and late usage, through real metering: events one second on each side of each period boundary,
late events landing on the draft during the grace period, and later ones billed on the next invoice as usage
adjustment lines (shown on that invoice's projection before it is closed). None lost, none doubled."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2
from billing_runtime.service import Runtime
from services.invoicing.__main__ import issuing_policy
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.domain.invoice import Invoice, InvoiceStatus, LineKind
from services.invoicing.domain.organisation import Organisation
from services.invoicing.service.period_close import PeriodClose
from tests.integration.helpers import expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, subscribe, terms
from tests.integration.metering.conftest import E, batch, define, eventually, publish, whole_usage

SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
OCT = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)  # 1 October 00:00 in Asia/Kolkata
NOV = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
DEC = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
GRACE = timedelta(hours=48)
SECOND = timedelta(seconds=1)

PLAN = dict(
    currency="INR",
    base_fee="1000",
    charges=[
        {"metric_code": "api_calls", "display_name": "API calls",
         "charge": {"model": "CHARGE_MODEL_GRADUATED",
                    "tiers": [{"up_to": "1000", "unit_price": "0"}, {"up_to": "10000", "unit_price": "0.05"},
                              {"unit_price": "0.02"}]}},
        {"metric_code": "storage_gb", "display_name": "Storage",
         "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.0125"}},
    ],
)


def C(event_id: str, value: str, at: datetime) -> E:  # noqa: N802 - reads like E
    return E(event_id, value, at, "api_calls")


class Clock:
    def __init__(self) -> None:
        self.now = NOV

    def __call__(self) -> datetime:
        return self.now


async def send(jetstream, metering_stub, organisation_id: str, project: str, events: list[E],
               expect: dict[str, tuple[datetime, datetime, str]]) -> None:
    await publish(jetstream, batch(organisation_id, project, events))
    for code, (start, end, total) in expect.items():
        await eventually(
            lambda code=code, start=start, end=end: whole_usage(metering_stub, organisation_id, code, start, end),
            lambda found, total=total: found[0] != "" and Decimal(found[0]) == Decimal(total),
        )


async def invoices(invoicing, organisation_id: str) -> dict[str, Invoice]:
    async with InvoicingUnitOfWork(invoicing.engine) as uow:
        found = await uow.invoices.list(organisation_id=organisation_id, status="", period_key="", limit=10,
                                        before=None)
    return {f"{invoice.period_key} {invoice.status.value}": invoice for invoice in found}


def charged(invoice: Invoice, metric: str, *kinds: LineKind) -> list[tuple[Decimal, int]]:
    return [(line.quantity, line.amount_minor) for line in invoice.lines
            if line.metric_code == metric and line.kind in kinds]


@dataclass
class Billed:
    """An organisation on PLAN since 1 October, with its metrics defined, and a period close on a clock of the
    test's own."""

    organisation: Organisation
    clock: Clock
    usage: MeteringUsage
    invoicing: Runtime

    @property
    def id(self) -> str:
        return self.organisation.id

    def close(self, grace: timedelta = timedelta(0)) -> PeriodClose:
        return PeriodClose(lambda: InvoicingUnitOfWork(self.invoicing.engine), self.invoicing.outbox, self.usage,
                           issuing_policy(self.invoicing.settings), clock=self.clock, grace=grace)


@pytest.fixture
async def billed(invoicing, invoicing_stub, metering, metering_stub) -> AsyncIterator[Billed]:
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    plan = await create_plan(invoicing_stub, terms(**PLAN))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    await define(metering_stub, organisation_id, "api_calls", metering_pb2.AGGREGATION_SUM)
    await define(metering_stub, organisation_id, "storage_gb", metering_pb2.AGGREGATION_WEIGHTED_SUM, unit="GB")
    async with InvoicingUnitOfWork(invoicing.engine) as uow:
        organisation = await uow.organisations.get(organisation_id)
    assert organisation is not None
    usage = MeteringUsage(metering.address)
    try:
        yield Billed(organisation, Clock(), usage, invoicing)
    finally:
        await usage.close()


async def test_late_events_land_on_the_draft_in_grace_and_on_the_next_invoice_after_it(
    billed, invoicing, invoicing_stub, metering_stub, jetstream
):
    organisation, organisation_id, clock = billed.organisation, billed.id, billed.clock
    project = f"prj_test{secrets.token_hex(8)}"
    close = billed.close(GRACE)
    # On time: a second each side of 1 October and of 1 November; 100 GB held from the first instant.
    await send(jetstream, metering_stub, organisation_id, project, [
        C("a1", "7", OCT - SECOND), C("a2", "1000", OCT), C("a3", "500", NOV - SECOND),
        C("a4", "2000", NOV), C("a5", "3", NOV + SECOND), E("g1", "100", OCT, "storage_gb"),
    ], {"api_calls": (OCT, NOV, "1500"), "storage_gb": (OCT, NOV, "74400")})

    clock.now = NOV + timedelta(hours=1)  # October has ended: its grace period has begun
    progress = await close.close_batch([organisation], "2026-10")
    assert (progress.not_due, progress.invoiced) == (1, 0)
    (draft,) = (await invoices(invoicing, organisation_id)).values()
    assert draft.status is InvoiceStatus.DRAFT and not draft.number
    assert charged(draft, "api_calls", LineKind.USAGE) == [(Decimal(1500), 2500)]  # 500 x 0.05

    # Late, but within the grace period: it lands on the draft, priced again in place.
    await send(jetstream, metering_stub, organisation_id, project, [C("b1", "600", NOV - SECOND)],
               {"api_calls": (OCT, NOV, "2100")})
    clock.now = NOV + GRACE - SECOND
    progress = await close.close_batch([organisation], "2026-10")
    assert (progress.not_due, progress.invoiced) == (1, 0)
    (again,) = (await invoices(invoicing, organisation_id)).values()
    assert again.id == draft.id and again.status is InvoiceStatus.DRAFT
    assert charged(again, "api_calls", LineKind.USAGE) == [(Decimal(2100), 5500)]

    clock.now = NOV + GRACE + SECOND  # the grace period is over: priced a last time and issued
    progress = await close.close_batch([organisation], "2026-10")
    assert (progress.not_due, progress.invoiced) == (0, 1)
    october = (await invoices(invoicing, organisation_id))["2026-10 issued"]
    assert october.id == draft.id and october.number
    # 100,000.00 base + 55.00 calls + 74,400 GB-h x 0.0125 = 930.00
    assert october.subtotal_minor == 100_000 + 5_500 + 93_000

    # Later than the grace period: 9,000 calls in October's last second, and the storage set to 60 GB two
    # hours before October ended (which November inherits); a second each side of 1 December.
    await send(jetstream, metering_stub, organisation_id, project, [
        C("c1", "9000", NOV - SECOND), E("g2", "60", NOV - timedelta(hours=2), "storage_gb"),
        C("c2", "4", DEC - SECOND), C("c3", "5", DEC),
    ], {"api_calls": (OCT, NOV, "11100"), "storage_gb": (OCT, NOV, "74320")})
    # November projected an hour before it ends: October's late usage is on it already, stored nowhere.
    clock.now = DEC - timedelta(hours=1)
    projected = (await close.projected(organisation_id)).invoice
    assert projected.period_key == "2026-11" and len(await invoices(invoicing, organisation_id)) == 1
    clock.now = DEC + GRACE + SECOND
    progress = await close.close_batch([organisation], "2026-11")
    assert (progress.invoiced, progress.failed) == (1, 0), progress.failures
    found = await invoices(invoicing, organisation_id)
    november, october_now = found["2026-11 issued"], found["2026-10 issued"]
    assert october_now.lines == october.lines  # an issued invoice never changes
    assert charged(november, "api_calls", LineKind.USAGE) == [(Decimal(2007), 5035)]  # 1,007 x 0.05
    assert charged(november, "storage_gb", LineKind.USAGE) == [(Decimal(720 * 60), 54_000)]
    # October's calls now price at 9,000 x 0.05 + 1,100 x 0.02 = 472.00, of which 55.00 was billed; its
    # storage at 74,320 GB-h = 929.00, of which 930.00 was billed.
    adjustments = [line for line in november.lines if line.kind is LineKind.USAGE_ADJUSTMENT]
    assert [(line.metric_code, line.adjusts_period_key, line.quantity, line.amount_minor)
            for line in adjustments] == [("api_calls", "2026-10", Decimal(9000), 41_700),
                                         ("storage_gb", "2026-10", Decimal(-80), -100)]
    assert adjustments[0].description == "API calls: late usage of period 2026-10"
    assert november.subtotal_minor == 100_000 + 5_035 + 54_000 + 41_700 - 100
    # The projection showed exactly the adjustment lines the close then billed.
    def adjusting(invoice: Invoice) -> list[tuple]:
        return [(line.number, line.description, line.metric_code, line.adjusts_period_key, line.quantity,
                 line.amount_minor, line.gst_rate) for line in invoice.lines if line.kind is LineKind.USAGE_ADJUSTMENT]
    assert adjusting(projected) == adjusting(november) and len(adjusting(november)) == 2

    # Every event counted once, whichever invoice carries it.
    billed_calls = sum(q for invoice in (october, november) for q, _ in charged(
        invoice, "api_calls", LineKind.USAGE, LineKind.USAGE_ADJUSTMENT))
    assert billed_calls == 1000 + 500 + 600 + 9000 + 2000 + 3 + 4

    # Runs again change nothing; December's event waits for December.
    for key in ("2026-10", "2026-11"):
        rerun = await close.close_batch([organisation], key)
        assert (rerun.invoiced, rerun.already_invoiced) == (0, 1)
    assert len(await invoices(invoicing, organisation_id)) == 2

    # October's late usage is on November's invoice: reissuing October would bill it twice.
    await invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=october.id, reason="wrong address"))
    refused = await expect_rpc_error(
        invoicing_stub.ReissueInvoice(pb.ReissueInvoiceRequest(invoice_id=october.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert f"already billed on {november.number}" in (refused.details() or "")


async def test_a_period_without_late_events_gets_no_adjustment(billed, invoicing, metering_stub, jetstream):
    organisation, organisation_id, clock = billed.organisation, billed.id, billed.clock
    await send(jetstream, metering_stub, organisation_id, f"prj_test{secrets.token_hex(8)}",
               [C("a1", "1500", NOV - SECOND), C("a2", "1200", NOV)],
               {"api_calls": (NOV, DEC, "1200")})
    close = billed.close()
    clock.now = NOV + SECOND  # no grace period: issued at once
    assert (await close.close_batch([organisation], "2026-10")).invoiced == 1
    clock.now = DEC + SECOND
    assert (await close.close_batch([organisation], "2026-11")).invoiced == 1
    november = (await invoices(invoicing, organisation_id))["2026-11 issued"]
    assert not [line for line in november.lines if line.kind is LineKind.USAGE_ADJUSTMENT]
    assert charged(november, "api_calls", LineKind.USAGE) == [(Decimal(1200), 1000)]
