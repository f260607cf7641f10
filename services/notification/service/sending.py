"""Sending recorded messages, exactly once.

Each round first marks as UNKNOWN any message a sender claimed and never finished (it died mid-send: the mail may
or may not have gone out, so an operator decides; it is never resent by itself). It then claims due messages,
committing SENDING and the attempt before talking to the server, sends each, and records the outcome: SENT;
QUEUED again with backoff after a transient failure (4xx, no connection, the invoice PDF not available yet);
FAILED with the server's reply after a permanent one (5xx) or too many attempts; UNKNOWN when the connection
broke during the transfer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.errors import DomainError, NotFound
from billing_runtime.logging import get_logger
from services.notification.adapters import email_builder
from services.notification.domain.messages import Message, MessageKind, MessageState, RetrySchedule, SendOutcome
from services.notification.domain.notice import Notice
from services.notification.service.ports import Documents, Mailer, Renderer, UnitFactory

log = get_logger(__name__)


@dataclass(frozen=True)
class Delivery:
    mailer: Mailer
    renderer: Renderer
    documents: Documents
    sender: email_builder.Sender
    schedule: RetrySchedule = RetrySchedule()
    lease: timedelta = timedelta(minutes=2)


async def send_due(uow: UnitFactory, delivery: Delivery, now: datetime, limit: int = 20) -> int:
    """One round; returns how many messages were attempted."""
    async with uow() as unit:
        lost = await unit.messages.give_up_on_lost_sends(now)
        claimed: list[Message] = await unit.messages.claim_due(now, delivery.lease, limit)
    for message_id in lost:
        log.error("message left UNKNOWN: its sender stopped mid-send; an operator must check and resend",
                  message_id=message_id)
    # Concurrently: an SMTP exchange is a handful of round trips spent waiting, so one at a time held notification
    # to about 65 mails a second. A failure to record one outcome does not stop the others (that message stays
    # SENDING and ends UNKNOWN when its lease runs out: never sent twice).
    results = await asyncio.gather(*(_send(uow, delivery, message, now) for message in claimed),
                                   return_exceptions=True)
    for message, result in zip(claimed, results, strict=True):
        if isinstance(result, BaseException):
            log.error("sending a message failed unexpectedly", message_id=message.id, error=repr(result))
    return len(claimed)


async def _send(uow: UnitFactory, delivery: Delivery, message: Message, now: datetime) -> None:
    notice = Notice.from_record(message.notice)
    invoice = None
    if message.kind.about_an_invoice:
        async with uow() as unit:
            # Mail about no invoice (a disabled webhook endpoint) greets the name on the organisation's latest one.
            invoice = await (unit.invoices.get(message.invoice_id) if message.invoice_id
                             else unit.invoices.latest_of(message.organisation_id))
        assert invoice is not None  # recorded with the message
    rendered = delivery.renderer.render(notice, invoice)
    attachments: list[tuple[str, str, bytes]] = []
    if message.kind is MessageKind.INVOICE_ISSUED:
        try:
            filename, content = await delivery.documents.pdf(message.invoice_id)
            attachments.append((filename, "application/pdf", content))
        except NotFound as error:
            # Invoicing does not have it (and never will): retrying cannot help.
            await _finish(uow, delivery, message, SendOutcome.PERMANENT, f"the invoice PDF does not exist: {error}",
                          now, rendered.subject)
            return
        except DomainError as error:
            await _finish(uow, delivery, message, SendOutcome.TRANSIENT, f"the invoice PDF is not available: {error}",
                          now, rendered.subject)
            return
    email = email_builder.build(message, rendered, delivery.sender, attachments, now)
    result = await delivery.mailer.send(email)
    await _finish(uow, delivery, message, result.outcome, result.reply, now, rendered.subject)


async def _finish(uow: UnitFactory, delivery: Delivery, message: Message, outcome: SendOutcome, reply: str,
                  now: datetime, subject: str) -> None:
    retry_at = None
    if outcome is SendOutcome.SENT:
        state = MessageState.SENT
    elif outcome is SendOutcome.TRANSIENT and message.attempts < delivery.schedule.max_attempts:
        state, retry_at = MessageState.QUEUED, now + delivery.schedule.delay(message.attempts)
    elif outcome is SendOutcome.UNKNOWN:
        state = MessageState.UNKNOWN
    else:
        state = MessageState.FAILED
    async with uow() as unit:
        await unit.messages.finish(message, state, outcome=outcome.value, reply=reply, now=now,
                                   next_attempt_at=retry_at, subject=subject)
    log.info("mail", message_id=message.id, kind=str(message.kind), outcome=str(outcome), state=str(state),
             reply=reply[:200])
