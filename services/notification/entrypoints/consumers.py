"""The JetStream consumers of notification: invoicing's, payments' and metering's events, one unit of work per
message (or per fetch of a backlog)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from billing_runtime.consumer import DurableConsumer, PoisonMessage
from billing_runtime.messaging import stream_name
from services.notification.adapters import events
from services.notification.domain.notice import Contact
from services.notification.domain.reminders import ReminderSchedule
from services.notification.service import intake
from services.notification.service.ports import Organisations, UnitFactory


def _decoded(msg: Msg) -> events.Decoded:
    try:
        decoded = events.decode(msg.subject, msg.data)
    except events.Undecodable as error:
        raise PoisonMessage(str(error)) from None
    if decoded.alert is not None:
        if not decoded.alert.event_id or not decoded.alert.alert.organisation_id:
            raise PoisonMessage(f"a {msg.subject} without an event id or an organisation id")
        return decoded
    about = decoded.notice or decoded.closure
    if about is None or not about.event_id or not about.invoice_id:
        raise PoisonMessage(f"a {msg.subject} without an event id or an invoice id")
    return decoded


def _handlers(uow: UnitFactory, domain: str, wake: Callable[[], None],  # noqa: ANN202 - consumer handlers
              reminders: ReminderSchedule | None, organisations: Organisations):
    async def apply_all(batch: list[events.Decoded]) -> None:
        # An alert's mail goes to the organisation's billing email as invoicing has it now, asked before the
        # transaction opens (no connection held across a call); invoicing down fails the message, which is retried.
        contacts: dict[str, Contact | None] = {}
        for decoded in batch:
            if decoded.alert is not None and decoded.alert.alert.organisation_id not in contacts:
                organisation_id = decoded.alert.alert.organisation_id
                contacts[organisation_id] = await organisations.contact(organisation_id)
        now = datetime.now(UTC)
        async with uow() as unit:
            created = 0
            for decoded in batch:
                if decoded.alert is not None:
                    created += await intake.apply_alert(unit, decoded.alert,
                                                        contacts[decoded.alert.alert.organisation_id], now, domain)
                    continue
                created += await intake.apply(unit, decoded.notice, now, domain, decoded.issued,
                                              reminders=reminders, closure=decoded.closure)
        if created:
            wake()

    async def handle(msg: Msg) -> None:
        await apply_all([_decoded(msg)])

    async def handle_batch(messages: list[Msg]) -> None:
        # A backlog is recorded a fetch per transaction (one commit for up to a fetch of events); any failure
        # rolls it back and the consumer records them one by one.
        await apply_all([_decoded(msg) for msg in messages])

    return handle, handle_batch


def consumers(js: JetStreamContext, uow: UnitFactory, domain: str, wake: Callable[[], None],
              durable_prefix: str, organisations: Organisations, start_from: str = "new",
              reminders: ReminderSchedule | None = None) -> list[DurableConsumer]:
    """The invoicing, payments and metering consumers; with a reminder schedule, invoice.issued schedules
    reminders. Each waits for its stream until the owning service has made it."""
    handle, handle_batch = _handlers(uow, domain, wake, reminders, organisations)
    policy = DeliverPolicy.NEW if start_from == "new" else DeliverPolicy.ALL
    return [
        DurableConsumer(js, stream=stream_name("invoicing"), durable=f"{durable_prefix}-invoicing",
                        subjects=events.INVOICING_SUBJECTS, handle=handle, handle_batch=handle_batch,
                        deliver_policy=policy),
        DurableConsumer(js, stream=stream_name("payments"), durable=f"{durable_prefix}-payments",
                        subjects=events.PAYMENTS_SUBJECTS, handle=handle, handle_batch=handle_batch,
                        deliver_policy=policy),
        DurableConsumer(js, stream=stream_name("metering"), durable=f"{durable_prefix}-metering",
                        subjects=events.METERING_SUBJECTS, handle=handle, handle_batch=handle_batch,
                        deliver_policy=policy),
    ]
