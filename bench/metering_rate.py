"""Metering's rate into aggregates with deduplication, and the bare limit it is compared with.

Metering: while metering is stopped, the ingest phases leave a backlog in JetStream (with duplicates). Metering
is started, and ``QueryUsage`` (a count metric) is polled until it shows every distinct event; the rate is the
rows stored between the first and the last poll that saw progress, over that time, so start-up is not counted.

Bare: the same rows inserted with asyncpg into a scratch table with metering's columns and primary key, in a
scratch database on the same server, as batched ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING``
statements of the same size as metering's transactions: no JetStream, no aggregates, no acks. And, to tell
where metering's time goes, metering's own statement (with the aggregate fold) run bare the same way.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateSchema, CreateTable

from bench.stack import COUNT_METRIC, Stack
from bench.workload import METRIC, Workload
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime import database, migrations
from billing_runtime.timestamps import to_timestamp
from services.metering.__main__ import DEFINITION as METERING
from services.metering.adapters.event_store import EventStore
from services.metering.adapters.tables import events as metering_events
from services.metering.config import MeteringSettings
from services.metering.domain.event_batch import EventColumns

# Metering's default events per transaction (METERING_CONSUMER_MAX_EVENTS_PER_TRANSACTION), read from its settings
# so the bare insert keeps using the same statement size.
ROWS_PER_STATEMENT: int = MeteringSettings.model_fields["consumer_max_events_per_transaction"].default


@dataclass(frozen=True)
class Rate:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def usage_request(stack: Stack, metric: str) -> metering_pb2.QueryUsageRequest:
    assert stack.tenant is not None
    # Whole hours: the range is then made of metering's 15-minute buckets only, with no partial bucket at an
    # edge to recompute from the stored events (a dashboard asks for whole days or hours, too).
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return metering_pb2.QueryUsageRequest(
        organisation_id=stack.tenant.organisation_id,
        project_id=stack.tenant.project_id,
        metric_code=metric,
        start_time=to_timestamp(now - timedelta(days=1)),
        end_time=to_timestamp(now + timedelta(days=1)),
        window=metering_pb2.USAGE_WINDOW_WHOLE,
    )


async def counted(stub: metering_pb2_grpc.MeteringServiceStub, request: metering_pb2.QueryUsageRequest) -> int:
    reply = await stub.QueryUsage(request, timeout=5.0)
    return sum(row.event_count for row in reply.rows)


async def drain_rate(
    stack: Stack, expected: int, say: Callable[[str], None], start_metering: Callable[[], None] | None
) -> Rate:
    """Start metering (if given how) and time it through the backlog until ``expected`` events are counted."""
    request = usage_request(stack, COUNT_METRIC)
    async with grpc.aio.insecure_channel(stack.metering_address) as channel:
        stub = metering_pb2_grpc.MeteringServiceStub(channel)
        starting = asyncio.create_task(asyncio.to_thread(start_metering)) if start_metering else None
        first: tuple[float, int] | None = None
        last_report = time.perf_counter()
        deadline = time.perf_counter() + 600
        count = 0
        while count < expected:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"metering counted {count} of {expected} events after 10 minutes")
            try:
                count = await counted(stub, request)
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                    raise
                count = 0  # still starting
            now = time.perf_counter()
            if count and first is None:
                first = (now, count)
            if now - last_report > 2:
                say(f"  metering: {count:,} of {expected:,} events counted")
                last_report = now
            await asyncio.sleep(0.05)
        if starting is not None:
            await starting
    assert first is not None
    if count > expected:
        raise RuntimeError(f"metering counted {count} events, more than the {expected} distinct ones sent")
    return Rate(expected - first[1], time.perf_counter() - first[0])


async def checkpoint(server_url: str) -> None:
    """Write out dirty pages now, so a measurement does not pay for the writes of the one before it."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def bare_insert(server_url: str, workload: Workload, organisation_id: str, project_id: str) -> Rate:
    """The same rows into a scratch copy of metering's events table (columns and primary key), in batched
    ``INSERT ... ON CONFLICT DO NOTHING`` statements; returns rows stored per second."""
    async with scratch_database(server_url) as conn:
        scratch = metering_events.to_metadata(sa.MetaData(), schema="bench")
        await conn.execute(str(CreateSchema("bench").compile(dialect=_DIALECT)))
        await conn.execute(str(CreateTable(scratch).compile(dialect=_DIALECT)))
        statement = await conn.prepare(BARE_INSERT)
        started = time.perf_counter()
        for chunk in _chunks(workload, organisation_id, project_id):
            await statement.fetch(*chunk)
        seconds = time.perf_counter() - started
        return Rate(await conn.fetchval("SELECT count(*) FROM bench.events"), seconds)


async def metering_statement(server_url: str, workload: Workload, organisation_id: str, project_id: str) -> Rate:
    """Metering's own store (its statement: insert, dedup and fold into usage buckets) on the same rows, one
    transaction per chunk, in a scratch database migrated like metering's: no JetStream, decoding or acks."""
    name = f"bench_scratch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    engine = None
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        engine = database.create_engine(url, application_name="bench")
        await migrations.migrate(engine, METERING.migrations_dir, METERING.schema)
        store = EventStore(engine)
        chunks = [
            EventColumns(
                organisation_ids=o, project_ids=p, event_ids=ids, metrics=m, values=v, timestamps_us=us,
                dimensions=[  # the consumer's form: each event's dimensions as JSON text, "null" for none
                    json.dumps(d, separators=(",", ":")) if d else "null"
                    for d in workload.dimension_maps[start : start + len(ids)]
                ],
            )
            for start, (o, p, ids, m, v, us, _) in zip(
                range(0, workload.events, ROWS_PER_STATEMENT), _chunks(workload, organisation_id, project_id),
                strict=True,
            )
        ]
        started = time.perf_counter()
        stored = 0
        for columns in chunks:
            stored += await store.store(columns)
        return Rate(stored, time.perf_counter() - started)
    finally:
        if engine is not None:
            await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


BARE_INSERT = """
INSERT INTO bench.events (organisation_id, project_id, event_id, metric, value, timestamp, dimensions)
SELECT o, p, id, m, v::numeric, TIMESTAMPTZ 'epoch' + us * INTERVAL '1 microsecond', d
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::jsonb[])
    AS t(o, p, id, m, v, us, d)
ON CONFLICT (project_id, event_id) DO NOTHING
"""
_DIALECT = postgresql.dialect()


@asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new database on the same server, dropped afterwards."""
    name = f"bench_scratch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(make_url(server_url).set(database=name).render_as_string(hide_password=False))
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _chunks(workload: Workload, organisation_id: str, project_id: str) -> list[tuple[list, ...]]:
    """The rows as metering's statement takes them, in chunks of metering's transaction size."""
    chunks = []
    for start in range(0, workload.events, ROWS_PER_STATEMENT):
        end = min(start + ROWS_PER_STATEMENT, workload.events)
        size = end - start
        chunks.append(
            (
                [organisation_id] * size,
                [project_id] * size,
                workload.event_ids[start:end],
                [METRIC] * size,
                workload.values[start:end],
                workload.timestamps_us[start:end],
                workload.dimensions[start:end],
            )
        )
    return chunks
