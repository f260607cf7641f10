"""Processing a provider webhook the gateway verified and handed on through JetStream.

One unit of work per delivery (or per fetch of a backlog): log it once per (provider, event id), apply it,
record the outcome. A second
delivery of the same event id (the provider's retry, JetStream's redelivery after a crash before the ack)
finds it logged and changes nothing. Events payments does not act on are logged and acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.logging import get_logger
from services.payments.domain.razorpay_events import MalformedWebhook, parse_webhook
from services.payments.service import provider_reports
from services.payments.service.ports import Unit, UnitFactory

log = get_logger(__name__)

PAYMENT_EVENTS = ("payment.authorized", "payment.captured", "payment.failed", "order.paid", "payment_link.paid")
REFUND_EVENTS = ("refund.created", "refund.processed", "refund.failed")


@dataclass(frozen=True)
class ReceivedWebhook:
    provider: str
    event_id: str
    event_type: str
    body: bytes
    received_at: datetime


async def process(uow: UnitFactory, webhook: ReceivedWebhook, now: datetime, capture_after: timedelta) -> str:
    """Apply one delivery; returns what it did ("duplicate delivery" for a repeat)."""
    [outcome] = await process_many(uow, [webhook], now, capture_after)
    return outcome


async def process_many(uow: UnitFactory, received: list[ReceivedWebhook], now: datetime,
                       capture_after: timedelta) -> list[str]:
    """Apply deliveries in order in one unit of work (a backlog is worked through a fetch per transaction);
    returns what each did. Any failure rolls all of them back, for the caller to retry one by one."""
    outcomes = []
    async with uow() as unit:
        for webhook in received:
            outcomes.append(await _apply(unit, webhook, now, capture_after))
    for webhook, outcome in zip(received, outcomes, strict=True):
        log.info("webhook processed", event_id=webhook.event_id, event_type=webhook.event_type, outcome=outcome)
    return outcomes


async def _apply(unit: Unit, webhook: ReceivedWebhook, now: datetime, capture_after: timedelta) -> str:
    if not await unit.webhooks.claim(webhook.provider, webhook.event_id, webhook.event_type[:100], webhook.body,
                                     webhook.received_at):
        return "duplicate delivery"
    try:
        notice = parse_webhook(webhook.body)
    except MalformedWebhook as error:
        outcome = f"malformed: {error}"
    else:
        if notice.event in PAYMENT_EVENTS and notice.payment is not None:
            outcome = await provider_reports.apply_payment(unit, notice.payment, now, capture_after,
                                                           notice.link.id if notice.link else "")
        elif notice.event in REFUND_EVENTS and notice.refund is not None:
            if notice.payment is not None:
                # Refund events carry their payment: applying it first (forward only, so harmless when known)
                # means a refund reported before its payment's capture still finds the payment.
                await provider_reports.apply_payment(unit, notice.payment, now, capture_after)
            outcome = await provider_reports.apply_refund(unit, notice.refund, now)
        else:
            outcome = f"ignored: payments does not act on {notice.event}"
    await unit.webhooks.set_outcome(webhook.provider, webhook.event_id, outcome)
    return outcome
