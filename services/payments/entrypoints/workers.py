"""Background work: dunning steps, and the calls to the provider (making orders, cancelling the ones a credit
note replaced, cancelling and making payment links a credit note outdated, sending refunds, settling unreported
payments).

One loop per replica; rows are claimed with leases (see the repository), so replicas share the work. It runs
every ``interval`` seconds, and at once when woken (an invoice was just issued).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, time, timedelta

from billing_runtime.errors import FailedPrecondition
from billing_runtime.logging import get_logger
from services.payments.domain.provider import Backoff
from services.payments.service import autodebit, checks, dunning, links, orders, reconciliation, refunds
from services.payments.service.ports import Clock, PaymentProvider, Providers, RecurringProvider, UnitFactory

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class ProviderWork:
    def __init__(self, uow: UnitFactory, providers: Providers, backoff: Backoff, capture_after: timedelta,
                 rules: dunning.DunningRules, interval_seconds: float, daily_reconciliation: bool = True) -> None:
        self._uow = uow
        self._daily_reconciliation = daily_reconciliation
        self._reconciled: date | None = None
        self._rules = rules
        self._providers = providers
        self._backoff = backoff
        self._capture_after = capture_after
        self._interval = interval_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def round(self) -> int:
        """Everything due now; returns how many things were attempted."""
        now = datetime.now(UTC)
        done = await dunning.run_due(self._uow, self._providers, self._rules, now, self._backoff, clock=_now)
        if not self._providers:
            return done  # no keys: dunning still announces overdue invoices; nothing is sent to a provider
        done += await orders.create_due_orders(self._uow, self._providers, now, self._backoff, clock=_now)
        done += await orders.cancel_superseded(self._uow, self._providers, now, self._backoff, clock=_now)
        done += await links.rework_due(self._uow, self._providers, self._rules.links, now, self._backoff,
                                       clock=_now)
        done += await refunds.send_due_refunds(self._uow, self._providers, now, self._backoff, clock=_now)
        done += await checks.check_due_payments(self._uow, self._providers, now, self._capture_after, self._backoff,
                                                clock=_now)
        if self._daily_reconciliation:
            await self._reconcile_yesterday(now)
        return done

    async def _reconcile_yesterday(self, now: datetime) -> None:
        """The previous UTC day, once its late webhooks have had an hour to arrive; one run per day whichever
        replica gets there first (the others find it made)."""
        today = now.date()
        if self._reconciled == today or now.hour < 1:
            return
        self._reconciled = today
        end = datetime.combine(today, time(0), UTC)
        try:
            await reconciliation.run(self._uow, self._providers, end - timedelta(days=1), end, "scheduled", now)
        except FailedPrecondition:
            pass  # made already

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.round():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive database blips; it is logged
                log.exception("provider work failed; retrying next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)


class AutoDebitWork:
    """The debits of invoices on mandates (:mod:`services.payments.service.autodebit`), every ``interval``
    seconds. ``clock`` is the time the round runs at: tests give their own to move a day on without waiting."""

    def __init__(self, uow: UnitFactory, provider: RecurringProvider, link_provider: PaymentProvider | None,
                 rules: autodebit.AutoDebitRules, backoff: Backoff, interval_seconds: float,
                 clock: Clock = _now) -> None:
        self._uow = uow
        self._provider = provider
        self._link_provider = link_provider
        self._rules = rules
        self._backoff = backoff
        self._interval = interval_seconds
        self._clock = clock

    async def round(self) -> int:
        """Every debit due by the clock; returns how many were taken a step further."""
        return await autodebit.run_due(self._uow, self._provider, self._link_provider, self._rules, self._clock(),
                                       self._backoff, clock=self._clock)

    async def run(self) -> None:
        while True:
            try:
                while await self.round():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive database blips; it is logged
                log.exception("auto-debit work failed; retrying next round")
            await asyncio.sleep(self._interval)
