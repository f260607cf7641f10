"""The gateway's housekeeping, on every replica at start-up and then every ``session_prune_interval_seconds``:
ended sessions are deleted once their grace period is over (``service.sessions.prune_sessions``). Running it on
several replicas at once is safe, so no replica is singled out for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter

from billing_runtime.logging import get_logger
from services.gateway.config import GatewaySettings
from services.gateway.service import sessions
from services.gateway.service.ports import StaffTransaction

log = get_logger(__name__)

SESSIONS_PRUNED = Counter(
    "billing_gateway_sessions_pruned_total", "Ended sessions deleted once their grace period was over."
)


async def run_housekeeping(uow: Callable[[], StaffTransaction], settings: GatewaySettings) -> None:
    """Until cancelled; a failed round is logged and retried at the next interval (every step is rerun-safe)."""
    grace = timedelta(seconds=settings.session_prune_grace_seconds)
    while True:
        try:
            pruned = await sessions.prune_sessions(uow(), settings.session_policy(), grace, datetime.now(UTC))
            SESSIONS_PRUNED.inc(pruned)
            if pruned:
                log.info("ended sessions pruned", sessions=pruned)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - must outlive database blips
            log.exception("session pruning failed; retrying next interval")
        await asyncio.sleep(settings.session_prune_interval_seconds)
