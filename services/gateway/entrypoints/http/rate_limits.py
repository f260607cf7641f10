"""The staff write limit at the edge, and the one shape of every rate-limit refusal: ``429`` with
``{"error": "resource_exhausted", "detail"}``, ``Retry-After`` (whole seconds, rounded up) and the IETF
``RateLimit-Policy`` / ``RateLimit`` fields."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from services.gateway.domain.access import SAFE_METHODS, Principal
from services.gateway.service.rate_limits import RateLimited, enforce_staff_write


async def enforce_write_limit(request: Request, principal: Principal) -> None:
    """Charge a staff write (every method but GET, HEAD and OPTIONS) to its credential; 429 over the limit, 503
    when the limit's store cannot be reached (``service/rate_limits.py``)."""
    if request.method in SAFE_METHODS:
        return
    await enforce_staff_write(request.app.state.rate_limits, principal.actor,
                              request.app.state.settings.admin_write_limit_per_minute)


async def rate_limited(request: Request, error: RateLimited) -> JSONResponse:
    headers = {"Retry-After": str(error.decision.retry_after_seconds)}
    policy, current = error.fields
    if policy:
        headers.update({"RateLimit-Policy": policy, "RateLimit": current})
    return JSONResponse({"error": "resource_exhausted", "detail": str(error)}, status_code=429, headers=headers)
