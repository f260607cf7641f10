"""SQL of usage queries: from the 15-minute buckets where possible, from the events where not.

Each timestamp is placed in its window by ``width_bucket(t, boundaries)``, a binary search over the windows'
start instants (computed in Python in the query's time zone), so one statement answers any window size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.errors import FailedPrecondition
from services.metering.domain.usage import UsageQuery, floor_bucket, gauge_hours

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


async def archived_before(conn: AsyncConnection) -> datetime | None:
    """The end of the latest month of events archived (docs/operations.md): recorded, so its rows may be deleted
    already (or partly); None when none is."""
    value = (await conn.execute(sa.text("SELECT max(month_end) FROM metering.event_archives"))).scalar()
    return value


async def _refuse_archived(conn: AsyncConnection, spans: Sequence[tuple[datetime, datetime]]) -> None:
    """Raw events of an archived month are gone from the database: a question that needs them is refused, never
    answered with less. (Totals from buckets and days stay; they do not need the events.)"""
    spans = [(start, end) for start, end in spans if start < end]
    if not spans:
        return
    before = await archived_before(conn)
    if before is not None and min(start for start, _ in spans) < before:
        raise FailedPrecondition(
            f"events before {before.astimezone(UTC).date().isoformat()} are archived: filters, group_by, distinct"
            " counts, event values and ranges not on the 15-minute grid need them (whole buckets still answer)"
        )


async def aggregate_usage(conn: AsyncConnection, query: UsageQuery) -> list[UsageAggregate]:
    """The query's aggregates per window (and group), in window then group order; empty windows absent.
    FAILED_PRECONDITION when it needs events of an archived month."""
    if query.is_gauge:
        return await _gauge_usage(conn, query)
    await _refuse_archived(
        conn, query.range.event_spans() if query.reads_buckets else [(query.range.start, query.range.end)]
    )
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


def _filter_conditions(filters: Mapping[str, Sequence[str]], params: dict[str, object]) -> list[str]:
    """A metric's filters as SQL conditions on the events' dimensions (every filter must match)."""
    conditions = []
    for index, (dimension, values) in enumerate(sorted(filters.items())):
        params[f"filter_key_{index}"], params[f"filter_values_{index}"] = dimension, list(values)
        conditions.append(f"dimensions ->> :filter_key_{index} = ANY(CAST(:filter_values_{index} AS text[]))")
    return conditions


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
    conditions.extend(_filter_conditions(query.filters, params))
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


# -- gauges: weighted_sum ----------------------------------------------------------------------------------------

# A gauge's events are its points: each sets its project's value from its timestamp until the project's next point.
# They are read from what outlives archiving wherever that suffices, so a value set months ago is still carried:
# - before the UTC day holding the range's start, only the latest event per project matters: the day rows keep it;
# - from that day to the start's quarter hour (``cut``), likewise the latest of each bucket;
# - from there to where values stop counting, every event, from the 15-minute buckets: a bucket of one event *is*
#   that event (its latest), a bucket of two is its latest plus the other one, at first_time and worth value_sum
#   minus the latest value (sorted before the latest at the same instant by an empty id, every real id being
#   longer). Buckets of three or more events cannot say when each held: from the first of them to the end of the
#   last (``dense_from`` to ``dense_to``, found beforehand) the points are the events themselves, read by one
#   range scan of constant bounds (the BRIN index), and the buckets there are not used.
# Points before the start give each project its carried value, placed at the start (ordered 0, so it comes before
# any event at that instant); LEAD() ends each point where the next begins, the last at ``held_until``. Points at
# one instant hold for no time except the last in (timestamp, event_id) order: the greater event id wins. Each held
# span is cut by the windows (width_bucket over their starts) and summed as value x seconds, exact numerics
# (epochs are exact to the microsecond), which Python turns into value-hours with one rounding.
_GAUGE_SQL = """
    WITH prior AS (
        SELECT DISTINCT ON (project_id) project_id, latest_time AS t, latest_event_id AS k, latest_value AS v
        FROM metering.usage_days
        WHERE organisation_id = :organisation_id AND metric = :code{project} AND day_start < :day
        ORDER BY project_id, latest_time DESC, latest_event_id DESC
    ), buckets AS (
        SELECT project_id, bucket_start, event_count, value_sum, first_time, latest_time, latest_event_id,
            latest_value
        FROM metering.usage_buckets
        WHERE organisation_id = :organisation_id AND metric = :code{project}
            AND bucket_start >= :day AND bucket_start < :held_until
            AND NOT (bucket_start >= :dense_from AND bucket_start < :dense_to)
    ), points AS (
        SELECT project_id, t, k, v FROM prior
        UNION ALL
        SELECT project_id, latest_time, latest_event_id, latest_value FROM buckets
        UNION ALL
        SELECT project_id, first_time, '', value_sum - latest_value FROM buckets
        WHERE event_count = 2 AND bucket_start >= :cut
        UNION ALL
        SELECT project_id, timestamp, event_id, value FROM metering.events
        WHERE organisation_id = :organisation_id AND metric = :code{project}
            AND timestamp >= :dense_from AND timestamp < :dense_to
    ), carried AS (
        SELECT DISTINCT ON (project_id) project_id, v FROM points WHERE t < :start
        ORDER BY project_id, t DESC, k DESC
    ), held AS (
        SELECT t, v, lead(t, 1, CAST(:held_until AS timestamptz))
            OVER (PARTITION BY project_id ORDER BY t, ord, k) AS t_end
        FROM (
            SELECT project_id, CAST(:start AS timestamptz) AS t, 0 AS ord, '' AS k, v FROM carried
            UNION ALL
            SELECT project_id, t, 1, k, v FROM points WHERE t >= :start AND t < :held_until
        ) p
    ), bounds AS (
        SELECT CAST(:boundaries AS timestamptz[]) AS b
    )
    SELECT w, '' AS g,
        sum(v * (extract(epoch FROM least(t_end, b[w + 1])) - extract(epoch FROM greatest(t, b[w])))) AS v,
        count(*) AS n
    FROM held CROSS JOIN bounds
        CROSS JOIN LATERAL generate_series(width_bucket(t, b), width_bucket(t_end - INTERVAL '1 microsecond', b)) w
    WHERE t < t_end
    GROUP BY w ORDER BY w
"""
# The first and the last quarter hour of three or more events from the start's quarter hour on (primary key scan).
_GAUGE_DENSE_SQL = """
    SELECT min(bucket_start) AS first, max(bucket_start) AS last FROM metering.usage_buckets
    WHERE organisation_id = :organisation_id AND metric = :code{project}
        AND bucket_start >= :cut AND bucket_start < :held_until AND event_count > 2
"""


async def _gauge_usage(conn: AsyncConnection, query: UsageQuery) -> list[UsageAggregate]:
    """A weighted_sum's value-hours per window (never grouped, never filtered: define_metric and query_usage
    refuse those). FAILED_PRECONDITION only when a quarter hour of three or more events inside the range lies in an
    archived month; a value carried from an archived month is read from the aggregates, which stay."""
    start, held_until = query.range.start, query.held_until
    if held_until <= start:
        return []
    cut = floor_bucket(start)
    project = _project_clause(query)
    params: dict[str, object] = {
        "organisation_id": query.organisation_id,
        "project_id": query.project_id,
        "code": query.code,
        "cut": cut,
        "held_until": held_until,
    }
    dense = (await conn.execute(sa.text(_GAUGE_DENSE_SQL.format(project=project)), params)).one()
    if dense.first is not None:
        before = await archived_before(conn)
        if before is not None and dense.first < before:
            raise FailedPrecondition(
                f"events before {before.astimezone(UTC).date().isoformat()} are archived: this gauge had more than"
                " two events in a quarter hour there, which only the events themselves can say"
            )
    params.update(
        day=start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        start=start,
        dense_from=dense.first if dense.first is not None else cut,
        dense_to=dense.last + timedelta(minutes=15) if dense.last is not None else cut,
        boundaries=query.range.boundaries,
    )
    rows = (await conn.execute(sa.text(_GAUGE_SQL.format(project=project)), params)).all()
    return [UsageAggregate(row.w, row.g, gauge_hours(row.v), row.n) for row in rows]


# -- many whole-range totals in one statement ------------------------------------------------------------------

@dataclass(frozen=True)
class BucketTotalQuery:
    """A whole-range question the buckets alone answer: both ends on the 15-minute grid, no filters."""

    organisation_id: str
    code: str
    start: datetime
    end: datetime
    aggregation: str  # sum, count, min, max or latest


# One statement for every question: the questions arrive as parallel arrays, and each one is read in three parts by
# range scans of primary keys (organisation, metric, start): the buckets of the partial UTC day at its start, the
# whole UTC days in between from usage_days, and the buckets of the partial day at its end. A month of buckets in
# every quarter hour is thus ~30 day rows and at most 2 x 95 buckets instead of 2,976 buckets. The latest value
# needs its own ordered look-up, done only for the questions that ask for it.
_PARTS = """
    SELECT {columns} FROM metering.usage_buckets b
    WHERE b.organisation_id = q.organisation_id AND b.metric = q.metric
        AND b.bucket_start >= q.start_time AND b.bucket_start < q.days_from{condition}
    UNION ALL
    SELECT {columns} FROM metering.usage_days b
    WHERE b.organisation_id = q.organisation_id AND b.metric = q.metric
        AND b.day_start >= q.days_from AND b.day_start < q.days_to{condition}
    UNION ALL
    SELECT {columns} FROM metering.usage_buckets b
    WHERE b.organisation_id = q.organisation_id AND b.metric = q.metric
        AND b.bucket_start >= q.days_to AND b.bucket_start < q.end_time{condition}
"""
_BUCKET_TOTALS_SQL = f"""
    WITH q AS (
        SELECT * FROM unnest(
            CAST(:organisation_ids AS text[]), CAST(:codes AS text[]), CAST(:starts AS timestamptz[]),
            CAST(:days_from AS timestamptz[]), CAST(:days_to AS timestamptz[]), CAST(:ends AS timestamptz[]),
            CAST(:aggregations AS text[])
        ) WITH ORDINALITY AS q(organisation_id, metric, start_time, days_from, days_to, end_time, aggregation, i)
    )
    SELECT q.i AS i, t.n AS n,
        CASE q.aggregation
            WHEN 'sum' THEN t.s WHEN 'count' THEN t.n WHEN 'min' THEN t.lo WHEN 'max' THEN t.hi
            WHEN 'latest' THEN l.v
        END AS v
    FROM q
    CROSS JOIN LATERAL (
        SELECT sum(p.event_count)::bigint AS n, sum(p.value_sum) AS s, min(p.value_min) AS lo,
            max(p.value_max) AS hi
        FROM ({_PARTS.format(columns="b.event_count, b.value_sum, b.value_min, b.value_max", condition="")}) p
    ) t
    LEFT JOIN LATERAL (
        SELECT p.latest_value AS v
        FROM ({_PARTS.format(columns="b.latest_time, b.latest_event_id, b.latest_value",
                             condition=" AND q.aggregation = 'latest'")}) p
        ORDER BY p.latest_time DESC, p.latest_event_id DESC
        LIMIT 1
    ) l ON TRUE
    ORDER BY q.i
"""


def whole_utc_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[days_from, days_to): the whole UTC days inside [start, end), or (end, end) when there is none, so that
    [start, days_from) and [days_to, end) are the partial days at the ends (each shorter than a day)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(days=1)
    last = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return (first, last) if first < last else (end, end)


async def bucket_totals(
    conn: AsyncConnection, queries: Sequence[BucketTotalQuery]
) -> list[tuple[Decimal | int | None, int]]:
    """(value, event_count) per question, in the questions' order; value None when no event counted."""
    if not queries:
        return []
    days = [whole_utc_days(q.start, q.end) for q in queries]
    params = {
        "organisation_ids": [q.organisation_id for q in queries],
        "codes": [q.code for q in queries],
        "starts": [q.start for q in queries],
        "days_from": [first for first, _ in days],
        "days_to": [last for _, last in days],
        "ends": [q.end for q in queries],
        "aggregations": [q.aggregation for q in queries],
    }
    rows = (await conn.execute(sa.text(_BUCKET_TOTALS_SQL), params)).all()
    return [(row.v, row.n or 0) for row in rows]


# -- a metric's event values, paged ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventValue:
    timestamp: datetime
    event_id: str
    project_id: str
    value: Decimal


async def event_values(
    conn: AsyncConnection,
    *,
    organisation_id: str,
    code: str,
    filters: Mapping[str, Sequence[str]],
    start: datetime,
    end: datetime,
    after: tuple[datetime, str, str] | None,
    limit: int,
) -> list[EventValue]:
    """Up to ``limit`` events of the code in [start, end) matching every filter, ordered by (timestamp, event_id,
    project_id), after the given position. FAILED_PRECONDITION when the range reaches into an archived month."""
    await _refuse_archived(conn, [(start, end)])
    params: dict[str, object] = {
        "organisation_id": organisation_id, "code": code, "start": start, "end": end, "limit": limit,
    }
    conditions = [
        "organisation_id = :organisation_id",
        "metric = :code",
        "timestamp >= :start",
        "timestamp < :end",
        *_filter_conditions(filters, params),
    ]
    if after is not None:
        params["after_time"], params["after_event"], params["after_project"] = after
        # The plain bound lets the timestamp index skip what earlier pages read; the row comparison is exact.
        conditions.append("timestamp >= :after_time")
        conditions.append("(timestamp, event_id, project_id) > (:after_time, :after_event, :after_project)")
    sql = f"""
        SELECT timestamp, event_id, project_id, value FROM metering.events
        WHERE {" AND ".join(conditions)}
        ORDER BY timestamp, event_id, project_id
        LIMIT :limit
    """
    rows = (await conn.execute(sa.text(sql), params)).all()
    return [EventValue(row.timestamp, row.event_id, row.project_id, row.value) for row in rows]
