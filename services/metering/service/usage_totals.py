"""Usage of many organisations' metrics for a period in one call, and a metric's event values page by page:
what invoicing reads to price a billing period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from billing_runtime.database import UnitOfWork
from billing_runtime.errors import InvalidArgument
from services.metering.adapters.repository import MetricRepository
from services.metering.adapters.usage_repository import (
    BucketTotalQuery,
    aggregate_usage,
    bucket_totals,
    event_values,
)
from services.metering.domain.metric import Metric, validate_code
from services.metering.domain.usage import UsageQuery, Window, format_decimal, usage_range
from services.metering.domain.usage_totals import (
    CheckedTotalQuery,
    EventCursor,
    TotalQuery,
    UsageTotal,
    check_total_queries,
    event_cursor,
    event_page_size,
    reads_buckets_only,
)


async def get_usage_totals(
    uow: UnitOfWork, queries: Sequence[TotalQuery], now: datetime | None = None
) -> list[UsageTotal]:
    """One total per query, in order, each equal to QueryUsage's answer with window WHOLE at ``now`` (None: the
    clock; a gauge counts a period in progress up to then).

    The metrics are resolved in one statement, and every question the buckets alone answer (no filters, a
    bucket aggregation, both ends on the 15-minute grid: a billing period's usual shape) in one more. The rest
    (filters, unique_count, weighted_sum, ends inside a bucket) take QueryUsage's own path, one statement each."""
    now = now or datetime.now(UTC)
    checked = check_total_queries(queries)
    async with uow:
        found = await MetricRepository(uow.connection).active_by_codes(
            (q.organisation_id, q.metric_code) for q in checked
        )
        answers: list[tuple[Decimal | int | None, int] | None] = [None] * len(checked)
        bulk = [
            i for i, q in enumerate(checked)
            if (metric := found.get((q.organisation_id, q.metric_code))) and reads_buckets_only(metric, q)
        ]
        bulk_answers = await bucket_totals(uow.connection, [_bucket_query(checked[i], found) for i in bulk])
        for i, answer in zip(bulk, bulk_answers, strict=True):
            answers[i] = answer
        for i, query in enumerate(checked):
            metric = found.get((query.organisation_id, query.metric_code))
            if metric is not None and answers[i] is None:
                answers[i] = await _one_total(uow, query, metric, now)
    return [_total(query, found.get((query.organisation_id, query.metric_code)), answer)
            for query, answer in zip(checked, answers, strict=True)]


def _bucket_query(query: CheckedTotalQuery, found: dict[tuple[str, str], Metric]) -> BucketTotalQuery:
    metric = found[(query.organisation_id, query.metric_code)]
    return BucketTotalQuery(query.organisation_id, metric.code, query.range.start, query.range.end,
                            metric.aggregation.value)


async def _one_total(uow: UnitOfWork, query: CheckedTotalQuery, metric: Metric, now: datetime
                     ) -> tuple[Decimal | int | None, int]:
    aggregates = await aggregate_usage(
        uow.connection,
        UsageQuery(
            organisation_id=query.organisation_id,
            project_id="",
            code=metric.code,
            aggregation=metric.aggregation.value,
            unique_dimension=metric.unique_dimension,
            filters=dict(metric.filters),
            range=query.range,
            group_by="",
            now=now,
        ),
    )
    # One window: at most one row, numbered 1 (width_bucket places nothing outside [start, end)).
    rows = [a for a in aggregates if a.window == 1 and a.value is not None]
    return (rows[0].value, rows[0].event_count) if rows else (None, 0)


def _total(query: CheckedTotalQuery, metric: Metric | None, answer: tuple[Decimal | int | None, int] | None
           ) -> UsageTotal:
    value, count = answer if answer is not None else (None, 0)
    if value is None:  # no event counted: zero for every aggregation, as invoicing reads it
        return UsageTotal(query.organisation_id, query.metric_code, metric, "0", 0)
    return UsageTotal(query.organisation_id, query.metric_code, metric, format_decimal(value), count)


async def list_event_values(
    uow: UnitOfWork,
    *,
    organisation_id: str,
    metric_code: str,
    start: datetime | None,
    end: datetime | None,
    page_size: int,
    page_token: str,
) -> tuple[bool, list[str], str]:
    """(metric found, values as exact decimal strings, next page token) of the events the organisation's active
    metric counts over [start, end), its filters applied, in (timestamp, event_id) order."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    validate_code(metric_code, "metric_code")
    usage = usage_range(start, end, Window.WHOLE, "")
    size, cursor = event_page_size(page_size), event_cursor(page_token)
    async with uow:
        metric = await MetricRepository(uow.connection).get_active_by_code(organisation_id, metric_code)
        if metric is None:
            return False, [], ""
        rows = await event_values(
            uow.connection,
            organisation_id=organisation_id,
            code=metric.code,
            filters=metric.filters,
            start=usage.start,
            end=usage.end,
            after=(cursor.timestamp, cursor.event_id, cursor.project_id) if cursor else None,
            limit=size + 1,
        )
    page = rows[:size]
    token = ""
    if len(rows) > size:
        last = page[-1]
        token = EventCursor(last.timestamp, last.event_id, last.project_id).token()
    return True, [format_decimal(row.value) for row in page], token
