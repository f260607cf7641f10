"""SQL of usage queries: from the 15-minute buckets where possible, from the events where not.

Each timestamp is placed in its window by ``width_bucket(t, boundaries)``, a binary search over the windows'
start instants (computed in Python in the query's time zone), so one statement answers any window size.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.metering.domain.usage import UsageQuery

_LATEST = "(array_agg({value} ORDER BY {time} DESC, {event} DESC))[1]"

# Per aggregation: the expression over events ...
_EVENT_VALUE = {
    "sum": "sum(value)",
    "count": "count(*)",
    "min": "min(value)",
    "max": "max(value)",
    "latest": _LATEST.format(value="value", time="timestamp", event="event_id"),
    "unique_count": "count(DISTINCT dimensions ->> :unique_dimension)",
}
# ... and over partial aggregates (buckets, and edge events shaped like buckets).
_PART_VALUE = {
    "sum": "sum(value_sum)",
    "count": "sum(event_count)",
    "min": "min(value_min)",
    "max": "max(value_max)",
    "latest": _LATEST.format(value="latest_value", time="latest_time", event="latest_event_id"),
}


@dataclass(frozen=True)
class UsageAggregate:
    window: int  # 1-based index into the query's windows
    group_value: str
    value: Decimal | int | None
    event_count: int


def _project_clause(query: UsageQuery) -> str:
    return " AND project_id = :project_id" if query.project_id else ""


async def aggregate_usage(conn: AsyncConnection, query: UsageQuery) -> list[UsageAggregate]:
    """The query's aggregates per window (and group), in window then group order; empty windows absent."""
    params: dict[str, object] = {
        "organisation_id": query.organisation_id,
        "project_id": query.project_id,
        "code": query.code,
        "boundaries": query.range.boundaries,
    }
    if query.reads_buckets:
        sql = _bucket_sql(query, params)
    else:
        sql = _event_sql(query, params)
    rows = (await conn.execute(sa.text(sql), params)).all()
    return [UsageAggregate(row.w, row.g, row.v, row.n) for row in rows]


def _bucket_sql(query: UsageQuery, params: dict[str, object]) -> str:
    span = query.range.bucket_span()
    params["bucket_from"], params["bucket_to"] = span if span else (query.range.start, query.range.start)
    edges = query.range.event_spans()
    edge_clauses = []
    for index, (start, end) in enumerate(edges):
        params[f"edge_start_{index}"], params[f"edge_end_{index}"] = start, end
        edge_clauses.append(f"(timestamp >= :edge_start_{index} AND timestamp < :edge_end_{index})")
    project = _project_clause(query)
    return f"""
        WITH parts AS (
            SELECT bucket_start AS t, event_count, value_sum, value_min, value_max,
                latest_time, latest_event_id, latest_value
            FROM metering.usage_buckets
            WHERE organisation_id = :organisation_id AND metric = :code{project}
                AND bucket_start >= :bucket_from AND bucket_start < :bucket_to
            UNION ALL
            SELECT timestamp, 1, value, value, value, timestamp, event_id, value
            FROM metering.events
            WHERE organisation_id = :organisation_id AND metric = :code{project}
                AND ({" OR ".join(edge_clauses) or "FALSE"})
        )
        SELECT width_bucket(t, CAST(:boundaries AS timestamptz[])) AS w, '' AS g,
            {_PART_VALUE[query.aggregation]} AS v, sum(event_count)::bigint AS n
        FROM parts GROUP BY 1 ORDER BY 1
    """


def _event_sql(query: UsageQuery, params: dict[str, object]) -> str:
    params["start"], params["end"] = query.range.start, query.range.end
    conditions = [
        "organisation_id = :organisation_id",
        "metric = :code",
        "timestamp >= :start",
        "timestamp < :end",
    ]
    if query.project_id:
        conditions.append("project_id = :project_id")
    for index, (dimension, values) in enumerate(sorted(query.filters.items())):
        params[f"filter_key_{index}"], params[f"filter_values_{index}"] = dimension, list(values)
        conditions.append(f"dimensions ->> :filter_key_{index} = ANY(CAST(:filter_values_{index} AS text[]))")
    if query.aggregation == "unique_count":
        params["unique_dimension"] = query.unique_dimension
    group = "''"
    if query.group_by:
        params["group_by"] = query.group_by
        group = "COALESCE(dimensions ->> :group_by, '')"
    return f"""
        SELECT width_bucket(timestamp, CAST(:boundaries AS timestamptz[])) AS w, {group} AS g,
            {_EVENT_VALUE[query.aggregation]} AS v, count(*) AS n
        FROM metering.events
        WHERE {" AND ".join(conditions)}
        GROUP BY 1, 2 ORDER BY 1, 2
    """
