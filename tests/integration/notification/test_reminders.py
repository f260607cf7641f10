"""Reminders through the running notification service and a real mailbox: an invoice issued with one reminder due
at once and one days later gets the first mailed exactly once; its payment cancels the later one, and a void
invoice's reminders are cancelled the same way."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import nats
import pytest

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2
from billing.notification.v1 import notification_pb2 as pb
from billing.notification.v1 import notification_pb2_grpc
from billing_runtime.messaging import ensure_stream, stream_name
from billing_runtime.service import Runtime
from sandboxes.smtp import running_mailbox
from services.notification.__main__ import DEFINITION as NOTIFICATION
from services.notification.adapters.unit_of_work import NotificationUnitOfWork
from services.notification.domain.reminders import Reminder, ReminderState
from tests.conftest import mesh_channel, running_service

ZONE = "Asia/Kolkata"
# Due in three days: the three-days-before reminder's day is today, so it is due at once; five days after is not.
OFFSETS = [-3, 5]


@dataclass
class Reminding:
    mailbox: object
    notification: Runtime
    stub: notification_pb2_grpc.NotificationServiceStub
    js: object


@pytest.fixture(scope="module")
async def reminding(database_url, nats_url, refused_address) -> AsyncIterator[Reminding]:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    # The owner's stream, as invoicing makes it (when it already ran, this changes nothing).
    await ensure_stream(js, stream_name("invoicing"), ["billing.invoicing.v1.>"])
    durable_prefix = f"notification-{secrets.token_hex(4)}"
    try:
        async with running_mailbox() as mailbox, running_service(
            NOTIFICATION, database_url, nats_url, invoicing_address=refused_address, smtp_host=mailbox.smtp_host,
            smtp_port=mailbox.smtp_port, worker_interval_seconds=0.1, consumer_durable_prefix=durable_prefix,
            reminder_offsets_days=OFFSETS, reminder_time_zone=ZONE, unsubscribe_address="unsubscribe@billing.example",
        ) as notification:
            # The consumer starts from new events the first time it is made: publish only once it exists.
            await _consumer_ready(js, f"{durable_prefix}-invoicing")
            async with mesh_channel(notification.address) as channel:
                yield Reminding(mailbox, notification, notification_pb2_grpc.NotificationServiceStub(channel), js)
    finally:
        await client.drain()


async def _consumer_ready(js, durable: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                await js.consumer_info(stream_name("invoicing"), durable)
                return
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.1)


def _invoice(invoice_id: str, **values: object) -> invoicing_pb2.Invoice:
    today = datetime.now(ZoneInfo(ZONE)).date()
    return invoicing_pb2.Invoice(
        id=invoice_id, organisation_id=f"org_{secrets.token_hex(6)}", number=f"INV/2627/{invoice_id[-5:]}",
        currency="INR", total_minor=117882, issue_date=today.isoformat(),
        due_date=(today + timedelta(days=3)).isoformat(), period_key="2026-11",
        customer=invoicing_pb2.Party(name="Acme Analytics", email="billing@acme.example"), **values)


async def _publish(js, subject: str, event) -> None:  # noqa: ANN001 - an event message
    await js.publish(subject, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})


async def _issue(reminding: Reminding) -> str:
    invoice_id = f"inv_{secrets.token_hex(6)}"
    await _publish(reminding.js, "billing.invoicing.v1.invoice.issued",
                   invoicing_events.InvoiceIssued(event_id=f"evt_issued_{invoice_id}", invoice=_invoice(invoice_id)))
    return invoice_id


async def _reminders(reminding: Reminding, invoice_id: str) -> dict[int, Reminder]:
    async with NotificationUnitOfWork(reminding.notification.engine) as unit:
        return {r.offset_days: r for r in await unit.reminders.of_invoice(invoice_id)}


async def _until(probe, timeout: float = 20.0):  # noqa: ANN001, ANN202 - an async callable and what it returns
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await probe()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def _messages(reminding: Reminding, invoice_id: str, kind: int) -> list[pb.Message]:
    reply = await reminding.stub.ListMessages(pb.ListMessagesRequest(invoice_id=invoice_id, kind=kind))
    return list(reply.messages)


async def test_the_due_reminder_is_mailed_once_and_payment_cancels_the_later_one(reminding):
    invoice_id = await _issue(reminding)

    async def sent_reminder() -> list[pb.Message]:
        found = await _messages(reminding, invoice_id, pb.MESSAGE_KIND_INVOICE_REMINDER)
        return [m for m in found if m.state == pb.MESSAGE_STATE_SENT]

    [message] = await _until(sent_reminder)
    assert message.event_id == f"reminder:{invoice_id}:-3"
    [mail] = await reminding.mailbox.wait_for(lambda m: m.header("Message-ID") == message.message_id_header)
    assert "is due in 3 days" in mail.header("Subject") and "INR 1,178.82" in mail.header("Subject")
    assert "invoice_reminder" in mail.header("List-Unsubscribe")  # a reminder: it can be opted out of

    reminders = await _reminders(reminding, invoice_id)
    assert reminders[-3].state is ReminderState.SENT and reminders[5].state is ReminderState.SCHEDULED
    today = datetime.now(ZoneInfo(ZONE)).date()
    assert reminders[5].due_at == datetime.combine(today + timedelta(days=8), datetime.min.time(),
                                                   tzinfo=ZoneInfo(ZONE))

    paid = invoicing_events.InvoicePaid(event_id=f"invoice.paid:{invoice_id}:1",
                                        invoice=_invoice(invoice_id, amount_paid_minor=117882))
    await _publish(reminding.js, "billing.invoicing.v1.invoice.paid", paid)

    async def cancelled() -> bool:
        return (await _reminders(reminding, invoice_id))[5].state is ReminderState.CANCELLED

    assert await _until(cancelled)
    assert (await _reminders(reminding, invoice_id))[5].reason == "paid"
    assert await _until(lambda: _messages(reminding, invoice_id, pb.MESSAGE_KIND_PAYMENT_RECEIPT))
    await asyncio.sleep(0.5)  # a few more worker rounds: still the one reminder, mailed once
    assert len(await _messages(reminding, invoice_id, pb.MESSAGE_KIND_INVOICE_REMINDER)) == 1
    assert sum(m.header("Message-ID") == message.message_id_header for m in reminding.mailbox.messages()) == 1


async def test_a_void_invoice_gets_no_more_reminders(reminding):
    invoice_id = await _issue(reminding)
    assert await _until(lambda: _messages(reminding, invoice_id, pb.MESSAGE_KIND_INVOICE_REMINDER))
    voided = invoicing_events.InvoiceVoided(event_id=f"invoice.voided:{invoice_id}",
                                            invoice=_invoice(invoice_id, status=invoicing_pb2.INVOICE_STATUS_VOID))
    await _publish(reminding.js, "billing.invoicing.v1.invoice.voided", voided)

    async def cancelled() -> bool:
        return (await _reminders(reminding, invoice_id))[5].state is ReminderState.CANCELLED

    assert await _until(cancelled)
    assert (await _reminders(reminding, invoice_id))[5].reason == "void"
