"""The gateway's housekeeping, on every replica at start-up and then every ``housekeeping_interval_seconds``:
ended sessions are deleted once their grace period is over, and TOTP secrets stored in plain text (from before
secrets were sealed) or under a previous key are sealed with the current one (``service.sessions``). Both are safe
on several replicas at once, so no replica is singled out for them."""

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
    """Until cancelled; a failed step is logged and retried at the next round (every step is rerun-safe)."""
    while True:
        await _prune_sessions(uow, settings)
        await _reseal_totp_secrets(uow)
        await asyncio.sleep(settings.housekeeping_interval_seconds)


async def _prune_sessions(uow: Callable[[], StaffTransaction], settings: GatewaySettings) -> None:
    grace = timedelta(seconds=settings.session_prune_grace_seconds)
    try:
        pruned = await sessions.prune_sessions(uow(), settings.session_policy(), grace, datetime.now(UTC))
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - must outlive database blips
        log.exception("session pruning failed; retrying next round")
        return
    SESSIONS_PRUNED.inc(pruned)
    if pruned:
        log.info("ended sessions pruned", sessions=pruned)


async def _reseal_totp_secrets(uow: Callable[[], StaffTransaction]) -> None:
    try:
        resealed, unreadable = await sessions.reseal_totp_secrets(uow())
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - must outlive database blips
        log.exception("sealing TOTP secrets with the current key failed; retrying next round")
        return
    if resealed:
        log.info("TOTP secrets sealed with the current key", users=resealed)
    if unreadable:
        # Their sign-ins fail (an internal error) until the key is configured again or an admin resets their TOTP.
        log.error("TOTP secrets that no configured key opens: is a key missing from GATEWAY_SECRETS_PREVIOUS_KEYS?",
                  users=list(unreadable))
