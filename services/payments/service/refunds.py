"""Refunds: stored first (under a lock on the payment, so concurrent requests can never refund more than was
captured), then sent to the provider outside the transaction with the refund's idempotency key as
``X-Refund-Idempotency``, so resending after an outage or a lost answer never refunds twice.

A refusal marks the refund failed (its amount is refundable again); an outage or an unknown outcome leaves it
``requested`` and the background sender tries again with backoff. The provider's ``refund.processed`` /
``refund.failed`` webhooks finish it (:mod:`services.payments.service.provider_reports`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.payments.domain import refund as refund_rules
from services.payments.domain.entities import Refund
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import Backoff, FailureKind, ProviderFailure
from services.payments.domain.refund import RefundStatus
from services.payments.domain.reports import ProviderRefund
from services.payments.service import provider_reports
from services.payments.service.ports import Clock, PaymentProvider, Providers, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class CreateRefund:
    payment_id: str
    amount_minor: int
    reason: str
    idempotency_key: str = ""


async def create_refund(
    uow: UnitFactory, providers: Providers, command: CreateRefund, now: datetime, backoff: Backoff,
    clock: Clock | None = None,
) -> tuple[Refund, bool]:
    """Refund a captured payment through the provider that took it; returns (refund, created). A repeat with the
    same idempotency key returns the first refund as it now stands. Offline payments can be refunded whatever is
    configured; an online one only when its provider's keys are."""
    if not command.payment_id:
        raise InvalidArgument("is required", field="payment_id")
    fingerprint = hashlib.sha256(
        f"{command.payment_id}|{command.amount_minor}|{command.reason.strip()}".encode()).hexdigest()
    async with uow() as unit:
        payment = await unit.payments.get(command.payment_id, lock=True)
        if payment is None:
            raise NotFound(f"no payment with id {command.payment_id!r}")
        if command.idempotency_key:
            # A repeat is answered before the limits are checked: the first request already used them.
            existing = await unit.refunds.by_idempotency_key(command.idempotency_key)
            if existing is not None:
                first, first_fingerprint = existing
                if first_fingerprint != fingerprint:
                    raise Conflict("was already used for a different refund", field="idempotency_key")
                return first, False
        if payment.provider is Provider.NONE:
            raise FailedPrecondition("nothing was paid for this invoice: there is nothing to refund")
        captured = payment.amount_minor if payment.status is PaymentStatus.CAPTURED else 0
        left = captured - payment.refunded_minor
        request = refund_rules.check_refund(command.amount_minor, command.reason, captured, left, payment.currency)
        # Offline money goes back offline: the operator pays it back and the refund is recorded as processed.
        offline = payment.provider is Provider.OFFLINE
        provider = None if offline else providers.get(payment.provider)
        if provider is None and not offline:
            raise FailedPrecondition(f"online payments are not configured (no {payment.provider.title} keys): this "
                                     "payment cannot be refunded through the provider")
        refund = Refund(
            id=new_id("rfd"), payment_id=payment.id, invoice_id=payment.invoice_id or "",
            organisation_id=payment.organisation_id, status=RefundStatus.REQUESTED, currency=payment.currency,
            amount_minor=request.amount_minor, reason=request.reason,
            idempotency_key=command.idempotency_key or None, next_attempt_at=None if offline else now + LEASE,
        )
        stored, created = await unit.refunds.add_once(refund, fingerprint)
        if created and offline:
            await provider_reports.move_refund(unit, stored, RefundStatus.PROCESSED, now)
    if not created or offline:
        return await _current(uow, stored.id), created
    assert provider is not None
    await send(uow, provider, stored, now, backoff, payment.provider_payment_id or "", clock)
    return await _current(uow, stored.id), True


async def _current(uow: UnitFactory, refund_id: str) -> Refund:
    async with uow() as unit:
        refund = await unit.refunds.get(refund_id)
    assert refund is not None
    return refund


async def send(uow: UnitFactory, provider: PaymentProvider, refund: Refund, now: datetime, backoff: Backoff,
               provider_payment_id: str, clock: Clock | None = None) -> None:
    """Send a requested refund to the provider and apply its answer. A retry is due ``backoff`` after the
    failure, by ``clock`` (default: ``now``). The idempotency key goes to Razorpay as X-Refund-Idempotency and
    to Stripe as Idempotency-Key (``refund:<key>``)."""
    try:
        answered: ProviderRefund = await provider.create_refund(
            provider_payment_id, refund.amount_minor, idempotency_key=refund.idempotency_key or refund.id,
            notes={"refund_id": refund.id, "invoice_id": refund.invoice_id, "reason": refund.reason[:200]},
            receipt=refund.id, currency=refund.currency,
        )
    except ProviderFailure as failure:
        async with uow() as unit:
            await unit.payments.get(refund.payment_id, lock=True)  # the payment before its refunds, always
            current = await unit.refunds.get(refund.id, lock=True)
            if current is None or current.status is not RefundStatus.REQUESTED:
                return
            if failure.kind is FailureKind.REJECTED:
                await unit.refunds.update(refund.id, error=failure)
                await provider_reports.move_refund(unit, current, RefundStatus.FAILED, now)
                log.warning("refund refused by the provider", refund_id=refund.id, error=str(failure))
            else:
                await unit.refunds.update(refund.id, error=failure,
                                          next_attempt_at=(clock() if clock else now)
                                          + backoff.delay(current.send_attempts + 1))
                log.warning("refund not sent, will retry", refund_id=refund.id, error=str(failure))
        return
    async with uow() as unit:
        await provider_reports.apply_refund(unit, answered, now, provider=provider.name)


async def send_due_refunds(uow: UnitFactory, providers: Providers, now: datetime, backoff: Backoff,
                           limit: int = 20, clock: Clock | None = None) -> int:
    """Retry refunds the provider has not accepted yet (after an outage, or a crash before sending)."""
    async with uow() as unit:
        claimed: list[Refund] = await unit.refunds.claim_due(now, LEASE, limit)
        payments = {r.id: await unit.payments.get(r.payment_id) for r in claimed}
    for refund in claimed:
        payment = payments[refund.id]
        provider = providers.get(payment.provider) if payment is not None else None
        if provider is None:
            log.warning("refund not sent: its provider is not configured", refund_id=refund.id)
            continue
        await send(uow, provider, refund, now, backoff, payment.provider_payment_id or "", clock)
    return len(claimed)
