"""Metering's QuotaStatus and Metric as ingest reads them."""

from __future__ import annotations

from decimal import Decimal

from billing.metering.v1 import metering_pb2
from services.ingest.adapters.metering_quotas import rule_from_metric, window_from_status
from services.ingest.domain.quota import Measure

NOW = 1_800_000_000


def status(**fields) -> metering_pb2.QuotaStatus:
    message = metering_pb2.QuotaStatus(organisation_id="org_1", metric_code="api_calls", used="40", **fields)
    message.period_start.seconds = NOW - 100
    message.reset_time.seconds = NOW + 100
    return message


def test_an_enforced_hard_cap_becomes_a_ceiling_with_its_period():
    window = window_from_status(
        status(limit="50", cap=metering_pb2.QUOTA_CAP_HARD, enforced_at_ingest=True, plan_code="std", plan_version=2),
        NOW,
    )
    assert (window.period_start, window.reset, window.used, window.ceiling) == (NOW - 100, NOW + 100, 40, 50)
    assert window.cap == "hard" and window.plan == "std (v2)"


def test_grace_counts_until_its_end():
    during = status(limit="50", grace_limit="60", cap=metering_pb2.QUOTA_CAP_HARD, enforced_at_ingest=True)
    during.grace_end_time.seconds = NOW + 10
    assert window_from_status(during, NOW).ceiling == Decimal(60)
    assert window_from_status(during, NOW + 10).ceiling == Decimal(50)


def test_soft_caps_unenforced_plans_and_no_quota_refuse_nothing():
    soft = window_from_status(status(limit="50", cap=metering_pb2.QUOTA_CAP_SOFT, enforced_at_ingest=True), NOW)
    unenforced = window_from_status(status(limit="50", cap=metering_pb2.QUOTA_CAP_HARD), NOW)
    none = window_from_status(metering_pb2.QuotaStatus(metric_code="api_calls", allowed=True), NOW)
    assert soft.ceiling is None and soft.limit == Decimal(50)
    assert unenforced.ceiling is None
    assert none.limit is None and none.covers(0) and none.used == 0


def test_metric_aggregations_become_measures_and_filters_sets():
    metric = metering_pb2.Metric(code="c", aggregation=metering_pb2.AGGREGATION_SUM)
    metric.filters["region"].values.extend(["eu", "us"])
    rule = rule_from_metric(metric)
    assert rule.measure is Measure.SUM and rule.filters == {"region": frozenset({"eu", "us"})}
    assert rule_from_metric(metering_pb2.Metric(aggregation=metering_pb2.AGGREGATION_COUNT)).measure is Measure.COUNT
    assert rule_from_metric(metering_pb2.Metric(aggregation=metering_pb2.AGGREGATION_LATEST)).measure is Measure.PEAK
    # A gauge's usage grows with time, not with its events; 99 stands for an aggregation newer than this client.
    for aggregation in (metering_pb2.AGGREGATION_MIN, metering_pb2.AGGREGATION_UNIQUE_COUNT,
                        metering_pb2.AGGREGATION_WEIGHTED_SUM, 99):
        assert rule_from_metric(metering_pb2.Metric(aggregation=aggregation)).measure is Measure.UNMEASURED
