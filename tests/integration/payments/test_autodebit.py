"""Recurring auto-debit against the Razorpay sandbox, through the official SDK and the real gateway.

Mandates are made over gRPC, authorised at the sandbox's Checkout, and confirmed by token.confirmed through the
gateway and JetStream. Invoices come out of real invoice runs. Payments' own auto-debit worker is off
(``autodebit_worker=False``): the test runs the worker itself with a clock it moves, and moves the sandbox's
clock past the bank's notice period; nothing sleeps for a day.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import payments_pb2 as pay
from services.payments.adapters.razorpay_api import RazorpayApi
from services.payments.adapters.unit_of_work import PaymentsUnitOfWork
from services.payments.entrypoints.workers import AutoDebitWork
from services.payments.service import autodebit
from tests.integration.invoicing.conftest import create_organisation, create_plan, run_to_completion, subscribe, terms
from tests.integration.payments.conftest import Collecting, collection, eventually, running_collecting


@pytest.fixture(scope="module")
async def collecting(database_url, nats_url, invoicing, metering, ingest) -> AsyncIterator[Collecting]:
    async with running_collecting(database_url, nats_url, invoicing, metering, ingest,
                                  autodebit_worker=False) as collecting:
        yield collecting


class WorkerDied(Exception):
    pass


@dataclass
class Worker:
    """Payments' auto-debit worker run by the test, at the time the test sets."""

    collecting: Collecting
    api: RazorpayApi
    now: datetime

    def work(self) -> AutoDebitWork:
        runtime = self.collecting.payments
        rules = autodebit.AutoDebitRules("Asia/Kolkata")
        return AutoDebitWork(lambda: PaymentsUnitOfWork(runtime.engine, runtime.outbox), self.api, self.api, rules,
                             runtime.settings.backoff(), 0.1, clock=lambda: self.now)


@pytest.fixture
async def worker(collecting) -> AsyncIterator[Worker]:
    sandbox = collecting.sandbox
    api = RazorpayApi(sandbox.key_id, sandbox.key_secret, sandbox.url, 5.0)
    yield Worker(collecting, api, datetime.now(UTC))
    await api.close()


async def organisation(invoicing_stub, invoicing) -> str:
    return await create_organisation(invoicing_stub, invoicing, since=datetime(2026, 9, 1, tzinfo=UTC),
                                     billing_email=f"billing-{secrets.token_hex(3)}@acme.example")


async def confirmed_mandate(collecting: Collecting, organisation_id: str, method: int,
                            max_amount: int = 1_500_000, **pay_as) -> pay.Mandate:
    made = await collecting.stub.CreateMandate(pay.CreateMandateRequest(
        organisation_id=organisation_id, method=method, max_amount_minor=max_amount, customer_name="Acme",
        customer_email=f"ap-{organisation_id[-6:]}@acme.example", idempotency_key=f"mandate-{organisation_id}"))
    mandate = made.mandate
    assert mandate.state == pay.MANDATE_STATE_CREATED and "recurring=1" in mandate.checkout_url
    # What Checkout.js would open it with: the key id, and the authorisation order's amount as the sandbox has it.
    order = collecting.sandbox.sandbox.store.orders[mandate.authorisation_order_id]
    assert (mandate.key_id, mandate.authorisation_amount_minor, mandate.authorisation_currency) == (
        collecting.sandbox.key_id, order["amount"], order["currency"])
    method_name = pay.MandateMethod.Name(method).removeprefix("MANDATE_METHOD_").lower()
    await collecting.sandbox.control.pay_order(mandate.authorisation_order_id, method=method_name, **pay_as)
    return await mandate_reaches(collecting, organisation_id, pay.MANDATE_STATE_CONFIRMED)


async def mandate_reaches(collecting: Collecting, organisation_id: str, state: int) -> pay.Mandate:
    reply = await eventually(
        lambda: collecting.stub.ListMandates(pay.ListMandatesRequest(organisation_id=organisation_id,
                                                                     include_finished=True)),
        lambda r: len(r.mandates) == 1 and r.mandates[0].state == state,
        what=f"the mandate {pay.MandateState.Name(state)}")
    return reply.mandates[0]


async def issued(invoicing_stub, organisation_id: str, base_fee: str) -> inv.Invoice:
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee=base_fee, charges=[]))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    [invoice] = (await invoicing_stub.ListInvoices(inv.ListInvoicesRequest(organisation_id=organisation_id))).invoices
    return invoice


async def debit_of(collecting: Collecting, invoice_id: str, state: int | None = None) -> pay.AutoDebit:
    reply = await eventually(lambda: collecting.stub.GetAutoDebit(pay.GetAutoDebitRequest(invoice_id=invoice_id)),
                             lambda r: not isinstance(r, Exception) and (state is None or r.debit.state == state),
                             what=f"the debit {pay.DebitState.Name(state) if state else ''}")
    return reply.debit


async def step(worker: Worker, collecting: Collecting, invoice_id: str) -> pay.AutoDebit:
    """Worker rounds until the invoice's debit has been taken a step further (its attempts counted), as the worker's
    own loop would: a round skips a debit another transaction holds for a moment (the webhook consumer recording
    Razorpay's pre-debit notice locks it), and may spend itself on other tests' debits due by the same clock."""
    before = (await debit_of(collecting, invoice_id)).attempts

    async def a_round() -> pay.AutoDebit:
        await worker.work().round()
        return await debit_of(collecting, invoice_id)

    return await eventually(a_round, lambda d: d.attempts > before, what=f"a step of the debit of {invoice_id}")


def sandbox_payments_of(collecting: Collecting, order_id: str) -> list[dict]:
    return [p for p in collecting.sandbox.sandbox.store.payments.values() if p["order_id"] == order_id]


async def test_a_confirmed_mandate_pays_an_invoice_after_the_pre_debit_window(collecting, worker, invoicing_stub,
                                                                             invoicing):
    organisation_id = await organisation(invoicing_stub, invoicing)
    mandate = await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_UPI)
    assert mandate.token_id.startswith("token_")
    invoice = await issued(invoicing_stub, organisation_id, "100")  # INR 100 + 18% GST = 118.00
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_SCHEDULED)
    start = debit.debit_time.ToDatetime(UTC)
    assert debit.due_time.ToDatetime(UTC) - start in (timedelta(hours=25), timedelta(0)) or start <= worker.now
    worker.now = max(start, worker.now) - timedelta(seconds=1)
    if start > worker.now:
        await worker.work().round()  # not before its time (other tests' debits due then may be sent)
        early = await debit_of(collecting, invoice.id)
        assert (early.state, early.attempts) == (pay.DEBIT_STATE_SCHEDULED, 0)
    worker.now = max(start, worker.now)
    await step(worker, collecting, invoice.id)
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_REQUESTED)
    [payment] = sandbox_payments_of(collecting, debit.provider_order_id)
    assert (payment["status"], payment["amount"], payment["token_id"]) == ("created", 11_800, mandate.token_id)
    # Razorpay's pre-debit notification is recorded on the debit.
    debit = await eventually(lambda: debit_of(collecting, invoice.id), lambda d: d.HasField("notify_time"),
                             what="the pre-debit notice")
    # The bank debits after the notice period: 25 hours on the sandbox's clock.
    assert (await collecting.sandbox.control.advance_clock(24 * 3600))["debited"] == 0
    assert (await collecting.sandbox.control.advance_clock(3600))["debited"] == 1
    await debit_of(collecting, invoice.id, pay.DEBIT_STATE_CAPTURED)
    listed = await collecting.stub.ListAutoDebits(pay.ListAutoDebitsRequest(mandate_id=mandate.id,
                                                                            organisation_id=organisation_id))
    assert [(d.invoice_id, d.state) for d in listed.debits] == [(invoice.id, pay.DEBIT_STATE_CAPTURED)]
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == 11_800, what="the capture")
    assert [p.provider_payment_id for p in paid.payments] == [payment["id"]]
    # Running the worker again (a day on) changes nothing.
    worker.now += timedelta(days=1)
    await worker.work().round()
    assert len(sandbox_payments_of(collecting, debit.provider_order_id)) == 1


async def test_a_worker_restarted_after_its_request_never_debits_twice(collecting, worker, invoicing_stub,
                                                                       invoicing):
    organisation_id = await organisation(invoicing_stub, invoicing)
    await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_EMANDATE, 100_000_000)
    invoice = await issued(invoicing_stub, organisation_id, "50000")  # INR 59,000.00 on eNACH
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_SCHEDULED)
    worker.now = max(debit.debit_time.ToDatetime(UTC), worker.now)
    real = worker.api.create_recurring_payment

    async def reached_then_died(*args, **kwargs):
        await real(*args, **kwargs)
        raise WorkerDied("the worker's process died after create/recurring reached Razorpay")

    worker.api.create_recurring_payment = reached_then_died  # type: ignore[method-assign]
    with pytest.raises(WorkerDied):
        await worker.work().round()
    worker.api.create_recurring_payment = real  # type: ignore[method-assign]
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_REQUESTED)
    assert debit.provider_payment_id == ""  # the answer was never stored
    # A new worker, once the dead one's lease has run out, looks the payment up instead of asking again.
    worker.now += autodebit.LEASE
    async with collecting.payments.engine.begin() as conn:
        row = (await conn.execute(sa.text("SELECT state, next_at, attempts FROM payments.debits "
                                          "WHERE invoice_id = :invoice_id"), {"invoice_id": invoice.id})).first()
    assert (await step(worker, collecting, invoice.id)).attempts == 2, (row, worker.now)
    [payment] = sandbox_payments_of(collecting, debit.provider_order_id)
    debit = await debit_of(collecting, invoice.id)
    assert debit.provider_payment_id == payment["id"] and debit.attempts == 2
    await collecting.sandbox.control.advance_clock(24 * 3600)
    await debit_of(collecting, invoice.id, pay.DEBIT_STATE_CAPTURED)
    assert len(sandbox_payments_of(collecting, debit.provider_order_id)) == 1


async def test_upi_above_the_limit_falls_back_to_a_payment_link(collecting, worker, invoicing_stub, invoicing):
    organisation_id = await organisation(invoicing_stub, invoicing)
    await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_UPI, 10_000_000)
    invoice = await issued(invoicing_stub, organisation_id, "15000")  # INR 17,700.00: above 15,000
    assert invoice.total_minor == 1_770_000
    await debit_of(collecting, invoice.id, pay.DEBIT_STATE_SCHEDULED)
    worker.now = datetime.now(UTC)
    await step(worker, collecting, invoice.id)  # at once, not a day before it is due
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_LINKED)
    assert "15,000" in debit.reason and debit.payment_link_url.startswith(collecting.sandbox.url)
    [link] = [x for x in collecting.sandbox.sandbox.store.payment_links.values()
              if x["short_url"] == debit.payment_link_url]
    assert (link["amount"], link["reference_id"]) == (1_770_000, f"{invoice.number}#AD"[:40])
    assert debit.provider_order_id == ""  # nothing was debited


async def test_a_failed_debit_hands_the_invoice_to_dunning(collecting, worker, invoicing_stub, invoicing):
    organisation_id = await organisation(invoicing_stub, invoicing)
    await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_CARD, card_number="4111111111111111")
    invoice = await issued(invoicing_stub, organisation_id, "100")
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_SCHEDULED)
    worker.now = max(debit.debit_time.ToDatetime(UTC), worker.now)
    await step(worker, collecting, invoice.id)
    await debit_of(collecting, invoice.id, pay.DEBIT_STATE_REQUESTED)
    await collecting.sandbox.control.fail_next_debits(1)
    assert (await collecting.sandbox.control.advance_clock(36 * 3600))["debited"] >= 1  # ours (checked below)
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_FAILED)
    assert "dunning goes on" in debit.reason
    dunning = (await collecting.stub.GetDunning(pay.GetDunningRequest(invoice_id=invoice.id))).dunning
    assert dunning.state == pay.DUNNING_STATE_SCHEDULED
    found = await collection(collecting.stub, invoice.id)
    assert found.amount_captured_minor == 0 and [p.status for p in found.payments] == [pay.PAYMENT_STATUS_FAILED]


async def test_forged_replayed_and_reordered_token_webhooks(collecting, invoicing_stub, invoicing):
    control = collecting.sandbox.control
    organisation_id = await organisation(invoicing_stub, invoicing)
    mandate = await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_UPI)
    confirmed_event = [e for e in await control.events() if e["event"] == "token.confirmed"
                       and e["body"]["payload"]["token"]["entity"]["id"] == mandate.token_id][0]

    # Forged: signed with a secret the gateway does not know; refused there, nothing changes.
    await control.set_webhook_behaviour(wrong_secret=True, events=1)
    await control.move_token(mandate.token_id, "paused")
    forged = await eventually(control.deliveries,
                              lambda log: any(d["forged"] and d["event"] == "token.paused" and d["attempts"] >= 1
                                              for d in log), what="the forged delivery")
    assert not any(d["delivered"] for d in forged if d["forged"])
    assert (await mandate_reaches(collecting, organisation_id, pay.MANDATE_STATE_CONFIRMED)).token_id

    # Reordered and duplicated: the cancellation first (twice), then a pause: the mandate ends cancelled, once.
    organisation_id = await organisation(invoicing_stub, invoicing)
    mandate = await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_UPI)
    await control.set_webhook_behaviour(reorder_window=2, duplicates=1, events=2)
    await control.move_token(mandate.token_id, "paused")
    await control.move_token(mandate.token_id, "cancelled")
    cancelled = await mandate_reaches(collecting, organisation_id, pay.MANDATE_STATE_CANCELLED)
    assert cancelled.reason

    # Replayed: the old token.confirmed delivered again (same id) and a confirmation never revives it.
    again = await control.redeliver(confirmed_event["event_id"])
    await eventually(control.deliveries, lambda log: log[again["delivery_id"] - 1]["delivered"],
                     what="the replayed token.confirmed")
    replay = await eventually(
        lambda: collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(event_type="token.confirmed")),
        lambda r: any(e.event_id == confirmed_event["event_id"] for e in r.events), what="the first confirmation")
    assert [e.outcome for e in replay.events if e.event_id == confirmed_event["event_id"]][0].startswith("applied")
    events = await eventually(
        lambda: collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(event_type="token.cancelled")),
        lambda r: any(mandate.token_id in e.outcome or "mandate" in e.outcome for e in r.events),
        what="the cancellation in the webhook log")
    assert events.events
    assert (await mandate_reaches(collecting, organisation_id, pay.MANDATE_STATE_CANCELLED)).state \
        == pay.MANDATE_STATE_CANCELLED
    await control.set_webhook_behaviour()
