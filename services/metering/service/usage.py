"""Usage queries: a metric's aggregate over a range, in windows of a time zone, optionally grouped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from billing_runtime.database import UnitOfWork
from billing_runtime.errors import InvalidArgument, NotFound
from services.metering.adapters.repository import MetricRepository
from services.metering.adapters.usage_repository import aggregate_usage
from services.metering.domain.metric import Aggregation, Metric, validate_code, validate_dimension_name
from services.metering.domain.usage import UsageQuery, UsageRow, Window, format_decimal, usage_range


@dataclass(frozen=True)
class QueryUsage:
    organisation_id: str
    start: datetime | None
    end: datetime | None
    metric_code: str = ""
    metric_id: str = ""
    project_id: str = ""
    window: Window = Window.WHOLE
    time_zone: str = ""
    group_by: str = ""


async def _resolve_metric(repository: MetricRepository, command: QueryUsage) -> Metric:
    if command.metric_id:
        metric = await repository.get(command.metric_id)
        if metric is None or metric.organisation_id != command.organisation_id:
            raise NotFound(f"organisation {command.organisation_id} has no metric with id {command.metric_id!r}")
        return metric
    metric = await repository.get_active_by_code(command.organisation_id, command.metric_code)
    if metric is None:
        raise NotFound(f"organisation {command.organisation_id} has no active metric {command.metric_code!r}")
    return metric


async def query_usage(
    uow: UnitOfWork, command: QueryUsage, now: datetime | None = None
) -> tuple[Metric, list[UsageRow]]:
    """The metric and its usage rows: windows in time order (then group value), empty windows left out.

    Totals are computed from what is stored, so they equal a recomputation from the events. ``now`` (None: the
    clock) is where a gauge's value stops counting in a range in progress."""
    now = now or datetime.now(UTC)
    if not command.organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    if command.metric_id and command.metric_code:
        raise InvalidArgument("give metric_code or metric_id, not both", field="metric_code")
    if not command.metric_id:
        validate_code(command.metric_code, "metric_code")
    if command.group_by:
        validate_dimension_name(command.group_by, "group_by")
    usage = usage_range(command.start, command.end, command.window, command.time_zone)
    async with uow:
        metric = await _resolve_metric(MetricRepository(uow.connection), command)
        if command.group_by and metric.aggregation is Aggregation.WEIGHTED_SUM:
            raise InvalidArgument(
                "is not available for a weighted_sum metric: a gauge is one value per project (ask per project_id)",
                field="group_by",
            )
        query = UsageQuery(
            organisation_id=command.organisation_id,
            project_id=command.project_id,
            code=metric.code,
            aggregation=metric.aggregation.value,
            unique_dimension=metric.unique_dimension,
            filters=dict(metric.filters),
            range=usage,
            group_by=command.group_by,
            now=now,
        )
        aggregates = await aggregate_usage(uow.connection, query)
    rows = []
    for aggregate in aggregates:
        if aggregate.value is None or not 1 <= aggregate.window <= len(usage.windows):
            continue
        start, end = usage.windows[aggregate.window - 1]
        rows.append(UsageRow(start, end, aggregate.group_value, format_decimal(aggregate.value), aggregate.event_count))
    return metric, rows
