"""Turning an event into messages: recorded once per (event, recipient, kind), before anything is sent, and into
webhook deliveries: one per (event, endpoint) for each enabled endpoint of the organisation subscribed to the
event's type, in the same transaction.

The same transaction keeps the invoice's reminders in step: invoice.issued schedules them, invoice.paid (with
its receipt) and invoice.voided cancel them and suppress any still queued, so no reminder of a paid or void
invoice goes out once that event is recorded.

A fired alert (alert.triggered) is about an organisation, not an invoice: its mail goes to the billing email
invoicing has for the organisation now (asked before the transaction opens, so an organisation that was never
invoiced is told too), and the alert's facts travel on the message, so it renders again without metering.
"""

from __future__ import annotations

from datetime import datetime

from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.notification.domain.alerts import AlertTriggered
from services.notification.domain.messages import (
    Message,
    MessageKind,
    MessageState,
    Recipients,
    message_id_header,
)
from services.notification.domain.notice import Contact, InvoiceFacts, Notice
from services.notification.domain.reminders import Closure, ReminderSchedule
from services.notification.domain.webhook_payload import alert_payload, body, event_payload
from services.notification.domain.webhooks import EVENT_TYPES, Delivery, DeliveryState, webhook_id
from services.notification.service.ports import Unit, UnitFactory

log = get_logger(__name__)


async def record(uow: UnitFactory, notice: Notice, now: datetime, domain: str,
                 issued: InvoiceFacts | None = None, *, reminders: ReminderSchedule | None = None,
                 closure: Closure | None = None) -> int:
    """Record the messages and webhook deliveries an event calls for; returns how many are new (0 for a
    redelivered event). The invoice's facts come with invoice.issued and are kept for the later mail about it;
    with a reminder schedule, its reminders are scheduled too. A closure (invoice.paid) stops its reminders."""
    async with uow() as unit:
        return await apply(unit, notice, now, domain, issued, reminders=reminders, closure=closure)


async def apply(unit: Unit, notice: Notice | None, now: datetime, domain: str, issued: InvoiceFacts | None = None,
                *, reminders: ReminderSchedule | None = None, closure: Closure | None = None) -> int:
    """:func:`record` within a transaction the caller holds (a consumer applies a fetch of events in one). An
    event with no notice (invoice.voided) only stops reminders."""
    if closure is not None:
        await stop_reminders(unit, closure, now)
    if issued is not None:
        await unit.invoices.add(issued)
        if reminders is not None:
            await schedule_reminders(unit, reminders, issued, now)
    if notice is None:
        return 0
    return await record_in(unit, notice, now, domain)


async def schedule_reminders(unit: Unit, schedule: ReminderSchedule, invoice: InvoiceFacts, now: datetime) -> int:
    if await unit.reminders.closure(invoice.invoice_id) is not None:
        # Its invoice.paid or invoice.voided overtook this invoice.issued (a redelivery).
        return 0
    return await unit.reminders.schedule(schedule.plan(invoice, now))


async def stop_reminders(unit: Unit, closure: Closure, now: datetime) -> int:
    # Reminders first: cancelling one a worker is turning into a message waits for the worker's commit, so the
    # suppression that follows sees the message it recorded.
    cancelled = await unit.reminders.close(closure, now)
    suppressed = await unit.messages.suppress_queued(closure.invoice_id, MessageKind.INVOICE_REMINDER,
                                                     f"not sent: the invoice is {closure.reason}")
    if cancelled or suppressed:
        log.info("reminders stopped", invoice_id=closure.invoice_id, reason=str(closure.reason),
                 cancelled=cancelled, suppressed=suppressed)
    return cancelled + suppressed


async def record_in(unit: Unit, notice: Notice, now: datetime, domain: str) -> int:
    """:func:`record` within a transaction the caller holds (the reminder worker's, which holds the reminder)."""
    invoice: InvoiceFacts | None = await unit.invoices.get(notice.invoice_id)
    if invoice is None:
        log.warning("no mail: the invoice was issued before notification knew it", invoice_id=notice.invoice_id,
                    event_id=notice.event_id, kind=str(notice.kind))
        return 0
    webhooks = 0
    if (event_type := EVENT_TYPES.get(notice.kind)) is not None:
        # The body is made once per event, so every endpoint (and every retry) gets the same bytes.
        webhooks = await _record_webhooks(unit, notice.event_id, invoice.organisation_id, event_type,
                                          body(event_payload(event_type, notice, invoice, now)), now)
    if not invoice.billing_email:
        log.warning("no mail: the invoice has no billing email", invoice_id=invoice.invoice_id)
        return webhooks
    return webhooks + await _record_message(unit, notice, invoice.organisation_id, invoice.invoice_id,
                                            invoice.billing_email, now, domain)


async def record_alert(uow: UnitFactory, triggered: AlertTriggered, contact: Contact | None, now: datetime,
                       domain: str) -> int:
    """Record the mail and webhook deliveries of a fired alert; returns how many are new (0 when redelivered).
    ``contact`` is the organisation's as invoicing has it (None: invoicing does not know the organisation, so
    only its webhooks go out)."""
    async with uow() as unit:
        return await apply_alert(unit, triggered, contact, now, domain)


async def apply_alert(unit: Unit, triggered: AlertTriggered, contact: Contact | None, now: datetime,
                      domain: str) -> int:
    """:func:`record_alert` within a transaction the caller holds."""
    alert = triggered.alert
    event_type = EVENT_TYPES[MessageKind.ALERT_TRIGGERED]
    webhooks = await _record_webhooks(unit, triggered.event_id, alert.organisation_id, event_type,
                                      body(alert_payload(triggered.event_id, alert, now)), now)
    if contact is None or not contact.billing_email:
        log.warning("no mail about the alert: no billing email known for the organisation",
                    organisation_id=alert.organisation_id, event_id=triggered.event_id)
        return webhooks
    notice = Notice(triggered.event_id, MessageKind.ALERT_TRIGGERED, "", occurred_at=alert.fire_time or now,
                    details={**alert.details(), "customer_name": contact.name, "time_zone": contact.time_zone})
    return webhooks + await _record_message(unit, notice, alert.organisation_id, "", contact.billing_email, now,
                                            domain)


async def _record_message(unit: Unit, notice: Notice, organisation_id: str, invoice_id: str, billing_email: str,
                          now: datetime, domain: str) -> int:
    """The message to the billing email (with the organisation's cc), once per (event, recipient, kind);
    suppressed when the organisation opted out of the kind."""
    settings: Recipients = await unit.recipients.get(organisation_id) or Recipients(organisation_id)
    recipient = billing_email.lower()
    state = MessageState.SUPPRESSED if notice.kind in settings.opted_out else MessageState.QUEUED
    message = Message(
        id=new_id("msg"), event_id=notice.event_id, recipient=recipient, kind=notice.kind,
        organisation_id=organisation_id, invoice_id=invoice_id, notice=notice.record(),
        message_id_header=message_id_header(notice.event_id, recipient, notice.kind, domain), state=state,
        cc=tuple(a for a in settings.cc if a != recipient), next_attempt_at=now,
    )
    return int(await unit.messages.add(message))


async def _record_webhooks(unit: Unit, event_id: str, organisation_id: str, event_type: str, payload: str,
                           now: datetime) -> int:
    """One delivery per enabled endpoint of the organisation subscribed to the type, all with the same body."""
    created = 0
    for endpoint in await unit.endpoints.subscribed(organisation_id, event_type):
        delivery = Delivery(
            id=new_id("dlv"), event_id=event_id, endpoint_id=endpoint.id, organisation_id=organisation_id,
            event_type=event_type, webhook_id=webhook_id(event_id, endpoint.id), payload=payload,
            state=DeliveryState.PENDING, next_attempt_at=now)
        created += int(await unit.deliveries.add(delivery))
    return created
