"""The RateLimit-Policy / RateLimit fields from quota statuses: one member per metric with a quota, integers
rounded so that what remains is never overstated and the reset never understated."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.metering.v1 import metering_pb2
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http.ratelimit_fields import ratelimit_headers

START = datetime(2026, 12, 1, tzinfo=UTC)
RESET = datetime(2027, 1, 1, tzinfo=UTC)


def status(metric: str, limit: str, remaining: str) -> metering_pb2.QuotaStatus:
    return metering_pb2.QuotaStatus(metric_code=metric, limit=limit, remaining=remaining,
                                    period_start=to_timestamp(START), reset_time=to_timestamp(RESET))


def test_one_member_per_metric_with_a_quota():
    now = datetime(2026, 12, 31, 23, 59, 30, 500_000, tzinfo=UTC)
    headers = ratelimit_headers(
        [status("api_calls", "1000", "250.9"), metering_pb2.QuotaStatus(metric_code="tokens"),
         status("storage.gb", "10.5", "0"), status("api_calls", "1000", "1")], now)
    assert headers == {
        "RateLimit-Policy": '"api_calls";q=1000;w=2678400, "storage.gb";q=10;w=2678400',
        "RateLimit": '"api_calls";r=250;t=30, "storage.gb";r=0;t=30',
    }


def test_no_quota_no_fields_and_a_reset_past_is_zero():
    assert ratelimit_headers([metering_pb2.QuotaStatus(metric_code="x")], START) == {}
    assert ratelimit_headers([status("a", "1", "0")], RESET + (RESET - START))["RateLimit"] == '"a";r=0;t=0'
