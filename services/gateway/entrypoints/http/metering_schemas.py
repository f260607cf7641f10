"""The REST shapes of metrics, usage and dead letters (metering's side of the API, and of the OpenAPI document).

Decimal values are strings, exactly as metering computed them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from billing.metering.v1 import metering_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.schemas import Request

AggregationName = Literal["sum", "count", "max", "min", "unique_count", "latest", "weighted_sum"]
WindowName = Literal["hour", "day", "month", "whole"]

AGGREGATIONS: dict[str, int] = {
    "sum": metering_pb2.AGGREGATION_SUM,
    "count": metering_pb2.AGGREGATION_COUNT,
    "max": metering_pb2.AGGREGATION_MAX,
    "min": metering_pb2.AGGREGATION_MIN,
    "unique_count": metering_pb2.AGGREGATION_UNIQUE_COUNT,
    "latest": metering_pb2.AGGREGATION_LATEST,
    "weighted_sum": metering_pb2.AGGREGATION_WEIGHTED_SUM,
}
_AGGREGATION_NAMES = {number: name for name, number in AGGREGATIONS.items()}
WINDOWS: dict[str, int] = {
    "hour": metering_pb2.USAGE_WINDOW_HOUR,
    "day": metering_pb2.USAGE_WINDOW_DAY,
    "month": metering_pb2.USAGE_WINDOW_MONTH,
    "whole": metering_pb2.USAGE_WINDOW_WHOLE,
}
_METRIC_STATES = {metering_pb2.METRIC_STATE_ACTIVE: "active", metering_pb2.METRIC_STATE_ARCHIVED: "archived"}


class MetricCreate(Request):
    organisation_id: str
    code: str = Field(description="What events carry in metricName: a lowercase letter, then lowercase letters, "
                                  "digits, '_', '.' or '-'", examples=["api_calls"])
    name: str = Field(examples=["API calls"])
    unit: str = Field("", examples=["requests"])
    aggregation: AggregationName = Field(
        examples=["sum"],
        description="weighted_sum: a gauge (each event sets the project's value until its next event) integrated "
                    "over time, in value-hours (GB -> GB-hours); no filters",
    )
    unique_dimension: str = Field("", description="For unique_count: the metadata key whose distinct values count",
                                  examples=[""])
    filters: dict[str, list[str]] = Field(
        default_factory=dict, description="Only events whose metadata key has one of the values count",
        examples=[{"region": ["eu", "us"]}],
    )

    def to_pb(self, idempotency_key: str) -> metering_pb2.CreateMetricRequest:
        return metering_pb2.CreateMetricRequest(
            organisation_id=self.organisation_id, code=self.code, name=self.name, unit=self.unit,
            aggregation=AGGREGATIONS[self.aggregation], unique_dimension=self.unique_dimension,
            filters={key: metering_pb2.DimensionFilter(values=values) for key, values in self.filters.items()},
            idempotency_key=idempotency_key,
        )


class Metric(BaseModel):
    id: str
    organisation_id: str
    code: str
    name: str
    unit: str
    aggregation: AggregationName
    unique_dimension: str
    filters: dict[str, list[str]]
    state: Literal["active", "archived"]
    created_at: datetime
    archived_at: datetime | None

    @classmethod
    def from_pb(cls, message: metering_pb2.Metric) -> Metric:
        return cls(
            id=message.id, organisation_id=message.organisation_id, code=message.code, name=message.name,
            unit=message.unit, aggregation=_AGGREGATION_NAMES[message.aggregation],
            unique_dimension=message.unique_dimension,
            filters={key: list(f.values) for key, f in sorted(message.filters.items())},
            state=_METRIC_STATES[message.state], created_at=from_timestamp(message.create_time),
            archived_at=from_timestamp(message.archive_time),
        )


class ObservedMetric(BaseModel):
    """A metric code events arrived for, whether or not a metric defines it."""

    code: str
    event_count: int = Field(description="Events stored for the code, after deduplication")
    first_event_at: datetime | None
    last_event_at: datetime | None
    metric_id: str = Field(description="The active metric that counts these events; empty when none does")
    defined: bool = Field(description="Whether an active metric counts these events")

    @classmethod
    def from_pb(cls, message: metering_pb2.ObservedMetric) -> ObservedMetric:
        return cls(
            code=message.code, event_count=message.event_count,
            first_event_at=from_timestamp(message.first_event_time),
            last_event_at=from_timestamp(message.last_event_time),
            metric_id=message.metric_id, defined=bool(message.metric_id),
        )


class UsageRow(BaseModel):
    start: datetime = Field(description="Start of the window, clipped to the queried range")
    end: datetime
    group_value: str = Field(description="The group_by metadata value; empty when not grouped or absent")
    value: str = Field(description="The aggregate, an exact decimal string", examples=["1234.5"])
    event_count: int

    @classmethod
    def from_pb(cls, message: metering_pb2.UsageRow) -> UsageRow:
        return cls(
            start=from_timestamp(message.start_time), end=from_timestamp(message.end_time),
            group_value=message.group_value, value=message.value, event_count=message.event_count,
        )


class Usage(BaseModel):
    metric: Metric
    organisation_id: str
    project_id: str = Field(description="Empty: every project of the organisation")
    start: datetime
    end: datetime
    window: WindowName
    time_zone: str
    group_by: str
    rows: list[UsageRow] = Field(description="Windows in time order, then by group value; empty windows left out")


class DeadLetter(BaseModel):
    sequence: int
    source_stream: str
    source_sequence: int
    subject: str
    reason: str
    delivery_count: int
    dead_lettered_at: datetime | None
    payload_size: int
    state: DeadLetterStateName = Field(description="pending, replayed (re-published) or discarded (not replayable)")
    state_changed_at: datetime | None = None
    discard_reason: str = ""

    @classmethod
    def from_pb(cls, message: metering_pb2.DeadLetter) -> DeadLetter:
        return cls(
            sequence=message.sequence, source_stream=message.source_stream,
            source_sequence=message.source_sequence, subject=message.subject, reason=message.reason,
            delivery_count=message.delivery_count, dead_lettered_at=from_timestamp(message.dead_letter_time),
            payload_size=message.payload_size, state=DEAD_LETTER_STATES.get(message.state, "pending"),
            state_changed_at=from_timestamp(message.state_time) if message.HasField("state_time") else None,
            discard_reason=message.discard_reason,
        )


DeadLetterStateName = Literal["pending", "replayed", "discarded"]
DEAD_LETTER_STATES: dict[int, DeadLetterStateName] = {
    metering_pb2.DEAD_LETTER_STATE_PENDING: "pending",
    metering_pb2.DEAD_LETTER_STATE_REPLAYED: "replayed",
    metering_pb2.DEAD_LETTER_STATE_DISCARDED: "discarded",
}


class DeadLetterDetail(DeadLetter):
    payload: str = Field(description="The payload decoded as JSON (an event batch's events), at most 64 KiB of it")
    payload_truncated: bool
    payload_error: str = Field(description="Why the payload could not be decoded, when it could not")

    @classmethod
    def from_get(cls, reply: metering_pb2.GetDeadLetterResponse) -> DeadLetterDetail:
        letter = DeadLetter.from_pb(reply.dead_letter)
        return cls(**letter.model_dump(), payload=reply.payload_json, payload_truncated=reply.payload_truncated,
                   payload_error=reply.payload_error)


class DeadLetterReplay(BaseModel):
    dead_letter: DeadLetter
    replay_sequence: int = Field(description="The re-published message's sequence in its original stream")
    duplicate: bool = Field(description="True when this replay repeated an earlier one (nothing new published)")


class DeadLetterDiscard(Request):
    reason: str = Field(min_length=1, max_length=500, description="Why it is given up on")


class UsageReconciliationCreate(Request):
    start_time: AwareDatetime = Field(description="RFC 3339 with a zone: events ingest accepted from then",
                                      examples=["2026-11-04T10:00:00Z"])
    end_time: AwareDatetime = Field(description="RFC 3339 with a zone, up to (not including) then; after "
                                                "start_time, at most 24 hours later, not in the future",
                                    examples=["2026-11-04T11:00:00Z"])


class UsageDiscrepancy(BaseModel):
    kind: str = Field(
        description="missing_events (per project and hour: expected accepted, found stored), bucket_mismatch (a "
                    "15-minute bucket against its stored events) or day_mismatch (a UTC day against its buckets)")
    organisation_id: str
    project_id: str
    metric: str
    period_start: datetime
    expected: str
    found: str
    detail: str = ""

    @classmethod
    def from_pb(cls, message: metering_pb2.UsageDiscrepancy) -> UsageDiscrepancy:
        return cls(kind=message.kind, organisation_id=message.organisation_id, project_id=message.project_id,
                   metric=message.metric, period_start=from_timestamp(message.period_start),
                   expected=message.expected, found=message.found, detail=message.detail)


class UsageReconciliation(BaseModel):
    id: str
    trigger: str = Field(description="scheduled or on_demand")
    start_time: datetime
    end_time: datetime
    status: str = Field(description="running, clean, discrepancies, metering_behind (nothing concluded: metering "
                                    "had not consumed the window yet) or failed (see error)")
    started_at: datetime
    finished_at: datetime | None = None
    messages_read: int
    accepted_events: int
    stored_events: int
    missing_events: int
    aggregate_mismatches: int
    discrepancy_count: int = Field(description="All discrepancies found; at most 1,000 of them are kept")
    error: str = ""
    discrepancies: list[UsageDiscrepancy] = Field(default_factory=list, description="Empty in lists")

    @classmethod
    def from_pb(cls, message: metering_pb2.UsageReconciliation) -> UsageReconciliation:
        return cls(
            id=message.id, trigger=message.trigger, start_time=from_timestamp(message.start_time),
            end_time=from_timestamp(message.end_time), status=message.status,
            started_at=from_timestamp(message.started_time),
            finished_at=from_timestamp(message.finished_time) if message.HasField("finished_time") else None,
            messages_read=message.messages_read, accepted_events=message.accepted_events,
            stored_events=message.stored_events, missing_events=message.missing_events,
            aggregate_mismatches=message.aggregate_mismatches, discrepancy_count=message.discrepancy_count,
            error=message.error, discrepancies=[UsageDiscrepancy.from_pb(d) for d in message.discrepancies],
        )
