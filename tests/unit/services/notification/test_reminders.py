"""Reminders over fakes: scheduled at issue (past days skipped), stopped by paid and void whichever comes first,
sent once under their deterministic event id, opted out of like any reminder, and posted to subscribed webhooks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.notification.adapters.email_builder import Sender
from services.notification.adapters.templates import Branding, Templates
from services.notification.config import NotificationSettings
from services.notification.domain.messages import MessageKind, MessageState, Recipients, RetrySchedule
from services.notification.domain.notice import Notice
from services.notification.domain.reminders import (
    MISSED,
    Closure,
    ClosureReason,
    ReminderSchedule,
    ReminderState,
    due_phrase,
)
from services.notification.service import intake, queries, reminding, sending
from tests.unit.services.notification.fakes import FakeDocuments, FakeMailer, FakeUnit, Store, facts

IST = ZoneInfo("Asia/Kolkata")
DOMAIN = "billing.example"
# facts() is due on 20 Dec 2026; it is issued at 15:30 in Kolkata on the 15th.
ISSUED_AT = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)
SCHEDULE = ReminderSchedule((-7, -3, 3), IST)
THREE_DAYS_BEFORE = datetime(2026, 12, 17, tzinfo=IST)
THREE_DAYS_AFTER = datetime(2026, 12, 23, tzinfo=IST)


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
def delivery(mailer) -> sending.Delivery:
    return sending.Delivery(mailer, Templates(Branding()), FakeDocuments(),
                            Sender(unsubscribe_address="unsub@billing.example"), RetrySchedule(),
                            timedelta(minutes=2))


async def issue(uow, invoice=None, at: datetime = ISSUED_AT, schedule: ReminderSchedule = SCHEDULE) -> None:
    invoice = invoice or facts()
    notice = Notice(f"evt_issued_{invoice.invoice_id}", MessageKind.INVOICE_ISSUED, invoice.invoice_id,
                    amount_minor=invoice.total_minor)
    await intake.record(uow, notice, at, DOMAIN, invoice, reminders=schedule)


async def pay(uow, at: datetime, invoice_id: str = "inv_1") -> int:
    event_id = f"invoice.paid:{invoice_id}:1"
    return await intake.record(uow, Notice(event_id, MessageKind.PAYMENT_RECEIPT, invoice_id), at, DOMAIN,
                               closure=Closure(invoice_id, event_id, ClosureReason.PAID))


async def void(uow, at: datetime, invoice_id: str = "inv_1") -> None:
    """invoice.voided as the consumer applies it: no mail, only the closure."""
    async with uow() as unit:
        await intake.apply(unit, None, at, DOMAIN,
                           closure=Closure(invoice_id, f"invoice.voided:{invoice_id}", ClosureReason.VOID))


def reminders_of(store: Store) -> dict[int, tuple[ReminderState, str]]:
    return {r.offset_days: (r.state, r.reason) for r in store.reminders.values()}


def reminder_mail(store: Store) -> list:
    return [m for m in store.messages.values() if m.kind is MessageKind.INVOICE_REMINDER]


async def test_issue_schedules_each_offset_at_the_start_of_its_day_in_the_suppliers_zone_skipping_past_days(
    uow, store
):
    await issue(uow)
    await issue(uow)  # a redelivered invoice.issued schedules nothing more
    scheduled = {r.offset_days: r for r in store.reminders.values()}
    assert sorted(scheduled) == [-3, 3]  # 13 Dec, seven days before, was over when it was issued
    assert scheduled[-3].due_at == THREE_DAYS_BEFORE == datetime(2026, 12, 16, 18, 30, tzinfo=UTC)
    assert scheduled[-3].expires_at == THREE_DAYS_BEFORE + timedelta(days=1)
    assert scheduled[3].due_at == THREE_DAYS_AFTER and scheduled[3].state is ReminderState.SCHEDULED
    assert scheduled[-3].event_id == "reminder:inv_1:-3"


async def test_a_reminder_whose_day_has_begun_is_still_scheduled_and_due_at_once(uow, store):
    # Issued at 09:00 on the 17th in Kolkata: "due in 3 days" is still true all that day.
    at = datetime(2026, 12, 17, 3, 30, tzinfo=UTC)
    await issue(uow, at=at)
    assert sorted(reminders_of(store)) == [-3, 3]
    assert await reminding.send_due(uow, DOMAIN, at) == (1, 1)


async def test_no_reminders_without_a_due_date_or_with_nothing_to_pay(uow, store):
    await issue(uow, replace(facts("inv_free"), total_minor=0))
    await issue(uow, replace(facts("inv_on_receipt"), due_date=None))
    assert store.reminders == {}
    assert ReminderSchedule((-3,), IST).plan(facts(), datetime(2026, 12, 25, tzinfo=UTC)) == []


async def test_a_due_reminder_is_mailed_once_as_an_opt_outable_reminder(uow, store, delivery, mailer):
    await issue(uow)
    await sending.send_due(uow, delivery, ISSUED_AT)  # the invoice itself
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE - timedelta(seconds=1)) == (0, 0)
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE) == (1, 1)
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE) == (0, 0)
    assert reminders_of(store)[-3] == (ReminderState.SENT, "")
    await sending.send_due(uow, delivery, THREE_DAYS_BEFORE)
    [reminder] = [e for e in mailer.sent if "is due in 3 days" in e["Subject"]]
    assert reminder["Subject"] == "Invoice INV/2627/00001 is due in 3 days: INR 1,178.82"
    assert reminder["List-Unsubscribe"].startswith("<mailto:unsub@")
    assert "20 Dec 2026" in reminder.get_body(("plain",)).get_content()
    [message] = reminder_mail(store)
    assert message.event_id == "reminder:inv_1:-3" and message.state is MessageState.SENT

    # After the due date the wording turns round.
    await reminding.send_due(uow, DOMAIN, THREE_DAYS_AFTER)
    await sending.send_due(uow, delivery, THREE_DAYS_AFTER)
    assert mailer.sent[-1]["Subject"] == "Invoice INV/2627/00001 was due 3 days ago: INR 1,178.82"


async def test_a_reminder_claimed_again_after_a_crash_is_still_one_message(uow, store, delivery, mailer):
    await issue(uow)
    await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE)
    # As if the worker's round had been repeated (a crash after recording, before the reminder's state stuck).
    key = ("inv_1", -3)
    store.reminders[key] = replace(store.reminders[key], state=ReminderState.SCHEDULED)
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE) == (1, 0)
    await sending.send_due(uow, delivery, THREE_DAYS_BEFORE)
    assert len(reminder_mail(store)) == 1
    assert sum("is due in" in e["Subject"] for e in mailer.sent) == 1


@pytest.mark.parametrize("close", [pay, void])
async def test_paid_or_void_before_the_due_time_cancels_every_reminder(uow, store, delivery, mailer, close):
    await issue(uow)
    await close(uow, ISSUED_AT + timedelta(days=1))
    reason = "paid" if close is pay else "void"
    assert reminders_of(store) == {-3: (ReminderState.CANCELLED, reason), 3: (ReminderState.CANCELLED, reason)}
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_AFTER) == (0, 0)
    assert reminder_mail(store) == []
    if close is pay:  # the receipt is recorded in the same transaction
        assert [m.kind for m in store.messages.values()].count(MessageKind.PAYMENT_RECEIPT) == 1


@pytest.mark.parametrize("close", [pay, void])
async def test_paid_or_void_after_a_reminder_was_recorded_suppresses_it_if_not_yet_sent(
    uow, store, delivery, mailer, close
):
    await issue(uow)
    await sending.send_due(uow, delivery, ISSUED_AT)
    await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE)  # recorded, not yet sent: the paid event wins
    await close(uow, THREE_DAYS_BEFORE)
    [message] = reminder_mail(store)
    assert message.state is MessageState.SUPPRESSED and message.last_reply.startswith("not sent: the invoice is")
    await sending.send_due(uow, delivery, THREE_DAYS_BEFORE)
    assert not any("is due in" in e["Subject"] for e in mailer.sent)
    assert reminders_of(store)[-3][0] is ReminderState.SENT and reminders_of(store)[3][0] is ReminderState.CANCELLED


@pytest.mark.parametrize("close", [pay, void])
async def test_paid_or_void_after_a_reminder_was_sent_stops_only_the_later_ones(uow, store, delivery, mailer, close):
    await issue(uow)
    await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE)
    await sending.send_due(uow, delivery, THREE_DAYS_BEFORE)
    await close(uow, THREE_DAYS_BEFORE + timedelta(days=1))
    assert reminder_mail(store)[0].state is MessageState.SENT
    assert reminders_of(store)[3][0] is ReminderState.CANCELLED
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_AFTER) == (0, 0)


@pytest.mark.parametrize("close", [pay, void])
async def test_a_closure_that_overtook_the_issued_event_stops_its_reminders(uow, store, close):
    await close(uow, ISSUED_AT)  # the invoice.issued was redelivered after it
    await issue(uow)
    assert store.reminders == {}


async def test_a_reminder_of_an_invoice_closed_meanwhile_is_cancelled_by_the_worker(uow, store):
    # Scheduled and closed in concurrent transactions: neither saw the other, the worker (under the lock) does.
    await issue(uow)
    store.closures["inv_1"] = Closure("inv_1", "invoice.voided:inv_1", ClosureReason.VOID)
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE) == (1, 0)
    assert reminders_of(store)[-3] == (ReminderState.CANCELLED, "void") and reminder_mail(store) == []


async def test_a_reminder_whose_day_ended_before_it_could_be_sent_is_missed_not_sent_late(uow, store):
    await issue(uow)
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE + timedelta(days=1)) == (1, 0)
    assert reminders_of(store)[-3] == (ReminderState.CANCELLED, MISSED) and reminder_mail(store) == []


async def test_an_organisation_that_opted_out_of_reminders_gets_none(uow, store, delivery, mailer):
    await queries.set_recipients(uow, Recipients("org_1", (), frozenset({MessageKind.INVOICE_REMINDER})))
    await issue(uow)
    await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE)
    await sending.send_due(uow, delivery, THREE_DAYS_BEFORE)
    [message] = reminder_mail(store)
    assert message.state is MessageState.SUPPRESSED
    assert not any("is due in" in e["Subject"] for e in mailer.sent)


async def test_endpoints_subscribed_to_invoice_reminder_get_it_with_its_offset(uow, store):
    from services.notification.service import endpoints
    from tests.unit.services.notification.webhook_fakes import FakeResolver

    resolver = FakeResolver({"hooks.acme.example": ["93.184.216.34"]})
    subscribed = await endpoints.create_endpoint(uow, resolver, False, organisation_id="org_1",
                                                 url="https://hooks.acme.example/r",
                                                 event_types=["invoice.reminder"], description="")
    await endpoints.create_endpoint(uow, resolver, False, organisation_id="org_1",
                                    url="https://hooks.acme.example/paid", event_types=["invoice.paid"],
                                    description="")
    await issue(uow)
    assert await reminding.send_due(uow, DOMAIN, THREE_DAYS_BEFORE) == (1, 2)  # the mail and one webhook
    [webhook] = [d for d in store.deliveries.values() if d.event_type == "invoice.reminder"]
    assert webhook.endpoint_id == subscribed.id and webhook.event_id == "reminder:inv_1:-3"
    payload = json.loads(webhook.payload)
    assert payload["data"]["offset_days"] == -3 and payload["data"]["invoice"]["due_date"] == "2026-12-20"
    assert payload["timestamp"] == THREE_DAYS_BEFORE.astimezone(UTC).isoformat()


def test_due_phrases():
    assert [due_phrase(d) for d in (-3, -1, 0, 1, 7)] == [
        "is due in 3 days", "is due in 1 day", "is due today", "was due 1 day ago", "was due 7 days ago"]


def test_settings_take_a_json_list_of_offsets_and_an_iana_zone(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://billing@127.0.0.1/billing")
    monkeypatch.setenv("NOTIFICATION_REMINDER_OFFSETS_DAYS", "[-7, -1, 3]")
    monkeypatch.setenv("NOTIFICATION_REMINDER_TIME_ZONE", "Europe/Berlin")
    schedule = NotificationSettings().reminder_schedule()
    assert schedule.offsets_days == (-7, -1, 3) and schedule.zone == ZoneInfo("Europe/Berlin")
    monkeypatch.delenv("NOTIFICATION_REMINDER_OFFSETS_DAYS")
    monkeypatch.delenv("NOTIFICATION_REMINDER_TIME_ZONE")
    default = NotificationSettings().reminder_schedule()
    assert default.offsets_days == (-3,) and default.zone == IST
    with pytest.raises(ValidationError, match="reminder_time_zone"):
        NotificationSettings(reminder_time_zone="Mars/Olympus")
    with pytest.raises(ValidationError, match="reminder_offsets_days"):
        NotificationSettings(reminder_offsets_days=[400])
