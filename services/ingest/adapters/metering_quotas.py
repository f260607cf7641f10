"""Ingest's client of the metering service: the ``QuotaSource`` quota enforcement asks.

It lives here, in the caller, and speaks only metering's published contract (``billing.metering.v1``):
``CheckQuotas`` for usage against the plan's quotas, ``ListMetrics`` for how each metric adds events up.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime import clients
from services.ingest.domain.quota import (
    UNMEASURED,
    Measure,
    MetricRule,
    QuotaQuestion,
    QuotaWindow,
    enforcement_ceiling,
    plain_number,
    window_bounds,
)

# CheckQuotas answers at most this many checks per call (the contract's bound).
MAX_CHECKS = 1_000
_PAGE_SIZE = 500

# Aggregations not listed here (min, unique_count, weighted_sum, and any newer than this client) are UNMEASURED.
_MEASURES = {
    metering_pb2.AGGREGATION_SUM: Measure.SUM,
    metering_pb2.AGGREGATION_COUNT: Measure.COUNT,
    metering_pb2.AGGREGATION_MAX: Measure.PEAK,
    metering_pb2.AGGREGATION_LATEST: Measure.PEAK,
}
_CAPS = {metering_pb2.QUOTA_CAP_HARD: "hard", metering_pb2.QUOTA_CAP_SOFT: "soft"}


class MeteringQuotas:
    """Asks metering, which owns usage and reads the plans in force from invoicing."""

    def __init__(self, address: str, *, timeout_seconds: float = 1.0) -> None:
        # A metering that was down is noticed again within a second (enforcement is off while it is down).
        self._channel = clients.channel(address, max_reconnect_backoff_seconds=1.0)
        self._stub = metering_pb2_grpc.MeteringServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def check(
        self, organisation_id: str, questions: Sequence[QuotaQuestion], now_seconds: float
    ) -> list[QuotaWindow]:
        windows: list[QuotaWindow] = []
        for start in range(0, len(questions), MAX_CHECKS):
            request = metering_pb2.CheckQuotasRequest()
            for question in questions[start : start + MAX_CHECKS]:
                check = request.checks.add(
                    organisation_id=organisation_id, metric_code=question.metric,
                    quantity=plain_number(question.quantity),
                )
                check.time.seconds = question.at_seconds
            reply = await clients.call(self._stub.CheckQuotas, request, timeout=self._timeout)
            windows.extend(window_from_status(status, now_seconds) for status in reply.statuses)
        return windows

    async def metric_rules(self, organisation_id: str) -> dict[str, MetricRule]:
        rules: dict[str, MetricRule] = {}
        token = ""
        while True:
            request = metering_pb2.ListMetricsRequest(
                organisation_id=organisation_id, page_size=_PAGE_SIZE, page_token=token
            )
            reply = await clients.call(self._stub.ListMetrics, request, timeout=self._timeout)
            for metric in reply.metrics:
                if metric.state == metering_pb2.METRIC_STATE_ACTIVE:
                    rules[metric.code] = rule_from_metric(metric)
            token = reply.next_page_token
            if not token:
                return rules

    async def close(self) -> None:
        await self._channel.close()


def rule_from_metric(metric: metering_pb2.Metric) -> MetricRule:
    measure = _MEASURES.get(metric.aggregation)
    if measure is None:
        return UNMEASURED
    filters = {key: frozenset(dimension.values) for key, dimension in metric.filters.items()}
    return MetricRule(measure, filters)


def window_from_status(status: metering_pb2.QuotaStatus, now_seconds: float) -> QuotaWindow:
    """One answer of CheckQuotas as the window ingest caches and counts against."""
    limit = Decimal(status.limit) if status.limit else None
    grace_limit = Decimal(status.grace_limit) if status.grace_limit else None
    grace_end = status.grace_end_time.seconds if status.HasField("grace_end_time") else None
    start, reset = window_bounds(
        status.period_start.seconds if status.HasField("period_start") else None,
        status.reset_time.seconds if status.HasField("reset_time") else None,
    )
    return QuotaWindow(
        metric=status.metric_code,
        period_start=start,
        reset=reset,
        used=Decimal(status.used or "0"),
        limit=limit,
        ceiling=enforcement_ceiling(
            hard=status.cap == metering_pb2.QUOTA_CAP_HARD, enforced_at_ingest=status.enforced_at_ingest,
            limit=limit, grace_limit=grace_limit, grace_end_seconds=grace_end, now_seconds=now_seconds,
        ),
        cap=_CAPS.get(status.cap, ""),
        plan=f"{status.plan_code} (v{status.plan_version})" if status.plan_code else "",
        usage_time=status.usage_time.seconds + status.usage_time.nanos / 1e9 if status.HasField("usage_time") else 0.0,
    )
