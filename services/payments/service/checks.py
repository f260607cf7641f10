"""Settling payments the provider has not reported on: fetch them, and capture the authorized ones.

A payment we know only from Checkout's callback (``created``), or one left ``authorized`` past the capture
delay, is fetched from the provider and the answer applied like a webhook. An authorized payment is then
captured through the API; if the capture's outcome is unknown it is fetched again next round, never captured
blindly twice (a second capture of a captured payment is refused by the provider, and the fetch settles it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_runtime.logging import get_logger
from services.payments.domain.entities import Payment
from services.payments.domain.payment import PaymentStatus
from services.payments.domain.provider import Backoff, ProviderFailure
from services.payments.domain.reports import ProviderPayment
from services.payments.service import provider_reports
from services.payments.service.ports import Clock, PaymentProvider, Providers, UnitFactory

log = get_logger(__name__)

LEASE = timedelta(seconds=60)


async def check_due_payments(
    uow: UnitFactory, providers: Providers, now: datetime, capture_after: timedelta, backoff: Backoff,
    limit: int = 20, clock: Clock | None = None,
) -> int:
    async with uow() as unit:
        claimed: list[Payment] = await unit.payments.claim_due_checks(now, LEASE, limit, providers=providers.names)
    for payment in claimed:
        await _check(uow, providers.required(payment.provider), payment, now, capture_after, backoff,
                     clock or (lambda: now))
    return len(claimed)


async def _check(uow: UnitFactory, provider: PaymentProvider, payment: Payment, now: datetime,
                 capture_after: timedelta, backoff: Backoff, clock: Clock) -> None:
    assert payment.provider_payment_id is not None
    try:
        reported: ProviderPayment = await provider.fetch_payment(payment.provider_payment_id)
        if reported.status == "authorized" and not reported.captured:
            reported = await provider.capture_payment(reported.id, reported.amount_minor,
                                                      reported.currency or payment.currency)
    except ProviderFailure as failure:
        log.warning("payment check failed, will retry", payment_id=payment.id, error=str(failure))
        async with uow() as unit:
            await unit.payments.update(payment.id, check_due_at=clock() + backoff.delay(payment.check_attempts))
        return
    async with uow() as unit:
        outcome = await provider_reports.apply_payment(unit, reported, now, capture_after, provider=provider.name)
        current = await unit.payments.get(payment.id)
        if current is not None and current.status in (PaymentStatus.CREATED, PaymentStatus.AUTHORIZED):
            await unit.payments.update(payment.id, check_due_at=now + backoff.delay(payment.check_attempts))
    log.info("payment checked", payment_id=payment.id, outcome=outcome)
