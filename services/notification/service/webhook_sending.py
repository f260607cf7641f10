"""Posting recorded webhook deliveries, on a retry schedule, until the endpoint answers 2xx.

Each round first makes due again any delivery whose sender stopped mid-post (its lease ran out), then claims
due deliveries, committing SENDING and the attempt before posting, posts them concurrently, and records each
outcome:

- 2xx: DELIVERED.
- 410 Gone: FAILED, and the endpoint is disabled ("gone") and the organisation told by mail.
- anything else (another status, a timeout even after the request went out, no connection, a redirect, a host
  now resolving to a non-public address, in which case nothing is sent): PENDING again at the schedule's next
  step; after the last attempt FAILED, and the endpoint disabled ("failing") and the organisation told by mail.

Retrying a post whose fate is unknown is right for webhooks (unlike mail): receivers deduplicate by webhook-id.
A delivery to a disabled or deleted endpoint fails without being sent; ``webhook.test`` deliveries go even to a
disabled endpoint, once, and never disable anything: they are a check someone is watching.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from billing_runtime.errors import InvalidArgument
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.notification.adapters.webhook_poster import PostResult
from services.notification.domain.messages import Message, MessageKind, MessageState, Recipients, message_id_header
from services.notification.domain.notice import Notice
from services.notification.domain.webhooks import (
    TEST_EVENT_TYPE,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    DisabledReason,
    Endpoint,
    EndpointState,
    PostOutcome,
    WebhookSchedule,
    outcome_of_status,
    signed_headers,
)
from services.notification.service.endpoints import check_url
from services.notification.service.ports import Poster, Resolver, Unit, UnitFactory

log = get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WebhookSending:
    poster: Poster
    resolver: Resolver
    schedule: WebhookSchedule = WebhookSchedule()
    allow_private_addresses: bool = False
    lease: timedelta = timedelta(minutes=2)
    # The domain of the Message-ID of the "endpoint disabled" mail.
    message_domain: str = "billing.example"
    # The signature's timestamp is taken when posting (receivers refuse ones older than about 5 minutes).
    clock: Callable[[], datetime] = _utc_now
    # Called when a mail was recorded (an endpoint was disabled), to wake the mail sender.
    on_mail: Callable[[], None] = field(default=lambda: None)


async def send_due(uow: UnitFactory, sending: WebhookSending, now: datetime, limit: int = 20) -> int:
    """One round; returns how many deliveries were attempted."""
    async with uow() as unit:
        lost = await unit.deliveries.requeue_lost(now)
        claimed: list[Delivery] = await unit.deliveries.claim_due(now, sending.lease, limit)
    for delivery_id in lost:
        log.warning("webhook delivery due again: its sender stopped mid-post", delivery_id=delivery_id)
    # Concurrently: one slow endpoint (up to the timeout) must not hold up everyone else's webhooks.
    results = await asyncio.gather(*(_post(uow, sending, d, now) for d in claimed), return_exceptions=True)
    for delivery, result in zip(claimed, results, strict=True):
        if isinstance(result, BaseException):
            # Its lease runs out and the next round makes it due again.
            log.error("webhook delivery failed unexpectedly", delivery_id=delivery.id, error=repr(result))
    return len(claimed)


async def _post(uow: UnitFactory, sending: WebhookSending, delivery: Delivery, now: datetime) -> None:
    async with uow() as unit:
        endpoint: Endpoint | None = await unit.endpoints.get(delivery.endpoint_id)
    test = delivery.event_type == TEST_EVENT_TYPE
    if endpoint is None or not (endpoint.enabled or (test and endpoint.state is EndpointState.DISABLED)):
        state = endpoint.state.value if endpoint else "missing"
        await _finish(uow, sending, delivery, endpoint, PostResult(0, error=f"not sent: the endpoint is {state}"),
                      now, final=True)
        return
    try:
        await check_url(sending.resolver, endpoint.url, sending.allow_private_addresses)
    except InvalidArgument as refusal:
        result = PostResult(0, error=f"not sent: {refusal.message}")
    else:
        payload = delivery.payload.encode()
        headers = signed_headers(endpoint, delivery.webhook_id, payload, sending.clock())
        result = await sending.poster.post(endpoint.url, headers, payload)
    await _finish(uow, sending, delivery, endpoint, result, now, final=test)


async def _finish(uow: UnitFactory, sending: WebhookSending, delivery: Delivery, endpoint: Endpoint | None,
                  result: PostResult, now: datetime, *, final: bool) -> None:
    outcome = outcome_of_status(result.status_code) if result.status_code else PostOutcome.FAILED
    error = result.error or ("" if outcome is PostOutcome.DELIVERED else f"HTTP {result.status_code}")
    retry_at, disable = None, None
    if outcome is PostOutcome.DELIVERED:
        state = DeliveryState.DELIVERED
    elif outcome is PostOutcome.GONE:
        state, disable = DeliveryState.FAILED, DisabledReason.GONE
    else:
        retry_at = None if final else sending.schedule.next_attempt(delivery.attempts, now)
        state = DeliveryState.PENDING if retry_at else DeliveryState.FAILED
        if retry_at is None and not final:
            disable = DisabledReason.FAILING
    if delivery.event_type == TEST_EVENT_TYPE:
        disable = None
    attempt = DeliveryAttempt(delivery.id, delivery.attempts, now, ended_at=sending.clock(),
                              status_code=result.status_code, response_body=result.body_excerpt,
                              duration_ms=result.duration_ms, error=error)
    mailed = False
    async with uow() as unit:
        await unit.deliveries.finish(delivery, state, attempt, retry_at)
        if disable is not None and endpoint is not None:
            mailed = await _disable(unit, sending, endpoint, delivery, disable, error, now)
    log.info("webhook", delivery_id=delivery.id, endpoint_id=delivery.endpoint_id, attempt=delivery.attempts,
             status_code=result.status_code, outcome=str(outcome), state=str(state), error=error[:200])
    if mailed:
        sending.on_mail()


async def _disable(unit: Unit, sending: WebhookSending, endpoint: Endpoint, delivery: Delivery,
                   reason: DisabledReason, last_error: str, now: datetime) -> bool:
    """Disable the endpoint and record the mail telling the organisation, in the delivery's transaction; True
    when a mail was recorded."""
    if not await unit.endpoints.disable(endpoint.id, reason.value, now):
        return False
    log.warning("webhook endpoint disabled", endpoint_id=endpoint.id, reason=str(reason))
    contact = await unit.invoices.latest_of(endpoint.organisation_id)
    if contact is None or not contact.billing_email:
        log.warning("no mail about the disabled endpoint: no billing email known for the organisation",
                    organisation_id=endpoint.organisation_id, endpoint_id=endpoint.id)
        return False
    event_id = f"endpoint_disabled:{endpoint.id}:{delivery.id}"
    notice = Notice(event_id, MessageKind.ENDPOINT_DISABLED, "", occurred_at=now, reason=reason.value,
                    details={"endpoint_id": endpoint.id, "url": endpoint.url, "delivery_id": delivery.id,
                             "last_error": last_error[:300]})
    recipient = contact.billing_email.lower()
    settings: Recipients = await unit.recipients.get(endpoint.organisation_id) or Recipients(endpoint.organisation_id)
    message = Message(
        id=new_id("msg"), event_id=event_id, recipient=recipient, kind=MessageKind.ENDPOINT_DISABLED,
        organisation_id=endpoint.organisation_id, invoice_id="", notice=notice.record(),
        message_id_header=message_id_header(event_id, recipient, MessageKind.ENDPOINT_DISABLED,
                                            sending.message_domain),
        state=MessageState.QUEUED, cc=tuple(a for a in settings.cc if a != recipient), next_attempt_at=now)
    return bool(await unit.messages.add(message))
