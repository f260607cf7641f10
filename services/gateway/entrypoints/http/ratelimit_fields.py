"""The IETF ``RateLimit-Policy`` and ``RateLimit`` header fields (draft-ietf-httpapi-ratelimit-headers-10) for
the quotas that applied to a request.

One list member per metric with a quota, named by the metric's code (a Structured Field String)::

    RateLimit-Policy: "api_calls";q=1000;w=2678400
    RateLimit: "api_calls";r=250;t=86399

``q`` is the quota per billing period, ``w`` the period's length, ``r`` what remains and ``t`` the seconds until
the quota resets, all Structured Field Integers: a fractional limit or remainder is rounded down (what remains
is never overstated), the time to reset up. Metrics without a quota are left out; no quota, no fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from billing.metering.v1 import metering_pb2

# Structured Field Integers have at most 15 digits.
_SF_INTEGER_MAX = 999_999_999_999_999


def _integer(text: str) -> int | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    return max(0, min(_SF_INTEGER_MAX, math.floor(value)))


def _name(metric_code: str) -> str:
    # Metric codes are lower-case letters, digits, '_', '.' and '-': nothing to escape in an sf-string.
    return '"' + metric_code.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ratelimit_headers(statuses: Iterable[metering_pb2.QuotaStatus], now: datetime) -> dict[str, str]:
    """The two header fields for the statuses that carry a quota (empty when none does); ``now`` is aware."""
    policies, limits = [], []
    seen: set[str] = set()
    for status in statuses:
        if not status.limit or status.metric_code in seen:
            continue
        limit, remaining = _integer(status.limit), _integer(status.remaining or "0")
        if limit is None or remaining is None:
            continue
        seen.add(status.metric_code)
        start, reset = status.period_start.ToDatetime(tzinfo=UTC), status.reset_time.ToDatetime(tzinfo=UTC)
        window = max(1, math.ceil((reset - start).total_seconds()))
        until_reset = max(0, math.ceil((reset - now).total_seconds()))
        policies.append(f"{_name(status.metric_code)};q={limit};w={window}")
        limits.append(f"{_name(status.metric_code)};r={remaining};t={until_reset}")
    if not policies:
        return {}
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(limits)}


def seconds_until_reset(status: metering_pb2.QuotaStatus, now: datetime) -> int:
    """For ``Retry-After``: whole seconds until the quota resets, at least 1."""
    return max(1, math.ceil((status.reset_time.ToDatetime(tzinfo=UTC) - now).total_seconds()))
