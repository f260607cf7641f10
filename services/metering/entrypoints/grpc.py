"""MeteringService over gRPC: protobuf in, use case, protobuf out. Nothing else."""

from __future__ import annotations

from datetime import datetime

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime.errors import InvalidArgument, Unavailable
from billing_runtime.service import Runtime
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.metering.adapters.dead_letters import DeadLetter, DeadLetters, decode_payload
from services.metering.adapters.messages import AGGREGATION_TO_PB, AGGREGATIONS, WINDOWS, metric_to_pb
from services.metering.domain.dead_letters import DeadLetterState
from services.metering.domain.usage_totals import TotalQuery
from services.metering.entrypoints.alerts_grpc import AlertsServicer
from services.metering.entrypoints.quota_grpc import QuotaRpcs
from services.metering.entrypoints.reconciliation_grpc import ReconciliationRpcs
from services.metering.service import dead_letters, metrics, usage, usage_totals
from services.metering.service.metrics import OrganisationDirectory

_STATES = {
    DeadLetterState.PENDING: metering_pb2.DEAD_LETTER_STATE_PENDING,
    DeadLetterState.REPLAYED: metering_pb2.DEAD_LETTER_STATE_REPLAYED,
    DeadLetterState.DISCARDED: metering_pb2.DEAD_LETTER_STATE_DISCARDED,
}


def dead_letter_to_pb(letter: DeadLetter) -> metering_pb2.DeadLetter:
    return metering_pb2.DeadLetter(
        sequence=letter.sequence,
        source_stream=letter.source_stream,
        source_sequence=letter.source_sequence,
        subject=letter.subject,
        reason=letter.reason,
        delivery_count=letter.delivery_count,
        dead_letter_time=to_timestamp(letter.dead_letter_time) if letter.dead_letter_time else None,
        payload_size=letter.payload_size,
        state=_STATES[letter.state.state],
        state_time=to_timestamp(letter.state.changed_at) if letter.state.changed_at else None,
        discard_reason=letter.state.reason if letter.state.state is DeadLetterState.DISCARDED else "",
    )


class MeteringServicer(AlertsServicer, QuotaRpcs, ReconciliationRpcs, metering_pb2_grpc.MeteringServiceServicer):
    def __init__(self, runtime: Runtime, organisations: OrganisationDirectory) -> None:
        self._runtime = runtime
        self._organisations = organisations

    async def CreateMetric(self, request, context):  # noqa: N802 - gRPC method names
        command = metrics.CreateMetric(
            organisation_id=request.organisation_id,
            code=request.code,
            name=request.name,
            unit=request.unit,
            aggregation=AGGREGATIONS.get(request.aggregation),
            unique_dimension=request.unique_dimension,
            filters={key: list(value.values) for key, value in request.filters.items()},
            idempotency_key=request.idempotency_key,
        )
        metric, created = await metrics.create_metric(self._runtime.uow(), self._organisations, command)
        return metering_pb2.CreateMetricResponse(metric=metric_to_pb(metric), created=created)

    async def GetMetric(self, request, context):  # noqa: N802
        metric = await metrics.get_metric(self._runtime.uow(), request.metric_id)
        return metering_pb2.GetMetricResponse(metric=metric_to_pb(metric))

    async def ListMetrics(self, request, context):  # noqa: N802
        page, token = await metrics.list_metrics(
            self._runtime.uow(), request.organisation_id, request.include_archived, request.page_size,
            request.page_token,
        )
        return metering_pb2.ListMetricsResponse(metrics=[metric_to_pb(m) for m in page], next_page_token=token)

    async def ArchiveMetric(self, request, context):  # noqa: N802
        metric = await metrics.archive_metric(self._runtime.uow(), request.metric_id)
        return metering_pb2.ArchiveMetricResponse(metric=metric_to_pb(metric))

    async def ListObservedMetrics(self, request, context):  # noqa: N802
        observed = await metrics.list_observed_metrics(self._runtime.uow(), request.organisation_id)
        return metering_pb2.ListObservedMetricsResponse(
            metrics=[
                metering_pb2.ObservedMetric(
                    code=o.code,
                    event_count=o.event_count,
                    first_event_time=to_timestamp(o.first_event_time),
                    last_event_time=to_timestamp(o.last_event_time),
                    metric_id=o.metric_id,
                )
                for o in observed
            ]
        )

    async def QueryUsage(self, request, context):  # noqa: N802
        window = WINDOWS.get(request.window)
        if window is None:
            raise InvalidArgument("is not a known window", field="window")
        metric, rows = await usage.query_usage(
            self._runtime.uow(),
            usage.QueryUsage(
                organisation_id=request.organisation_id,
                project_id=request.project_id,
                metric_code=request.metric_code,
                metric_id=request.metric_id,
                start=from_timestamp(request.start_time, "start_time") if request.HasField("start_time") else None,
                end=from_timestamp(request.end_time, "end_time") if request.HasField("end_time") else None,
                window=window,
                time_zone=request.time_zone,
                group_by=request.group_by,
            ),
        )
        return metering_pb2.QueryUsageResponse(
            metric=metric_to_pb(metric),
            rows=[
                metering_pb2.UsageRow(
                    start_time=to_timestamp(row.start),
                    end_time=to_timestamp(row.end),
                    group_value=row.group_value,
                    value=row.value,
                    event_count=row.event_count,
                )
                for row in rows
            ],
        )

    async def GetUsageTotals(self, request, context):  # noqa: N802
        # Thousands of questions share a few period boundaries: convert each distinct one once.
        times: dict[tuple[int, int], datetime | None] = {}

        def moment(query, name: str) -> datetime | None:
            if not query.HasField(name):
                return None
            stamp = getattr(query, name)
            key = (stamp.seconds, stamp.nanos)
            if key not in times:
                times[key] = from_timestamp(stamp)
            return times[key]

        queries = [
            TotalQuery(q.organisation_id, q.metric_code, moment(q, "start_time"), moment(q, "end_time"))
            for q in request.queries
        ]
        totals = await usage_totals.get_usage_totals(self._runtime.uow(), queries)
        return metering_pb2.GetUsageTotalsResponse(
            totals=[
                metering_pb2.UsageTotal(
                    organisation_id=t.organisation_id,
                    metric_code=t.metric_code,
                    metric_found=t.metric is not None,
                    metric_id=t.metric.id if t.metric else "",
                    aggregation=AGGREGATION_TO_PB[t.metric.aggregation] if t.metric else 0,
                    value=t.value,
                    event_count=t.event_count,
                )
                for t in totals
            ]
        )

    async def ListEventValues(self, request, context):  # noqa: N802
        found, values, token = await usage_totals.list_event_values(
            self._runtime.uow(),
            organisation_id=request.organisation_id,
            metric_code=request.metric_code,
            start=from_timestamp(request.start_time, "start_time") if request.HasField("start_time") else None,
            end=from_timestamp(request.end_time, "end_time") if request.HasField("end_time") else None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return metering_pb2.ListEventValuesResponse(metric_found=found, values=values, next_page_token=token)

    def _dead_letters(self) -> DeadLetters:
        if self._runtime.js is None:
            raise Unavailable("NATS is not connected yet")
        return DeadLetters(self._runtime.js, replicas=self._runtime.settings.stream_replicas)

    async def ListDeadLetters(self, request, context):  # noqa: N802
        letters, token = await dead_letters.list_dead_letters(
            self._dead_letters(), request.page_size, request.page_token
        )
        return metering_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter_to_pb(letter) for letter in letters], next_page_token=token
        )

    async def GetDeadLetter(self, request, context):  # noqa: N802
        letter, payload = await dead_letters.get_dead_letter(self._dead_letters(), request.sequence)
        decoded = decode_payload(payload)
        return metering_pb2.GetDeadLetterResponse(
            dead_letter=dead_letter_to_pb(letter),
            payload_json=decoded.json,
            payload_truncated=decoded.truncated,
            payload_error=decoded.error,
        )

    async def ReplayDeadLetter(self, request, context):  # noqa: N802
        replay = await dead_letters.replay_dead_letter(self._dead_letters(), request.sequence)
        return metering_pb2.ReplayDeadLetterResponse(
            dead_letter=dead_letter_to_pb(replay.letter),
            replay_sequence=replay.replayed.stream_sequence,
            duplicate=replay.replayed.duplicate,
        )

    async def DiscardDeadLetter(self, request, context):  # noqa: N802
        letter = await dead_letters.discard_dead_letter(self._dead_letters(), request.sequence, request.reason)
        return metering_pb2.DiscardDeadLetterResponse(dead_letter=dead_letter_to_pb(letter))
