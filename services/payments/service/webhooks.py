"""Processing a provider webhook the gateway verified and handed on through JetStream.

One unit of work per delivery (or per fetch of a backlog): log it once per (provider, event id), apply it,
record the outcome. A second
delivery of the same event id (the provider's retry, JetStream's redelivery after a crash before the ack)
finds it logged and changes nothing. Events payments does not act on are logged and acknowledged.

Each provider's body is read by its own reader (:mod:`..domain.razorpay_events`, :mod:`..domain.stripe_events`)
into the same notice, and applied by the same rules: a payment only moves forward, a refund too. A report that
comes too early (:class:`~services.payments.domain.reports.ReportTooEarly`) rolls its unit of work back, claim
included, so the consumer's retry (nak with backoff) applies it once what it needs has arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.logging import get_logger
from services.payments.domain import stripe_events
from services.payments.domain.payment import Provider
from services.payments.domain.razorpay_events import parse_webhook
from services.payments.domain.reports import MalformedWebhook, WebhookNotice
from services.payments.service import autodebit, mandates, provider_reports
from services.payments.service.ports import Unit, UnitFactory

log = get_logger(__name__)

PAYMENT_EVENTS = ("payment.authorized", "payment.captured", "payment.failed", "order.paid", "payment_link.paid")
REFUND_EVENTS = ("refund.created", "refund.processed", "refund.failed")
# The events each provider's payments and refunds are reported by.
ACTED_ON = {
    Provider.RAZORPAY: (PAYMENT_EVENTS, REFUND_EVENTS),
    Provider.STRIPE: (stripe_events.PAYMENT_INTENT_EVENTS,
                      (*stripe_events.REFUND_EVENTS, stripe_events.CHARGE_REFUNDED)),
}


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
    provider = Provider(webhook.provider)
    if provider is Provider.RAZORPAY and (webhook.event_type in mandates.TOKEN_EVENTS
                                          or webhook.event_type in mandates.NOTIFICATION_EVENTS):
        outcome = await mandates.apply_webhook(unit, webhook.event_type, webhook.body, now)
        await unit.webhooks.set_outcome(webhook.provider, webhook.event_id, outcome[:500])
        return outcome
    try:
        notice = _parse(provider, webhook.body)
    except MalformedWebhook as error:
        outcome = f"malformed: {error}"
    else:
        outcome = await _act(unit, provider, notice, now, capture_after)
    await unit.webhooks.set_outcome(webhook.provider, webhook.event_id, outcome)
    return outcome


def _parse(provider: Provider, body: bytes) -> WebhookNotice:
    if provider is Provider.STRIPE:
        return stripe_events.parse_event(body)[2]
    return parse_webhook(body)


async def _act(unit: Unit, provider: Provider, notice: WebhookNotice, now: datetime, capture_after: timedelta) -> str:
    payment_events, refund_events = ACTED_ON[provider]
    if notice.event == stripe_events.PAYMENT_INTENT_CANCELED and notice.payment is not None \
            and await unit.orders.superseded(notice.payment.order_id) is not None:
        # We cancelled it: a credit note lowered its invoice's amount and a new PaymentIntent asks for that. No
        # payment failed.
        return f"ignored: {notice.payment.order_id} was cancelled for its invoice's lower amount due"
    if notice.event in payment_events and notice.payment is not None:
        outcome = await provider_reports.apply_payment(unit, notice.payment, now, capture_after,
                                                       notice.link.id if notice.link else "", provider)
        if provider is Provider.RAZORPAY:
            # A debit on a mandate follows its payment (captured, or failed: dunning goes on).
            outcome += await autodebit.reported_payment(unit, notice.payment)
        return outcome
    if notice.event in refund_events and notice.refunds:
        if notice.payment is not None:
            # Refund events carry their payment: applying it first (forward only, so harmless when known)
            # means a refund reported before its payment's capture still finds the payment.
            await provider_reports.apply_payment(unit, notice.payment, now, capture_after, provider=provider)
        outcomes = [await provider_reports.apply_refund(unit, refund, now, provider) for refund in notice.refunds]
        return "; ".join(outcomes)
    if notice.event == stripe_events.CHARGE_REFUNDED:
        return "ignored: charge.refunded carries no refunds in this API version (refund.* events report them)"
    return f"ignored: payments does not act on {notice.event}"
