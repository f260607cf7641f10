"""Settlement end to end: payments' events published on BILLING_PAYMENTS (as payments' outbox relay would, with
Nats-Msg-Id) move real invoices issued by real invoice runs, through invoicing's durable consumer."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.message import Message

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.payments.v1 import events_pb2 as payments
from billing_runtime import messaging
from billing_runtime.timestamps import to_timestamp
from services.invoicing.adapters.settlement_messages import decode_payments_event
from services.invoicing.adapters.tables import invoices, outbox
from services.invoicing.service.settlements import Outcome, Settlements
from tests.integration.helpers import expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, run_to_completion, subscribe, terms
from tests.integration.metering.conftest import eventually

SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
T0 = datetime(2026, 10, 3, 9, tzinfo=UTC)
TOTAL = 11800  # 100.00 base fee + 18 % GST
PAID = "billing.invoicing.v1.invoice.paid"


@pytest.fixture
async def payments_stream(jetstream) -> AsyncIterator:
    """BILLING_PAYMENTS as the payments service creates it (it is not running in these tests)."""
    await messaging.ensure_stream(jetstream, messaging.stream_name("payments"), ["billing.payments.v1.>"])
    yield jetstream


async def issued_invoice(invoicing, invoicing_stub, *, base_fee: str = "100") -> pb.Invoice:
    """A new organisation's September invoice, issued by an invoice run."""
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee=base_fee, charges=[]))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id, start_date="2026-09-01")
    run = await run_to_completion(invoicing_stub, "2026-09", organisation_id)
    assert run.invoiced == 1, run
    listed = await invoicing_stub.ListInvoices(pb.ListInvoicesRequest(organisation_id=organisation_id))
    return listed.invoices[0]


class Payments:
    """Builds payments' events for one invoice, and publishes them as payments' outbox relay does."""

    def __init__(self, js, invoice: pb.Invoice) -> None:
        self.js = js
        self.invoice = invoice
        self.tag = secrets.token_hex(4)

    def _common(self, name: str) -> dict:
        return {
            "event_id": f"evt_{self.tag}_{name}", "invoice_id": self.invoice.id,
            "organisation_id": self.invoice.organisation_id, "invoice_number": self.invoice.number,
        }

    def captured(self, name: str, amount: int, *, minutes: int = 0, currency: str = "INR",
                 provider: int = payments.PROVIDER_RAZORPAY) -> tuple[str, Message]:
        return "billing.payments.v1.payment.captured", payments.PaymentCaptured(
            **self._common(name), payment_id=f"pmt_{self.tag}_{name}", provider=provider, currency=currency,
            amount_minor=amount, method="upi", capture_time=to_timestamp(T0 + timedelta(minutes=minutes)),
        )

    def refunded(self, name: str, amount: int, *, minutes: int = 0) -> tuple[str, Message]:
        return "billing.payments.v1.refund.processed", payments.RefundProcessed(
            **self._common(name), refund_id=f"rfd_{self.tag}_{name}", payment_id=f"pmt_{self.tag}_p",
            currency="INR", amount_minor=amount, process_time=to_timestamp(T0 + timedelta(minutes=minutes)),
        )

    def refund_failed(self, name: str, refund: str, amount: int, *, minutes: int = 0) -> tuple[str, Message]:
        return "billing.payments.v1.refund.failed", payments.RefundFailed(
            **self._common(name), refund_id=f"rfd_{self.tag}_{refund}", payment_id=f"pmt_{self.tag}_p",
            currency="INR", amount_minor=amount, failure_time=to_timestamp(T0 + timedelta(minutes=minutes)),
        )

    def overdue(self, name: str = "overdue") -> tuple[str, Message]:
        return "billing.payments.v1.invoice.overdue", payments.InvoiceOverdue(
            **self._common(name), currency="INR", amount_due_minor=TOTAL, due_date="2026-10-16",
            overdue_time=to_timestamp(T0),
        )

    def uncollectible(self, name: str = "uncollectible") -> tuple[str, Message]:
        return "billing.payments.v1.invoice.uncollectible", payments.InvoiceUncollectible(
            **self._common(name), currency="INR", amount_due_minor=TOTAL, attempts=4,
            uncollectible_time=to_timestamp(T0 + timedelta(days=20)),
        )

    async def publish(self, *events: tuple[str, Message], msg_id: str = "") -> None:
        for subject, message in events:
            headers = {"Nats-Msg-Id": msg_id or message.event_id}
            await self.js.publish(subject, message.SerializeToString(), headers=headers, timeout=5)


async def invoice_when(stub, invoice_id: str, accept) -> pb.Invoice:  # noqa: ANN001 - a predicate
    return await eventually(
        lambda: _get(stub, invoice_id), accept, timeout=20.0
    )


async def _get(stub, invoice_id: str) -> pb.Invoice:
    return (await stub.GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice_id))).invoice


def state(invoice: pb.Invoice) -> tuple[int, int, int, int]:
    return invoice.status, invoice.amount_paid_minor, invoice.amount_refunded_minor, invoice.amount_due_minor


async def reviews_of(stub, organisation_id: str, count: int, state_filter: int = pb.REVIEW_ITEM_STATE_OPEN):
    async def listed():
        return list((await stub.ListReviewItems(
            pb.ListReviewItemsRequest(organisation_id=organisation_id, state=state_filter)
        )).review_items)
    return await eventually(listed, lambda items: len(items) >= count, timeout=20.0)


async def history(stub, invoice_id: str) -> list[tuple[int, int, str]]:
    changes = (await stub.ListInvoiceStatusChanges(pb.ListInvoiceStatusChangesRequest(invoice_id=invoice_id)))
    return [(c.from_status, c.to_status, c.cause) for c in changes.status_changes]


async def paid_events(invoicing, invoice_id: str) -> list[str]:
    async with invoicing.engine.connect() as conn:
        return list((await conn.execute(
            sa.select(outbox.c.event_id).where(outbox.c.subject == PAID, outbox.c.event_id.like(f"%:{invoice_id}:%"))
        )).scalars())


async def test_a_payment_pays_the_invoice_once_however_often_it_arrives(
    invoicing, invoicing_stub, metering, payments_stream
):
    invoice = await issued_invoice(invoicing, invoicing_stub)
    assert state(invoice) == (pb.INVOICE_STATUS_ISSUED, 0, 0, TOTAL)
    announcements = await payments_stream.subscribe(PAID, stream="BILLING_INVOICING")
    desk = Payments(payments_stream, invoice)
    capture = desk.captured("p", TOTAL)
    await desk.publish(capture)
    paid = await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    assert state(paid) == (pb.INVOICE_STATUS_PAID, TOTAL, 0, 0)

    # Re-published after JetStream's duplicate window (another message id): the consumer's key drops it. The
    # marker after it (a payment in dollars, reviewed) shows the copy has been consumed.
    await desk.publish(capture, msg_id=f"again-{secrets.token_hex(4)}")
    await desk.publish(desk.captured("marker", 100, currency="USD", minutes=5))
    await reviews_of(invoicing_stub, invoice.organisation_id, 1)
    assert state(await _get(invoicing_stub, invoice.id)) == (pb.INVOICE_STATUS_PAID, TOTAL, 0, 0)

    assert await paid_events(invoicing, invoice.id) == [f"invoice.paid:{invoice.id}:1"]
    while True:
        message = await announcements.next_msg(timeout=10)
        event = invoicing_events.InvoicePaid.FromString(message.data)
        if event.invoice.id == invoice.id:
            break
    await announcements.unsubscribe()
    assert message.headers["Nats-Msg-Id"] == event.event_id == f"invoice.paid:{invoice.id}:1"
    assert (event.invoice.status, event.invoice.amount_paid_minor) == (pb.INVOICE_STATUS_PAID, TOTAL)

    assert await history(invoicing_stub, invoice.id) == [
        (pb.INVOICE_STATUS_DRAFT, pb.INVOICE_STATUS_ISSUED, f"invoice run {(await _run_id(invoicing, invoice.id))}"),
        (pb.INVOICE_STATUS_ISSUED, pb.INVOICE_STATUS_PAID, capture[1].event_id),
    ]
    changes = await invoicing_stub.ListInvoiceStatusChanges(pb.ListInvoiceStatusChangesRequest(invoice_id=invoice.id))
    assert changes.status_changes[0].reason == f"issued as {invoice.number}"
    assert "captured: 118.00 INR (razorpay)" in changes.status_changes[1].reason
    recorded = await invoicing_stub.ListInvoiceSettlements(pb.ListInvoiceSettlementsRequest(invoice_id=invoice.id))
    assert [(s.event_id, s.applied) for s in recorded.settlements] == [
        (capture[1].event_id, True), (f"evt_{desk.tag}_marker", False)]


async def _run_id(invoicing, invoice_id: str) -> str:
    async with invoicing.engine.connect() as conn:
        return (await conn.execute(sa.select(invoices.c.run_id).where(invoices.c.id == invoice_id))).scalar_one()


async def test_offline_part_payments_then_refunds_and_a_failed_refund(
    invoicing, invoicing_stub, metering, payments_stream
):
    invoice = await issued_invoice(invoicing, invoicing_stub)
    desk = Payments(payments_stream, invoice)
    await desk.publish(desk.captured("cheque", 5000, provider=payments.PROVIDER_OFFLINE))
    partial = await invoice_when(invoicing_stub, invoice.id, lambda i: i.amount_paid_minor == 5000)
    assert state(partial) == (pb.INVOICE_STATUS_PARTIALLY_PAID, 5000, 0, TOTAL - 5000)

    await desk.publish(desk.captured("rest", TOTAL - 5000, minutes=1))
    paid = await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    assert state(paid) == (pb.INVOICE_STATUS_PAID, TOTAL, 0, 0)

    await desk.publish(desk.refunded("r1", 1800, minutes=10))
    part = await invoice_when(invoicing_stub, invoice.id, lambda i: i.amount_refunded_minor == 1800)
    assert state(part) == (pb.INVOICE_STATUS_PARTIALLY_REFUNDED, TOTAL, 1800, 0)

    await desk.publish(desk.refunded("r2", TOTAL - 1800, minutes=11))
    whole = await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_REFUNDED)
    assert state(whole) == (pb.INVOICE_STATUS_REFUNDED, TOTAL, TOTAL, 0)

    await desk.publish(desk.refund_failed("r2-failed", "r2", TOTAL - 1800, minutes=12))
    undone = await invoice_when(invoicing_stub, invoice.id, lambda i: i.amount_refunded_minor == 1800)
    assert state(undone) == (pb.INVOICE_STATUS_PARTIALLY_REFUNDED, TOTAL, 1800, 0)

    statuses = [(old, new) for old, new, _ in await history(invoicing_stub, invoice.id)]
    assert statuses == [
        (pb.INVOICE_STATUS_DRAFT, pb.INVOICE_STATUS_ISSUED),
        (pb.INVOICE_STATUS_ISSUED, pb.INVOICE_STATUS_PARTIALLY_PAID),
        (pb.INVOICE_STATUS_PARTIALLY_PAID, pb.INVOICE_STATUS_PAID),
        (pb.INVOICE_STATUS_PAID, pb.INVOICE_STATUS_PARTIALLY_REFUNDED),
        (pb.INVOICE_STATUS_PARTIALLY_REFUNDED, pb.INVOICE_STATUS_REFUNDED),
        (pb.INVOICE_STATUS_REFUNDED, pb.INVOICE_STATUS_PARTIALLY_REFUNDED),
    ]
    listed = await invoicing_stub.ListInvoices(pb.ListInvoicesRequest(
        organisation_id=invoice.organisation_id, status=pb.INVOICE_STATUS_PARTIALLY_REFUNDED))
    assert [i.id for i in listed.invoices] == [invoice.id]
    assert listed.invoices[0].amount_refunded_minor == 1800
    assert await paid_events(invoicing, invoice.id) == [f"invoice.paid:{invoice.id}:1"]


async def test_the_same_events_shuffled_and_duplicated_give_the_same_invoice(
    invoicing, invoicing_stub, metering, payments_stream
):
    results = []
    for shuffle in (False, True):
        invoice = await issued_invoice(invoicing, invoicing_stub)
        desk = Payments(payments_stream, invoice)
        events = [
            desk.overdue(),
            desk.captured("a", 4000, minutes=1),
            desk.captured("b", 9000, minutes=2),  # 1,200 more than due
            desk.refunded("r1", 2000, minutes=3),
            desk.refunded("r2", 500, minutes=4),
            desk.refund_failed("r2-failed", "r2", 500, minutes=5),
        ]
        if shuffle:
            events = events + random.sample(events, 3)
            random.shuffle(events)
            for index, event in enumerate(events):  # duplicates under fresh message ids: JetStream keeps them
                await desk.publish(event, msg_id=f"{event[1].event_id}-{index}")
        else:
            await desk.publish(*events)
        distinct = {event[1].event_id for event in events}

        async def recorded(invoice_id=invoice.id):
            return (await invoicing_stub.ListInvoiceSettlements(
                pb.ListInvoiceSettlementsRequest(invoice_id=invoice_id))).settlements

        settled = await eventually(recorded, lambda found, d=distinct: {s.event_id for s in found} == d, timeout=20)
        final = await _get(invoicing_stub, invoice.id)
        reviews = await reviews_of(invoicing_stub, invoice.organisation_id, 1)
        results.append((
            state(final),
            sorted((s.event_id.rsplit("_", 1)[1], s.applied) for s in settled),
            sorted((r.kind, r.event_id.rsplit("_", 1)[1], r.amount_minor) for r in reviews),
            [new for _, new, _ in await history(invoicing_stub, invoice.id)][-1],
        ))
    in_order, shuffled = results
    assert in_order == shuffled
    assert in_order[0] == (pb.INVOICE_STATUS_PARTIALLY_REFUNDED, 13000, 2000, 0)
    assert in_order[2] == [(pb.REVIEW_ITEM_KIND_OVER_PAYMENT, "b", 13000 - TOTAL)]


async def test_what_cannot_be_applied_goes_to_review(invoicing, invoicing_stub, metering, payments_stream):
    # A payment for a voided invoice: reviewed, and the invoice stays void.
    voided = await issued_invoice(invoicing, invoicing_stub)
    await invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=voided.id, reason="wrong address"))
    desk = Payments(payments_stream, voided)
    await desk.publish(desk.captured("late", TOTAL))
    (item,) = await reviews_of(invoicing_stub, voided.organisation_id, 1)
    assert (item.kind, item.detail, item.invoice_id, item.amount_minor) == (
        pb.REVIEW_ITEM_KIND_VOID_INVOICE, "payment for a void invoice", voided.id, TOTAL)
    assert state(await _get(invoicing_stub, voided.id)) == (pb.INVOICE_STATUS_VOID, 0, 0, 0)
    assert [(old, new, cause) for old, new, cause in await history(invoicing_stub, voided.id)][-1] == (
        pb.INVOICE_STATUS_ISSUED, pb.INVOICE_STATUS_VOID, "VoidInvoice")

    # Paid in dollars for a rupee invoice: reviewed, nothing applied.
    invoice = await issued_invoice(invoicing, invoicing_stub)
    desk = Payments(payments_stream, invoice)
    await desk.publish(desk.captured("usd", 150, currency="USD"))
    (item,) = await reviews_of(invoicing_stub, invoice.organisation_id, 1)
    assert (item.kind, item.detail, item.currency) == (
        pb.REVIEW_ITEM_KIND_CURRENCY_MISMATCH, "currency mismatch: paid USD, invoice INR", "USD")
    assert state(await _get(invoicing_stub, invoice.id)) == (pb.INVOICE_STATUS_ISSUED, 0, 0, TOTAL)

    # An over-payment: paid, and the excess reviewed.
    await desk.publish(desk.captured("over", TOTAL + 700, minutes=1))
    paid = await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    assert state(paid) == (pb.INVOICE_STATUS_PAID, TOTAL + 700, 0, 0)
    items = await reviews_of(invoicing_stub, invoice.organisation_id, 2)
    over = next(i for i in items if i.kind == pb.REVIEW_ITEM_KIND_OVER_PAYMENT)
    assert over.amount_minor == 700 and "7.00 INR more than was due" in over.detail

    # A payment for an invoice invoicing never issued: reviewed and acknowledged, not retried for ever.
    ghost = pb.Invoice(id="inv_doesnotexist" + secrets.token_hex(4), organisation_id=invoice.organisation_id)
    ghost_desk = Payments(payments_stream, ghost)
    await ghost_desk.publish(ghost_desk.captured("ghost", 999))
    items = await reviews_of(invoicing_stub, invoice.organisation_id, 3)
    unknown = next(i for i in items if i.kind == pb.REVIEW_ITEM_KIND_UNKNOWN_INVOICE)
    assert unknown.invoice_id == "" and ghost.id in unknown.detail and unknown.amount_minor == 999

    # An unreadable message on a consumed subject: reviewed (as the dead letter) and dropped.
    marker = f"garbage-{secrets.token_hex(4)}"
    await payments_stream.publish("billing.payments.v1.payment.captured", b"\xff\x00not protobuf",
                                  headers={"Nats-Msg-Id": marker}, timeout=5)

    async def unprocessable():
        found = (await invoicing_stub.ListReviewItems(pb.ListReviewItemsRequest(page_size=500))).review_items
        return [i for i in found if i.event_id == marker]

    (garbage,) = await eventually(unprocessable, lambda found: len(found) == 1, timeout=20)
    assert garbage.kind == pb.REVIEW_ITEM_KIND_UNPROCESSABLE_EVENT and "PaymentCaptured" in garbage.detail

    # Resolving is idempotent: the first resolution stays.
    resolved = await invoicing_stub.ResolveReviewItem(
        pb.ResolveReviewItemRequest(review_item_id=over.id, resolution="refunded 7.00 as rfd_x", resolved_by="asha"))
    again = await invoicing_stub.ResolveReviewItem(
        pb.ResolveReviewItemRequest(review_item_id=over.id, resolution="something else"))
    assert resolved.review_item.state == again.review_item.state == pb.REVIEW_ITEM_STATE_RESOLVED
    assert (again.review_item.resolution, again.review_item.resolved_by) == ("refunded 7.00 as rfd_x", "asha")
    still_open = await reviews_of(invoicing_stub, invoice.organisation_id, 2)
    assert over.id not in {i.id for i in still_open}
    done = await reviews_of(invoicing_stub, invoice.organisation_id, 1, pb.REVIEW_ITEM_STATE_RESOLVED)
    assert [i.id for i in done] == [over.id]
    await expect_rpc_error(
        invoicing_stub.ResolveReviewItem(pb.ResolveReviewItemRequest(review_item_id=over.id, resolution=" ")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_overdue_then_paid_and_uncollectible_marks_the_subscription_past_due(
    invoicing, invoicing_stub, metering, payments_stream
):
    invoice = await issued_invoice(invoicing, invoicing_stub)
    desk = Payments(payments_stream, invoice)
    await desk.publish(desk.overdue())
    await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_OVERDUE)
    await desk.publish(desk.captured("late", TOTAL, minutes=60))
    await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    await desk.publish(desk.uncollectible())  # after it was paid: changes nothing
    await desk.publish(desk.captured("marker", 1, currency="USD", minutes=61))
    await reviews_of(invoicing_stub, invoice.organisation_id, 1)
    assert state(await _get(invoicing_stub, invoice.id)) == (pb.INVOICE_STATUS_PAID, TOTAL, 0, 0)

    unpaid = await issued_invoice(invoicing, invoicing_stub)
    (subscription,) = (await invoicing_stub.ListSubscriptions(
        pb.ListSubscriptionsRequest(organisation_id=unpaid.organisation_id))).subscriptions
    assert not subscription.past_due
    desk = Payments(payments_stream, unpaid)
    await desk.publish(desk.overdue(), desk.uncollectible())
    await invoice_when(invoicing_stub, unpaid.id, lambda i: i.status == pb.INVOICE_STATUS_UNCOLLECTIBLE)

    async def subscription_now():
        return (await invoicing_stub.GetSubscription(
            pb.GetSubscriptionRequest(subscription_id=subscription.id))).subscription

    marked = await subscription_now()
    assert marked.past_due and marked.HasField("past_due_time")
    await desk.publish(desk.captured("recovered", TOTAL, minutes=60 * 24 * 30))
    await invoice_when(invoicing_stub, unpaid.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    cleared = await subscription_now()
    assert not cleared.past_due and not cleared.HasField("past_due_time")
    assert [new for _, new, _ in await history(invoicing_stub, unpaid.id)] == [
        pb.INVOICE_STATUS_ISSUED, pb.INVOICE_STATUS_OVERDUE, pb.INVOICE_STATUS_UNCOLLECTIBLE, pb.INVOICE_STATUS_PAID]


async def test_a_zero_total_invoice_is_settled_by_a_zero_capture(invoicing, invoicing_stub, metering, payments_stream):
    invoice = await issued_invoice(invoicing, invoicing_stub, base_fee="0")
    assert state(invoice) == (pb.INVOICE_STATUS_ISSUED, 0, 0, 0)
    desk = Payments(payments_stream, invoice)
    await desk.publish(desk.captured("none", 0, provider=payments.PROVIDER_NONE))
    await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    assert await paid_events(invoicing, invoice.id) == [f"invoice.paid:{invoice.id}:1"]


async def test_two_replicas_applying_the_same_events_at_once_apply_each_once(invoicing, invoicing_stub, metering):
    """What two invoicing replicas do when JetStream hands both the same events (an ack lost, ack_wait passed):
    the row lock queues them and the event id lets only the first record each."""
    invoice = await issued_invoice(invoicing, invoicing_stub)
    desk = Payments(None, invoice)
    events = [desk.captured("a", 3000), desk.captured("b", 4000, minutes=1), desk.captured("c", TOTAL - 7000,
                                                                                          minutes=2)]
    decoded = [decode_payments_event(subject, message.SerializeToString()) for subject, message in events]
    replicas = [Settlements(invoicing.uow, invoicing.outbox), Settlements(invoicing.uow, invoicing.outbox)]
    outcomes = await asyncio.gather(*(replica.apply(event) for event in decoded for replica in replicas))
    assert sorted(outcomes) == sorted([Outcome.APPLIED] * 3 + [Outcome.DUPLICATE] * 3)
    assert state(await _get(invoicing_stub, invoice.id)) == (pb.INVOICE_STATUS_PAID, TOTAL, 0, 0)
    assert await paid_events(invoicing, invoice.id) == [f"invoice.paid:{invoice.id}:1"]
