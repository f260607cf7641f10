"""Notification against a real local SMTP server (the mailbox sandboxes/smtp runs): an invoice from a real run is
emailed once with its PDF; 451s are retried and the mail sent once; a 550 is recorded, not retried; a redelivered
event sends nothing more."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.notification.v1 import notification_pb2 as pb
from billing.notification.v1 import notification_pb2_grpc
from billing_runtime.service import Runtime
from sandboxes.smtp import running_mailbox
from services.notification.__main__ import DEFINITION as NOTIFICATION
from tests.conftest import mesh_channel, running_service
from tests.integration.payments.conftest import issue_invoice


@dataclass
class Mailing:
    mailbox: object
    notification: Runtime
    stub: notification_pb2_grpc.NotificationServiceStub


@pytest.fixture(scope="module")
async def mailing(database_url, nats_url, invoicing) -> AsyncIterator[Mailing]:
    async with running_mailbox() as mailbox, running_service(
        NOTIFICATION, database_url, nats_url, invoicing_address=invoicing.address, smtp_host=mailbox.smtp_host,
        smtp_port=mailbox.smtp_port, worker_interval_seconds=0.1, retry_base_seconds=0.2, retry_cap_seconds=1.0,
        retry_max_attempts=5, consumer_durable_prefix=f"notification-{secrets.token_hex(4)}",
    ) as notification:
        async with mesh_channel(notification.address) as channel:
            yield Mailing(mailbox, notification, notification_pb2_grpc.NotificationServiceStub(channel))


async def messages_of(stub, invoice_id: str) -> list[pb.Message]:
    return list((await stub.ListMessages(pb.ListMessagesRequest(invoice_id=invoice_id))).messages)


async def settled(stub, invoice_id: str, state: int, timeout: float = 30.0) -> pb.Message:
    deadline = asyncio.get_running_loop().time() + timeout
    found: list[pb.Message] = []
    while asyncio.get_running_loop().time() < deadline:
        found = await messages_of(stub, invoice_id)
        if found and found[0].state == state:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message of {invoice_id} reached state {state}; saw {found}")


async def test_an_issued_invoice_is_emailed_once_with_its_pdf(mailing, invoicing_stub, invoicing):
    invoice = await issue_invoice(invoicing_stub, invoicing)
    message = await settled(mailing.stub, invoice.id, pb.MESSAGE_STATE_SENT)
    [mail] = await mailing.mailbox.wait_for(lambda m: m.header("Message-ID") == message.message_id_header)
    assert mail.addresses("To") == [invoice.customer.email.lower()]
    assert invoice.number in mail.header("Subject") and "INR 118.00" in mail.header("Subject")
    text = mail.email.get_body(("plain",)).get_content()
    html = mail.email.get_body(("html",)).get_content()
    assert "INR 118.00" in text and invoice.number in html
    [pdf] = list(mail.email.iter_attachments())
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content().startswith(b"%PDF")
    assert mail.header("List-Unsubscribe") is None  # an invoice is transactional mail
    detail = await mailing.stub.GetMessage(pb.GetMessageRequest(message_id=message.id))
    assert [(a.number, a.outcome) for a in detail.attempts] == [(1, "sent")]
    assert detail.attempts[0].reply.startswith("250")

    # The same event again (a redelivery past JetStream's duplicate window): no second mail.
    republished = invoicing_events.InvoiceIssued(event_id=message.event_id, invoice=invoice)
    await mailing.notification.js.publish("billing.invoicing.v1.invoice.issued", republished.SerializeToString(),
                                          headers={"Nats-Msg-Id": f"again-{secrets.token_hex(4)}"})
    await asyncio.sleep(1.0)
    assert len(await messages_of(mailing.stub, invoice.id)) == 1
    assert sum(m.header("Message-ID") == message.message_id_header for m in mailing.mailbox.messages()) == 1

    preview = await mailing.stub.PreviewMessage(pb.PreviewMessageRequest(message_id=message.id))
    assert preview.subject == message.subject and invoice.number in preview.html and preview.attachments


async def test_temporary_refusals_are_retried_and_the_mail_sent_once(mailing, invoicing_stub, invoicing):
    await mailing.mailbox.control.inject("451 4.3.0 try again later", times=2, stage="RCPT")
    invoice = await issue_invoice(invoicing_stub, invoicing)
    message = await settled(mailing.stub, invoice.id, pb.MESSAGE_STATE_SENT)
    assert message.attempts == 3
    detail = await mailing.stub.GetMessage(pb.GetMessageRequest(message_id=message.id))
    assert [a.outcome for a in detail.attempts] == ["transient", "transient", "sent"]
    assert detail.attempts[0].reply.startswith("451")
    assert sum(m.header("Message-ID") == message.message_id_header for m in mailing.mailbox.messages()) == 1


async def test_a_permanent_refusal_is_recorded_and_not_retried(mailing, invoicing_stub, invoicing):
    await mailing.mailbox.control.inject("550 5.1.1 mailbox unavailable", times=5, stage="RCPT")
    invoice = await issue_invoice(invoicing_stub, invoicing)
    message = await settled(mailing.stub, invoice.id, pb.MESSAGE_STATE_FAILED)
    await mailing.mailbox.control.clear_faults()
    assert message.attempts == 1 and message.last_reply.startswith("550")
    await asyncio.sleep(1.0)
    assert (await messages_of(mailing.stub, invoice.id))[0].attempts == 1
    resent = await mailing.stub.ResendMessage(pb.ResendMessageRequest(message_id=message.id,
                                                                      idempotency_key="fixed-the-mailbox"))
    assert resent.created
    again = await mailing.stub.ResendMessage(pb.ResendMessageRequest(message_id=message.id,
                                                                     idempotency_key="fixed-the-mailbox"))
    assert not again.created and again.message.id == resent.message.id
    for _ in range(100):
        found = {m.id: m for m in await messages_of(mailing.stub, invoice.id)}
        if found[resent.message.id].state == pb.MESSAGE_STATE_SENT:
            break
        await asyncio.sleep(0.1)
    assert found[resent.message.id].state == pb.MESSAGE_STATE_SENT and len(found) == 2
