"""Dunning across a restart of payments: every step is announced exactly once whichever process made it, each
attempt brings its own payment link, and a payment stops dunning at once.

The module runs its own payments (started, stopped and started again on the same database) behind one sandbox
and one gateway. Dunning steps fall days apart, so the test moves an invoice's dunning row in time: it shifts
payments.dunning.due_at and next_at back until the next step is due now (as invoicing's tests backdate
organisations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa

from billing.payments.v1 import events_pb2, payments_pb2_grpc
from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.service import Runtime
from sandboxes.razorpay import RunningSandbox, running_sandbox
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import mesh_channel, running_service
from tests.integration.payments.conftest import eventually, issue_invoice, payments_settings, running_gateway
from tests.integration.payments.jetstream import payments_events

# Attempts 60 s and 180 s after the due moment, uncollectible after 420 s.
POLICY = {"dunning_max_attempts": 2, "dunning_base_seconds": 60, "dunning_factor": 2}


@pytest.fixture(scope="module")
async def sandbox(database_url, nats_url, invoicing, metering, ingest) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(webhook_retry_initial_seconds=0.2, webhook_retry_max_seconds=1.0,
                               webhook_max_attempts=20) as sandbox:
        async with running_gateway(sandbox, database_url, nats_url, None, invoicing, metering, ingest):
            yield sandbox


@asynccontextmanager
async def running_payments(sandbox: RunningSandbox, database_url: str, nats_url: str
                           ) -> AsyncIterator[tuple[Runtime, payments_pb2_grpc.PaymentsServiceStub]]:
    async with running_service(PAYMENTS, database_url, nats_url, **payments_settings(sandbox, **POLICY)) as runtime:
        async with mesh_channel(runtime.address) as channel:
            yield runtime, payments_pb2_grpc.PaymentsServiceStub(channel)


async def make_next_step_due(runtime: Runtime, invoice_id: str) -> None:
    """Move the invoice's dunning back in time until its next step is due now."""
    async with runtime.engine.begin() as conn:
        moved = await conn.execute(sa.text(
            "UPDATE payments.dunning SET due_at = due_at - (next_at - now()), next_at = now() "
            "WHERE invoice_id = :invoice_id AND next_at IS NOT NULL"), {"invoice_id": invoice_id})
        assert moved.rowcount == 1


async def dunning_reaches(stub, invoice_id: str, state: int, attempts: int) -> pay.Dunning:
    reply = await eventually(lambda: stub.GetDunning(pay.GetDunningRequest(invoice_id=invoice_id)),
                             lambda r: (r.dunning.state, r.dunning.attempts) == (state, attempts),
                             what=f"dunning {pay.DunningState.Name(state)} after {attempts} attempts")
    return reply.dunning


async def step(runtime: Runtime, stub, invoice_id: str, state: int, attempts: int) -> pay.Dunning:
    await make_next_step_due(runtime, invoice_id)
    return await dunning_reaches(stub, invoice_id, state, attempts)


def sandbox_link(sandbox: RunningSandbox, reference: str) -> dict:
    [link] = [link for link in sandbox.sandbox.store.payment_links.values() if link["reference_id"] == reference]
    return link


def kinds(events: list) -> list[str]:
    return [type(event).__name__ for event in events]


async def test_dunning_goes_on_across_a_restart_and_a_payment_stops_it(sandbox, database_url, nats_url,
                                                                      invoicing_stub, invoicing):
    async with running_payments(sandbox, database_url, nats_url) as (payments, stub):
        unpaid = await issue_invoice(invoicing_stub, invoicing)
        paying = await issue_invoice(invoicing_stub, invoicing)
        for invoice in (unpaid, paying):
            scheduled = await dunning_reaches(stub, invoice.id, pay.DUNNING_STATE_SCHEDULED, 0)
            assert (scheduled.policy.max_attempts, scheduled.policy.base_seconds) == (2, 60)
            await step(payments, stub, invoice.id, pay.DUNNING_STATE_RETRYING, 0)  # overdue
            await step(payments, stub, invoice.id, pay.DUNNING_STATE_RETRYING, 1)  # attempt 1

        # The second invoice is paid through attempt 1's link: dunning stops at once.
        link = sandbox_link(sandbox, f"{paying.number}#D1")
        await sandbox.control.pay_payment_link(link["id"], method="upi", vpa="acme@okhdfc")
        stopped = await dunning_reaches(stub, paying.id, pay.DUNNING_STATE_STOPPED, 1)
        assert stopped.reason.startswith("paid by")
        await eventually(lambda: payments_events(payments.js, unpaid.id), lambda found: len(found) == 2,
                         what="overdue and attempt 1 announced before the restart")

    async with running_payments(sandbox, database_url, nats_url) as (payments, stub):
        await step(payments, stub, unpaid.id, pay.DUNNING_STATE_RETRYING, 2)  # attempt 2
        # The paid invoice's row has no next step; made due all the same, it is left alone.
        async with payments.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE payments.dunning SET next_at = now() WHERE invoice_id = :invoice_id"),
                               {"invoice_id": paying.id})
        last = await step(payments, stub, unpaid.id, pay.DUNNING_STATE_EXHAUSTED, 2)  # uncollectible
        assert not last.HasField("next_time")

        events = await eventually(lambda: payments_events(payments.js, unpaid.id), lambda found: len(found) >= 4,
                                  what="every dunning step announced")
        assert kinds(events) == ["InvoiceOverdue", "PaymentRetryScheduled", "PaymentRetryScheduled",
                                 "InvoiceUncollectible"]
        overdue, first, second, uncollectible = events
        assert overdue.invoice_number == unpaid.number and overdue.amount_due_minor == unpaid.total_minor
        assert [(e.attempt_number, e.max_attempts) for e in (first, second)] == [(1, 2), (2, 2)]
        assert first.payment_link_url != second.payment_link_url
        for attempt, event in ((1, first), (2, second)):
            made = sandbox_link(sandbox, f"{unpaid.number}#D{attempt}")
            assert made["short_url"] == event.payment_link_url and made["amount"] == unpaid.total_minor
        assert isinstance(uncollectible, events_pb2.InvoiceUncollectible) and uncollectible.attempts == 2

        paid_events = await payments_events(payments.js, paying.id)
        assert kinds(paid_events) == ["InvoiceOverdue", "PaymentRetryScheduled", "PaymentCaptured"]
        assert (await stub.GetDunning(pay.GetDunningRequest(invoice_id=paying.id))).dunning.state \
            == pay.DUNNING_STATE_STOPPED
