"""The staff write limit at the edge, and the one shape of every rate-limit refusal: ``429`` with
``{"error": "resource_exhausted", "detail"}``, ``Retry-After`` (whole seconds, rounded up) and the IETF
``RateLimit-Policy`` / ``RateLimit`` fields."""

from __future__ import annotations

import math

from fastapi import Request
from fastapi.responses import JSONResponse

from billing_runtime.errors import Unavailable
from billing_runtime.gcra import Decision, Rate
from billing_runtime.logging import get_logger
from billing_runtime.ratelimit import QuotaField, ratelimit_fields
from services.gateway.domain.access import SAFE_METHODS, Principal
from services.gateway.service.rate_limits import RateLimited, charge_staff_write, staff_write_rate

log = get_logger(__name__)

def limit_headers(name: str, rate: Rate, decision: Decision) -> dict[str, str]:
    policy, current = ratelimit_fields([QuotaField(
        name, rate.limit, math.ceil(rate.period.total_seconds()), decision.remaining,
        math.ceil(decision.reset.total_seconds()),
    )])
    headers = {"RateLimit-Policy": policy, "RateLimit": current}
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_seconds)
    return headers


async def enforce_write_limit(request: Request, principal: Principal) -> None:
    """Charge a staff write to its credential (``staff-write:<actor>``); refuse it (429, nothing done) over the
    limit. If the database cannot be reached the write is refused too (503): it could not be audited either."""
    limits = request.app.state.rate_limits
    per_minute = request.app.state.settings.admin_write_limit_per_minute
    if request.method in SAFE_METHODS or limits is None or per_minute <= 0:
        return
    try:
        decision = await charge_staff_write(limits, principal.actor, per_minute)
    except Exception as error:  # noqa: BLE001 - fail closed: no write the limit (and the audit log) cannot see
        log.warning("rate limit store unreachable; staff write refused", error=repr(error))
        raise Unavailable("the gateway's database cannot be reached; retry shortly") from None
    if decision is not None and not decision.allowed:
        raise RateLimited(
            f"too many writes by this credential: at most {per_minute} a minute; retry in "
            f"{decision.retry_after_seconds} s", decision, headers=limit_headers(
                "staff-writes", staff_write_rate(per_minute), decision),
        )


async def rate_limited(request: Request, error: RateLimited) -> JSONResponse:
    headers = {"Retry-After": str(error.decision.retry_after_seconds), **error.headers}
    return JSONResponse({"error": "resource_exhausted", "detail": str(error)}, status_code=429, headers=headers)
