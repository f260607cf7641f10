"""Protobuf <-> domain for metering's contract, and decoding ingest's EventBatchAccepted."""

from __future__ import annotations

import json

from google.protobuf.message import DecodeError

from billing.ingest.v1 import events_pb2
from billing.metering.v1 import events_pb2 as metering_events_pb2
from billing.metering.v1 import metering_pb2
from billing_runtime.timestamps import to_timestamp
from services.metering.adapters import native_columns
from services.metering.domain.alert_evaluation import FiredAlert
from services.metering.domain.alerts import AlertKind, AlertRule, CostBasis, ThresholdBasis
from services.metering.domain.event_batch import EventColumns, PoisonBatch, check_metric_codes, check_owner
from services.metering.domain.metric import Aggregation, Metric
from services.metering.domain.usage import Window

EVENT_BATCH_ACCEPTED = "billing.ingest.v1.event_batch.accepted"
ALERT_TRIGGERED = "billing.metering.v1.alert.triggered"

AGGREGATIONS = {
    metering_pb2.AGGREGATION_SUM: Aggregation.SUM,
    metering_pb2.AGGREGATION_COUNT: Aggregation.COUNT,
    metering_pb2.AGGREGATION_MAX: Aggregation.MAX,
    metering_pb2.AGGREGATION_MIN: Aggregation.MIN,
    metering_pb2.AGGREGATION_UNIQUE_COUNT: Aggregation.UNIQUE_COUNT,
    metering_pb2.AGGREGATION_LATEST: Aggregation.LATEST,
    metering_pb2.AGGREGATION_WEIGHTED_SUM: Aggregation.WEIGHTED_SUM,
}
AGGREGATION_TO_PB = {value: key for key, value in AGGREGATIONS.items()}
WINDOWS = {
    metering_pb2.USAGE_WINDOW_UNSPECIFIED: Window.WHOLE,
    metering_pb2.USAGE_WINDOW_WHOLE: Window.WHOLE,
    metering_pb2.USAGE_WINDOW_HOUR: Window.HOUR,
    metering_pb2.USAGE_WINDOW_DAY: Window.DAY,
    metering_pb2.USAGE_WINDOW_MONTH: Window.MONTH,
}


ALERT_KINDS = {
    metering_pb2.ALERT_KIND_THRESHOLD: AlertKind.THRESHOLD,
    metering_pb2.ALERT_KIND_SPIKE: AlertKind.SPIKE,
    metering_pb2.ALERT_KIND_COST: AlertKind.COST,
    metering_pb2.ALERT_KIND_CREDIT_BALANCE: AlertKind.CREDIT_BALANCE,
}
ALERT_KIND_TO_PB = {value: key for key, value in ALERT_KINDS.items()}
THRESHOLD_BASES = {
    metering_pb2.THRESHOLD_BASIS_ABSOLUTE: ThresholdBasis.ABSOLUTE,
    metering_pb2.THRESHOLD_BASIS_QUOTA_PERCENT: ThresholdBasis.QUOTA_PERCENT,
}
THRESHOLD_BASIS_TO_PB = {value: key for key, value in THRESHOLD_BASES.items()}
COST_BASES = {
    metering_pb2.COST_BASIS_TO_DATE: CostBasis.TO_DATE,
    metering_pb2.COST_BASIS_FORECAST: CostBasis.FORECAST,
}
COST_BASIS_TO_PB = {value: key for key, value in COST_BASES.items()}


def alert_rule_to_pb(rule: AlertRule) -> metering_pb2.AlertRule:
    message = metering_pb2.AlertRule(
        id=rule.id,
        organisation_id=rule.organisation_id,
        project_id=rule.project_id,
        kind=ALERT_KIND_TO_PB[rule.kind],
        name=rule.name,
        metric_code=rule.metric_code,
        basis=THRESHOLD_BASIS_TO_PB[rule.basis] if rule.basis else metering_pb2.THRESHOLD_BASIS_UNSPECIFIED,
        levels=list(rule.levels),
        window_seconds=rule.window_seconds,
        baseline_seconds=rule.baseline_seconds,
        factor=rule.factor,
        min_volume=rule.min_volume,
        budget=rule.budget,
        currency=rule.currency,
        cost_basis=COST_BASIS_TO_PB[rule.cost_basis] if rule.cost_basis else metering_pb2.COST_BASIS_UNSPECIFIED,
        credit_threshold_minor=rule.credit_threshold_minor,
    )
    if rule.created_at is not None:
        message.create_time.CopyFrom(to_timestamp(rule.created_at))
    if rule.deleted_at is not None:
        message.delete_time.CopyFrom(to_timestamp(rule.deleted_at))
    return message


def fired_alert_to_pb(alert: FiredAlert) -> metering_pb2.FiredAlert:
    message = metering_pb2.FiredAlert(
        id=alert.id,
        rule_id=alert.rule_id,
        organisation_id=alert.organisation_id,
        project_id=alert.project_id,
        kind=ALERT_KIND_TO_PB[alert.kind],
        metric_code=alert.metric_code,
        level=alert.level,
        threshold=alert.threshold,
        value=alert.value,
        baseline=alert.baseline,
        currency=alert.currency,
        event_id=alert.event_id,
        event_project_id=alert.event_project_id,
        period_start=to_timestamp(alert.period_start),
        period_end=to_timestamp(alert.period_end),
        rule_name=alert.rule_name,
    )
    if alert.event_time is not None:
        message.event_time.CopyFrom(to_timestamp(alert.event_time))
    if alert.fired_at is not None:
        message.fire_time.CopyFrom(to_timestamp(alert.fired_at))
    return message


def alert_triggered(event_id: str, alert: FiredAlert, rule: AlertRule) -> metering_events_pb2.AlertTriggered:
    return metering_events_pb2.AlertTriggered(
        event_id=event_id, alert=fired_alert_to_pb(alert), rule=alert_rule_to_pb(rule)
    )


def metric_to_pb(metric: Metric) -> metering_pb2.Metric:
    message = metering_pb2.Metric(
        id=metric.id,
        organisation_id=metric.organisation_id,
        code=metric.code,
        name=metric.name,
        unit=metric.unit,
        aggregation=AGGREGATION_TO_PB[metric.aggregation],
        unique_dimension=metric.unique_dimension,
        filters={key: metering_pb2.DimensionFilter(values=values) for key, values in metric.filters.items()},
        state=metering_pb2.METRIC_STATE_ACTIVE if metric.active else metering_pb2.METRIC_STATE_ARCHIVED,
    )
    if metric.created_at is not None:
        message.create_time.CopyFrom(to_timestamp(metric.created_at))
    if metric.archived_at is not None:
        message.archive_time.CopyFrom(to_timestamp(metric.archived_at))
    return message


_NATIVE = native_columns.load()
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def decode_event_batch(payload: bytes, decoder: native_columns.ColumnDecoder | None = _NATIVE) -> EventColumns:
    """EventBatchAccepted -> columns. Raises PoisonBatch for a payload that is not one.

    The consumer's hot loop: the native decoder does it without a Python object per field; anything it does
    not handle (or no native library) takes the protobuf decoder, with the same result.
    """
    decoded = decoder.decode(payload) if decoder is not None else None
    if decoded is None:
        return _decode_with_protobuf(payload)
    check_owner(decoded.organisation_id, decoded.project_id)
    check_metric_codes(decoded.metrics)
    count = len(decoded.event_ids)
    return EventColumns(
        organisation_ids=[decoded.organisation_id] * count,
        project_ids=[decoded.project_id] * count,
        event_ids=decoded.event_ids,
        metrics=decoded.metrics,
        values=decoded.values,
        timestamps_us=decoded.timestamps_us,
        dimensions=decoded.dimensions,
    )


def _decode_with_protobuf(payload: bytes) -> EventColumns:
    try:
        batch = events_pb2.EventBatchAccepted.FromString(payload)
    except DecodeError as error:
        raise PoisonBatch(f"not an EventBatchAccepted protobuf: {error}", "undecodable") from None
    check_owner(batch.organisation_id, batch.project_id)
    events = list(batch.events)  # wrap each event once, not once per column
    count = len(events)
    stamps = [event.timestamp for event in events]
    metrics = [event.metric for event in events]
    check_metric_codes(metrics)
    return EventColumns(
        organisation_ids=[batch.organisation_id] * count,
        project_ids=[batch.project_id] * count,
        event_ids=[event.event_id for event in events],
        metrics=metrics,
        values=[event.value for event in events],
        timestamps_us=[stamp.seconds * 1_000_000 + stamp.nanos // 1000 for stamp in stamps],
        dimensions=[_json(dict(event.dimensions)) if event.dimensions else "null" for event in events],
    )
