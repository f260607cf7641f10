"""Invoicing tests bill real usage: events go through JetStream into the real metering service, as in production,
and invoices come out of real invoice runs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import json_format

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2
from billing_runtime.service import Runtime
from services.invoicing.__main__ import period_close as build_period_close
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.adapters.tables import organisations
from services.invoicing.service.invoice_runs import InvoiceRuns
from services.invoicing.service.period_close import PeriodClose
from tests.integration.helpers import organisation_request
from tests.integration.metering.conftest import E, batch, define, eventually, jetstream, publish, whole_usage

__all__ = ["jetstream"]


@pytest.fixture
async def period_close(invoicing: Runtime, metering: Runtime) -> AsyncIterator[tuple[PeriodClose, InvoiceRuns]]:
    """A period close and its runs over the running invoicing service, built as its register() builds the ones
    its servicer uses (those stay inside the servicer): runs are spawned into the service and write its tables."""
    usage = MeteringUsage(metering.address)
    try:
        yield build_period_close(invoicing, invoicing.settings, usage)
    finally:
        await usage.close()


def terms(**fields: Any) -> pb.PlanTerms:
    """PlanTerms from JSON-shaped data, e.g. ``terms(currency="INR", charges=[...])``."""
    return json_format.ParseDict(fields, pb.PlanTerms())


async def create_plan(stub, terms_message: pb.PlanTerms, *, name: str = "Standard") -> pb.Plan:
    response = await stub.CreatePlan(
        pb.CreatePlanRequest(code=f"plan-{secrets.token_hex(4)}", name=name, terms=terms_message)
    )
    return response.plan


async def create_organisation(stub, invoicing=None, *, since: datetime | None = None, **overrides: str) -> str:
    """A new organisation; with ``since``, one that has existed since then (its creation time is set back in
    the database, so that it can be subscribed and billed for past periods)."""
    organisation_id = (await stub.CreateOrganisation(organisation_request(**overrides))).organisation.id
    if since is not None:
        async with invoicing.engine.begin() as conn:
            await conn.execute(
                sa.update(organisations).where(organisations.c.id == organisation_id).values(created_at=since)
            )
    return organisation_id


async def subscribe(
    stub, organisation_id: str, plan_version_id: str, start_date: str = "2026-10-01"
) -> pb.Subscription:
    response = await stub.CreateSubscription(
        pb.CreateSubscriptionRequest(
            organisation_id=organisation_id, plan_version_id=plan_version_id, start_date=start_date
        )
    )
    return response.subscription


async def record_usage(
    js, metering_stub, organisation_id: str, events: Iterable[tuple[str, str, datetime]],
    expect: dict[str, tuple[datetime, datetime, str]],
) -> None:
    """Publish (metric, value, timestamp) events as ingest would, define sum metrics for them, and wait until
    metering shows each ``expect[metric] = (start, end, total)``."""
    events = list(events)
    for code in {metric for metric, _, _ in events}:
        await define(metering_stub, organisation_id, code, metering_pb2.AGGREGATION_SUM)
    project = f"prj_test{secrets.token_hex(8)}"
    await publish(
        js,
        batch(organisation_id, project, [E(f"evt-{secrets.token_hex(8)}", value, at, metric=metric)
                                         for metric, value, at in events]),
    )
    for code, (start, end, total) in expect.items():
        await eventually(
            lambda code=code, start=start, end=end: whole_usage(metering_stub, organisation_id, code, start, end),
            lambda found, total=total: found[0] != "" and Decimal(found[0]) == Decimal(total),
        )


async def run_to_completion(stub, period_key: str, organisation_id: str = "", key: str = "") -> pb.InvoiceRun:
    started = await stub.StartInvoiceRun(
        pb.StartInvoiceRunRequest(period_key=period_key, organisation_id=organisation_id, idempotency_key=key)
    )
    run_id = started.invoice_run.id
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        run = (await stub.GetInvoiceRun(pb.GetInvoiceRunRequest(invoice_run_id=run_id))).invoice_run
        if run.state != pb.INVOICE_RUN_STATE_RUNNING:
            return run
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"invoice run still running after 60 s: {run}")
        await asyncio.sleep(0.05)


async def invoices_of(stub, organisation_id: str, period_key: str = "") -> list[pb.Invoice]:
    listed = await stub.ListInvoices(
        pb.ListInvoicesRequest(organisation_id=organisation_id, period_key=period_key, page_size=100)
    )
    return [
        (await stub.GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice.id))).invoice for invoice in listed.invoices
    ]
