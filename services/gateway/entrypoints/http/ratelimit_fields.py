"""The IETF ``RateLimit-Policy`` / ``RateLimit`` header fields of a quota check's answer (the format is
``billing_runtime.ratelimit``'s, shared with ingest's replies)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from billing.metering.v1 import metering_pb2
from billing_runtime.ratelimit import QuotaField, ratelimit_fields


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def ratelimit_headers(statuses: Iterable[metering_pb2.QuotaStatus], now: datetime) -> dict[str, str]:
    """The two header fields for the statuses that carry a quota (none when none does); ``now`` is aware. The
    time to reset is rounded up."""
    quotas = []
    for status in statuses:
        limit, remaining = _decimal(status.limit), _decimal(status.remaining or "0")
        if not status.limit or limit is None or remaining is None:
            continue
        start, reset = status.period_start.ToDatetime(tzinfo=UTC), status.reset_time.ToDatetime(tzinfo=UTC)
        quotas.append(QuotaField(status.metric_code, limit, math.ceil((reset - start).total_seconds()), remaining,
                                 max(0, math.ceil((reset - now).total_seconds()))))
    policy, current = ratelimit_fields(quotas)
    return {"RateLimit-Policy": policy, "RateLimit": current} if policy else {}

