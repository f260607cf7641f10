"""The JetStream consumers of notification: invoicing's and payments' events, one unit of work per message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from billing_runtime.consumer import DurableConsumer, PoisonMessage
from billing_runtime.messaging import stream_name
from services.notification.adapters import events
from services.notification.domain.reminders import ReminderSchedule
from services.notification.service import intake
from services.notification.service.ports import UnitFactory


def _handler(uow: UnitFactory, domain: str, wake: Callable[[], None],  # noqa: ANN202 - a consumer handler
             reminders: ReminderSchedule | None):
    async def handle(msg: Msg) -> None:
        try:
            decoded = events.decode(msg.subject, msg.data)
        except events.Undecodable as error:
            raise PoisonMessage(str(error)) from None
        if decoded.notice is None:  # invoice.voided mails no one: it only stops the invoice's reminders
            closure = decoded.closure
            assert closure is not None
            if not closure.event_id or not closure.invoice_id:
                raise PoisonMessage(f"a {msg.subject} without an event id or an invoice id")
            await intake.close(uow, closure, datetime.now(UTC))
            return
        notice = decoded.notice
        if not notice.event_id or not notice.invoice_id:
            raise PoisonMessage(f"a {msg.subject} without an event id or an invoice id")
        if await intake.record(uow, notice, datetime.now(UTC), domain, decoded.issued, reminders=reminders,
                               closure=decoded.closure):
            wake()

    return handle


def consumers(js: JetStreamContext, uow: UnitFactory, domain: str, wake: Callable[[], None],
              durable_prefix: str, start_from: str = "new",
              reminders: ReminderSchedule | None = None) -> list[DurableConsumer]:
    """The invoicing and payments consumers; with a reminder schedule, invoice.issued schedules reminders."""
    handle = _handler(uow, domain, wake, reminders)
    policy = DeliverPolicy.NEW if start_from == "new" else DeliverPolicy.ALL
    return [
        DurableConsumer(js, stream=stream_name("invoicing"), durable=f"{durable_prefix}-invoicing",
                        subjects=events.INVOICING_SUBJECTS, handle=handle, deliver_policy=policy),
        DurableConsumer(js, stream=stream_name("payments"), durable=f"{durable_prefix}-payments",
                        subjects=events.PAYMENTS_SUBJECTS, handle=handle, deliver_policy=policy),
    ]
