"""Notification's use cases over fakes: one message per (event, recipient, kind), exactly-once sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_runtime.errors import InvalidArgument
from services.notification.adapters.email_builder import Sender
from services.notification.adapters.mailer import SendResult
from services.notification.adapters.templates import Branding, Templates
from services.notification.domain.messages import MessageKind, MessageState, Recipients, RetrySchedule, SendOutcome
from services.notification.domain.notice import Notice
from services.notification.service import intake, queries, sending
from tests.unit.services.notification.fakes import FakeDocuments, FakeMailer, FakeUnit, Store, any_of, facts

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
DOMAIN = "billing.example"


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def uow(store):
    return lambda: FakeUnit(store)


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


@pytest.fixture
def documents() -> FakeDocuments:
    return FakeDocuments()


@pytest.fixture
def delivery(mailer, documents) -> sending.Delivery:
    sender = Sender(unsubscribe_address="unsub@billing.example")
    return sending.Delivery(mailer, Templates(Branding()), documents, sender,
                            RetrySchedule(timedelta(seconds=30), 2.0, timedelta(hours=1), 3), timedelta(minutes=2))


def issued(event_id: str = "evt_issued_1") -> Notice:
    return Notice(event_id, MessageKind.INVOICE_ISSUED, "inv_1", amount_minor=117882)


async def test_an_invoice_email_is_recorded_once_and_sent_once_with_its_pdf(uow, store, delivery, mailer):
    assert await intake.record(uow, issued(), NOW, DOMAIN, facts()) == 1
    assert await intake.record(uow, issued(), NOW, DOMAIN, facts()) == 0  # a redelivered event
    assert await sending.send_due(uow, delivery, NOW) == 1
    assert await sending.send_due(uow, delivery, NOW) == 0
    [email] = mailer.sent
    assert email["To"] == "billing@acme.example" and "INV/2627/00001" in email["Subject"]
    assert email["Message-ID"].endswith("@billing.example>") and "List-Unsubscribe" not in email
    [attachment] = list(email.iter_attachments())
    assert attachment.get_content_type() == "application/pdf" and attachment.get_content().startswith(b"%PDF")
    body = email.get_body(("plain",)).get_content()
    assert "INR 1,178.82" in body and "20 Dec 2026" in body
    message = any_of(store.messages)
    assert message.state is MessageState.SENT and message.attempts == 1 and message.subject == email["Subject"]


async def test_transient_failures_retry_with_backoff_then_fail_and_permanent_ones_fail_at_once(
    uow, store, delivery, mailer
):
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    mailer.answers = [SendResult(SendOutcome.TRANSIENT, "451 4.3.0 try later")] * 3
    await sending.send_due(uow, delivery, NOW)
    message = any_of(store.messages)
    assert message.state is MessageState.QUEUED and message.next_attempt_at == NOW + timedelta(seconds=30)
    assert await sending.send_due(uow, delivery, NOW + timedelta(seconds=29)) == 0
    await sending.send_due(uow, delivery, NOW + timedelta(seconds=30))
    await sending.send_due(uow, delivery, NOW + timedelta(seconds=90))
    message = any_of(store.messages)
    assert (message.state, message.attempts, message.last_reply) == (MessageState.FAILED, 3, "451 4.3.0 try later")
    await intake.record(uow, issued("evt_2"), NOW, DOMAIN)
    mailer.answers = [SendResult(SendOutcome.PERMANENT, "550 5.1.1 no such mailbox")]
    await sending.send_due(uow, delivery, NOW)
    failed = [m for m in store.messages.values() if m.event_id == "evt_2"][0]
    assert failed.state is MessageState.FAILED and failed.attempts == 1 and failed.last_reply.startswith("550")
    assert mailer.sent == []


async def test_a_send_whose_fate_is_unknown_is_left_for_an_operator(uow, store, delivery, mailer):
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    mailer.answers = [SendResult(SendOutcome.UNKNOWN, "the connection broke during the transfer")]
    await sending.send_due(uow, delivery, NOW)
    assert any_of(store.messages).state is MessageState.UNKNOWN
    assert await sending.send_due(uow, delivery, NOW + timedelta(days=1)) == 0


async def test_a_sender_that_died_mid_send_leaves_the_message_unknown_never_resent(uow, store, delivery, mailer):
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    async with uow() as unit:  # a sender claimed it, then died before recording anything
        await unit.messages.claim_due(NOW, timedelta(minutes=2), 10)
    assert await sending.send_due(uow, delivery, NOW + timedelta(minutes=1)) == 0
    assert any_of(store.messages).state is MessageState.SENDING
    await sending.send_due(uow, delivery, NOW + timedelta(minutes=3))
    assert any_of(store.messages).state is MessageState.UNKNOWN and mailer.sent == []
    original = any_of(store.messages)
    copy, created = await queries.resend(uow, original.id, "operator-checked-1", NOW)
    again, created_again = await queries.resend(uow, original.id, "operator-checked-1", NOW)
    assert created and not created_again and again.id == copy.id
    assert copy.message_id_header != original.message_id_header
    await sending.send_due(uow, delivery, NOW + timedelta(minutes=4))
    assert len(mailer.sent) == 1


async def test_the_pdf_not_yet_available_is_a_transient_failure(uow, store, delivery, mailer, documents):
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    documents.down = True
    await sending.send_due(uow, delivery, NOW)
    message = any_of(store.messages)
    assert message.state is MessageState.QUEUED and "PDF is not available" in message.last_reply
    documents.down = False
    await sending.send_due(uow, delivery, NOW + timedelta(minutes=1))
    assert len(mailer.sent) == 1


async def test_cc_and_opt_outs_and_unsubscribe_on_reminders_only(uow, store, delivery, mailer):
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    await queries.set_recipients(uow, Recipients("org_1", ("finance@acme.example",),
                                                 frozenset({MessageKind.INVOICE_OVERDUE})))
    overdue = Notice("evt_overdue", MessageKind.INVOICE_OVERDUE, "inv_1", amount_minor=117882)
    retry = Notice("evt_retry", MessageKind.PAYMENT_RETRY, "inv_1", amount_minor=117882,
                   payment_link_url="https://rzp.io/i/abc", attempt_number=1, max_attempts=3)
    await intake.record(uow, overdue, NOW, DOMAIN)
    await intake.record(uow, retry, NOW, DOMAIN)
    states = {m.kind: m.state for m in store.messages.values()}
    assert states[MessageKind.INVOICE_OVERDUE] is MessageState.SUPPRESSED
    await sending.send_due(uow, delivery, NOW)
    reminder = next(e for e in mailer.sent if "Reminder" in e["Subject"])
    assert reminder["Cc"] == "finance@acme.example" and reminder["List-Unsubscribe"].startswith("<mailto:unsub@")
    assert "https://rzp.io/i/abc" in reminder.get_body(("html",)).get_content()
    with pytest.raises(InvalidArgument) as caught:
        Recipients("org_1", (), frozenset({MessageKind.PAYMENT_RECEIPT}))
    assert caught.value.field == "opted_out"


async def test_mail_about_an_invoice_notification_never_saw_is_skipped(uow, store):
    assert await intake.record(uow, Notice("e", MessageKind.PAYMENT_RECEIPT, "inv_unknown"), NOW, DOMAIN) == 0
    assert store.messages == {}


async def test_a_long_subject_is_not_folded_into_a_leading_space(uow, store, delivery, mailer):
    from email import message_from_bytes, policy

    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    await sending.send_due(uow, delivery, NOW)
    [email] = mailer.sent
    parsed = message_from_bytes(email.as_bytes(policy=email.policy.clone(linesep="\r\n")), policy=policy.default)
    assert str(parsed["Subject"]) == email["Subject"] and not str(parsed["Subject"]).startswith(" ")


async def test_an_invoice_invoicing_does_not_have_fails_at_once(uow, store, delivery, mailer, documents):
    from billing_runtime.errors import NotFound

    async def missing(invoice_id: str):
        raise NotFound(f"no invoice with id {invoice_id!r}")

    documents.pdf = missing
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    await sending.send_due(uow, delivery, NOW)
    message = any_of(store.messages)
    assert message.state is MessageState.FAILED and "does not exist" in message.last_reply and mailer.sent == []


async def test_an_invoice_not_debited_on_its_mandate_gets_its_payment_link_by_email(uow, store, delivery, mailer):
    from billing.payments.v1 import events_pb2
    from services.notification.adapters import events

    sent = events_pb2.AutoDebitLinkSent(
        event_id="autodebit.link_sent:inv_1", invoice_id="inv_1", organisation_id="org_1",
        invoice_number="INV/2627/00001", mandate_id="mdt_1", method="upi",
        reason="upi debits above INR 15,000.00 need the customer's authentication",
        payment_link_url="https://rzp.io/i/ad1", currency="INR", amount_due_minor=117882)
    decoded = events.decode(events.AUTODEBIT_LINK_SENT, sent.SerializeToString())
    assert decoded.notice is not None and decoded.notice.kind is MessageKind.AUTODEBIT_LINK
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    assert await intake.record(uow, decoded.notice, NOW, DOMAIN) == 1
    assert await intake.record(uow, decoded.notice, NOW, DOMAIN) == 0  # a redelivered event
    await sending.send_due(uow, delivery, NOW)
    [email] = [e for e in mailer.sent if "by link" in e["Subject"]]
    assert "INV/2627/00001" in email["Subject"] and "pay it by link" in email["Subject"]
    body = email.get_body(("plain",)).get_content()
    assert "https://rzp.io/i/ad1" in body and "INR 1,178.82" in body and "15,000.00" in body
