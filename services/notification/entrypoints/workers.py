"""The sender loop: every ``interval`` seconds, and at once when a message was recorded."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from billing_runtime.logging import get_logger
from services.notification.service import sending
from services.notification.service.ports import UnitFactory

log = get_logger(__name__)


class Sender:
    def __init__(self, uow: UnitFactory, delivery: sending.Delivery, interval_seconds: float) -> None:
        self._uow = uow
        self._delivery = delivery
        self._interval = interval_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await sending.send_due(self._uow, self._delivery, datetime.now(UTC)):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - outlives database blips; logged
                log.exception("sending failed; retrying next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
