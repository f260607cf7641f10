"""The worker loops (mail, webhooks, reminders): every ``interval`` seconds, and at once when woken (something
recorded)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from billing_runtime.logging import get_logger
from services.notification.service import reminding, sending, webhook_sending
from services.notification.service.ports import UnitFactory

log = get_logger(__name__)


class Worker:
    def __init__(self, name: str, round_: Callable[[datetime], Awaitable[int]], interval_seconds: float) -> None:
        self._name = name
        self._round = round_
        self._interval = interval_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self._round(datetime.now(UTC)):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - outlives database blips; logged
                log.exception(f"{self._name} failed; retrying next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)


class Sender(Worker):
    """Sends recorded mail."""

    def __init__(self, uow: UnitFactory, delivery: sending.Delivery, interval_seconds: float) -> None:
        super().__init__("sending", lambda now: sending.send_due(uow, delivery, now), interval_seconds)


class WebhookSender(Worker):
    """Posts recorded webhook deliveries."""

    def __init__(self, uow: UnitFactory, posting: webhook_sending.WebhookSending, interval_seconds: float) -> None:
        super().__init__("webhook sending", lambda now: webhook_sending.send_due(uow, posting, now),
                         interval_seconds)


class ReminderWorker(Worker):
    """Turns due reminders into messages and wakes the senders when it recorded any."""

    def __init__(self, uow: UnitFactory, domain: str, interval_seconds: float, wake: Callable[[], None]) -> None:
        async def round_(now: datetime) -> int:
            handled, recorded = await reminding.send_due(uow, domain, now)
            if recorded:
                wake()
            return handled

        super().__init__("reminding", round_, interval_seconds)
