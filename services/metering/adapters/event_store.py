"""Storing event batches: the consumer's one SQL statement per transaction.

Events are inserted with ``ON CONFLICT (project_id, event_id) DO NOTHING``; only the rows actually inserted
(RETURNING) are folded into the 15-minute usage buckets and the UTC-day usage, in the same statement and so the
same transaction.
A batch stored twice therefore changes nothing the second time: that is what makes redelivery harmless.

It runs on the raw asyncpg connection under SQLAlchemy's pool: one prepared statement, six array parameters
and the dimensions as one JSON array (the events' JSON objects joined), no per-row work in Python.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.metering.domain.alert_evaluation import NewEvent
from services.metering.domain.event_batch import EventColumns

# How a row of new aggregates (EXCLUDED) is folded into a stored one (alias s): count and sum add up, min and max
# widen, and the latest is the greater (time, event id) of the two.
_FOLD = """
        event_count = s.event_count + EXCLUDED.event_count,
        value_sum = s.value_sum + EXCLUDED.value_sum,
        value_min = LEAST(s.value_min, EXCLUDED.value_min),
        value_max = GREATEST(s.value_max, EXCLUDED.value_max),
        first_time = LEAST(s.first_time, EXCLUDED.first_time),
        latest_time = CASE
            WHEN (EXCLUDED.latest_time, EXCLUDED.latest_event_id) > (s.latest_time, s.latest_event_id)
            THEN EXCLUDED.latest_time ELSE s.latest_time END,
        latest_event_id = CASE
            WHEN (EXCLUDED.latest_time, EXCLUDED.latest_event_id) > (s.latest_time, s.latest_event_id)
            THEN EXCLUDED.latest_event_id ELSE s.latest_event_id END,
        latest_value = CASE
            WHEN (EXCLUDED.latest_time, EXCLUDED.latest_event_id) > (s.latest_time, s.latest_event_id)
            THEN EXCLUDED.latest_value ELSE s.latest_value END"""

# Buckets are 15 minutes and days 24 hours on the UTC grid anchored at 2000-01-01 (any quarter hour, any midnight
# would do). The days are folded from the new buckets' aggregates (a few rows per statement), not from the events.
_STORE_EVENTS = f"""
WITH inserted AS (
    INSERT INTO metering.events AS e (organisation_id, project_id, event_id, metric, value, timestamp, dimensions)
    SELECT o, p, id, m, v::numeric, TIMESTAMPTZ 'epoch' + us * INTERVAL '1 microsecond', NULLIF(d, 'null')
    FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
        ARRAY(SELECT d FROM jsonb_array_elements($7::jsonb) WITH ORDINALITY AS j(d, n) ORDER BY n)
    ) AS t(o, p, id, m, v, us, d)
    ON CONFLICT (project_id, event_id) DO NOTHING
    RETURNING e.organisation_id, e.project_id, e.metric, e.event_id, e.value, e.timestamp,{{returning}}
        date_bin('15 minutes', e.timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket_start
), totals AS (
    SELECT organisation_id, metric, bucket_start, project_id, count(*) AS event_count, sum(value) AS value_sum,
        min(value) AS value_min, max(value) AS value_max, min(timestamp) AS first_time
    FROM inserted
    GROUP BY organisation_id, metric, bucket_start, project_id
), latest AS (
    SELECT DISTINCT ON (organisation_id, metric, bucket_start, project_id)
        organisation_id, metric, bucket_start, project_id, timestamp, event_id, value
    FROM inserted
    ORDER BY organisation_id, metric, bucket_start, project_id, timestamp DESC, event_id DESC
), buckets AS (
    SELECT t.organisation_id, t.metric, t.bucket_start, t.project_id, t.event_count, t.value_sum, t.value_min,
        t.value_max, t.first_time, l.timestamp AS latest_time, l.event_id AS latest_event_id, l.value AS latest_value,
        date_bin('1 day', t.bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day_start
    FROM totals t JOIN latest l USING (organisation_id, metric, bucket_start, project_id)
), folded AS (
    INSERT INTO metering.usage_buckets AS s
    SELECT organisation_id, metric, bucket_start, project_id, event_count, value_sum, value_min, value_max,
        first_time, latest_time, latest_event_id, latest_value
    FROM buckets
    -- Rows are locked in key order, so concurrent consumers wait for each other but never deadlock.
    ORDER BY organisation_id, metric, bucket_start, project_id
    ON CONFLICT (organisation_id, metric, bucket_start, project_id) DO UPDATE SET{_FOLD}
), days AS (
    -- One sort serves all: the window sums each day's buckets, and DISTINCT ON keeps the day's row of its latest
    -- bucket (a join of per-day totals with per-day latest was planned as a nested loop: 4 ms per statement).
    INSERT INTO metering.usage_days AS s
    SELECT DISTINCT ON (organisation_id, metric, day_start, project_id)
        organisation_id, metric, day_start, project_id, sum(event_count) OVER day, sum(value_sum) OVER day,
        min(value_min) OVER day, max(value_max) OVER day, min(first_time) OVER day, latest_time, latest_event_id,
        latest_value
    FROM buckets
    WINDOW day AS (PARTITION BY organisation_id, metric, day_start, project_id)
    -- Key order again. Every transaction runs this one statement, whose two upserts run one after the other in
    -- the same order each time, so all lock the two tables in the same order too: still no deadlock.
    ORDER BY organisation_id, metric, day_start, project_id, latest_time DESC, latest_event_id DESC
    ON CONFLICT (organisation_id, metric, day_start, project_id) DO UPDATE SET{_FOLD}
)
{{result}}
"""

STORE_EVENTS = _STORE_EVENTS.replace("{returning}", "").replace("{result}", "SELECT count(*) FROM inserted")

# The same statement for a chunk holding events of (organisation, metric) pairs that alert rules watch: it also
# returns those pairs' newly inserted events (with their dimensions, for the metrics' filters), so the threshold
# check in the same transaction sees exactly what this transaction added. The count comes on every row, and on
# a row of its own (all NULL otherwise) when no watched event was new. Chunks without watched pairs keep the
# statement above, unchanged.
STORE_EVENTS_RETURNING_WATCHED = _STORE_EVENTS.replace("{returning}", " e.dimensions,").replace(
    "{result}",
    """SELECT c.n, w.organisation_id, w.project_id, w.metric, w.event_id, w.value, w.timestamp, w.dimensions
FROM (SELECT count(*) AS n FROM inserted) c
LEFT JOIN LATERAL (
    SELECT i.* FROM inserted i JOIN unnest($8::text[], $9::text[]) AS p(o, m) ON i.organisation_id = p.o
        AND i.metric = p.m
) w ON true""",
)


class EventStore:
    """Stores event batches, each call one transaction. Returns how many events were new."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def store(self, columns: EventColumns) -> int:
        """Insert the events and fold the new ones into usage buckets, in one transaction; returns the number
        of events that were not stored before. Raises the driver's errors (the consumer classifies them)."""
        if not len(columns):
            return 0
        async with self._engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            async with raw.transaction():
                return await raw.fetchval(
                    STORE_EVENTS,
                    columns.organisation_ids,
                    columns.project_ids,
                    columns.event_ids,
                    columns.metrics,
                    columns.values,
                    columns.timestamps_us,
                    # One JSON array for the transaction: the events' objects joined, no Python per event.
                    "[" + ",".join(columns.dimensions) + "]",
                )


class TransactionEventStore:
    """Stores events inside a unit of work's transaction (the alert path: the threshold check runs in the same
    transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def store_returning_watched(
        self, columns: EventColumns, pairs: Iterable[tuple[str, str]]
    ) -> tuple[int, dict[tuple[str, str], list[NewEvent]]]:
        """Store the events like ``EventStore.store``, in the open transaction; returns the number of new events
        and the new events of the watched (organisation, metric) pairs, per pair."""
        return await _store_returning_watched(self._conn, columns, pairs)


async def _store_returning_watched(
    conn: AsyncConnection, columns: EventColumns, pairs: Iterable[tuple[str, str]]
) -> tuple[int, dict[tuple[str, str], list[NewEvent]]]:
    watched = sorted(set(pairs))
    rows = (
        await conn.exec_driver_sql(
            STORE_EVENTS_RETURNING_WATCHED,
            (
                columns.organisation_ids,
                columns.project_ids,
                columns.event_ids,
                columns.metrics,
                columns.values,
                columns.timestamps_us,
                "[" + ",".join(columns.dimensions) + "]",
                [o for o, _ in watched],
                [m for _, m in watched],
            ),
        )
    ).all()
    new: dict[tuple[str, str], list[NewEvent]] = {}
    for row in rows:
        if row.event_id is None:
            continue
        new.setdefault((row.organisation_id, row.metric), []).append(
            NewEvent(row.project_id, row.event_id, row.timestamp, row.value, row.dimensions)
        )
    return (rows[0].n if rows else 0), new
