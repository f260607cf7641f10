"""The IETF ``RateLimit-Policy`` and ``RateLimit`` header fields (draft-ietf-httpapi-ratelimit-headers-10) for
usage quotas, written once for every place that answers them (ingest's replies, the gateway's quota check).

One list member per quota, named by the metric's code (a Structured Field String)::

    RateLimit-Policy: "api_calls";q=1000;w=2678400
    RateLimit: "api_calls";r=250;t=86399

``q`` is the quota per billing period and ``w`` the period's length in seconds; ``r`` what remains and ``t`` the
seconds until the quota resets. All are Structured Field Integers (at most 15 digits): a fractional limit or
remainder is rounded down, so what remains is never overstated. The quota unit is the metric's own (not requests),
so no ``qu`` parameter is sent. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

_SF_INTEGER_MAX = 999_999_999_999_999


@dataclass(frozen=True)
class QuotaField:
    """One quota as the fields describe it."""

    metric: str
    limit: Decimal
    window_seconds: int
    remaining: Decimal
    reset_seconds: int


def _integer(number: Decimal | int) -> int:
    return min(max(math.floor(number), 0), _SF_INTEGER_MAX)


def _name(metric: str) -> str:
    # Metric codes are lower-case letters, digits, '_', '.' and '-': escaping is only a safeguard.
    return '"' + metric.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ratelimit_fields(quotas: Iterable[QuotaField]) -> tuple[str, str]:
    """(``RateLimit-Policy``, ``RateLimit``) values; empty strings when there is no quota. A metric listed twice
    keeps its first member."""
    policy, current, seen = [], [], set()
    for quota in quotas:
        if quota.metric in seen:
            continue
        seen.add(quota.metric)
        policy.append(f"{_name(quota.metric)};q={_integer(quota.limit)};w={_integer(max(quota.window_seconds, 1))}")
        current.append(f"{_name(quota.metric)};r={_integer(quota.remaining)};t={_integer(quota.reset_seconds)}")
    return ", ".join(policy), ", ".join(current)
