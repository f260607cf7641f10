"""Metering's rate into aggregates with deduplication, and the bare limit it is compared with.

Metering: while metering is stopped, the ingest phases leave a backlog in JetStream (with duplicates). Metering
is started, and ``QueryUsage`` (a count metric) is polled until it shows every distinct event; the rate is the
rows stored between the first and the last poll that saw progress, over that time, so start-up is not counted.

Bare: the same rows inserted with asyncpg into a scratch table with metering's columns and primary key, in a
scratch database on the same server, as batched ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING``
statements of the same size as metering's transactions: no JetStream, no aggregates, no acks.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
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
from billing_runtime.timestamps import to_timestamp
from services.metering.adapters.tables import events as metering_events

# Metering's default events per transaction (METERING_CONSUMER_MAX_EVENTS_PER_TRANSACTION).
ROWS_PER_STATEMENT = 10_000


@dataclass(frozen=True)
class Rate:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def usage_request(stack: Stack, metric: str) -> metering_pb2.QueryUsageRequest:
    assert stack.tenant is not None
    now = datetime.now(UTC)
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


async def bare_insert(server_url: str, workload: Workload, organisation_id: str, project_id: str) -> Rate:
    """The same rows into a scratch copy of metering's events table, in a scratch database; returns stored/s."""
    name = f"bench_scratch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(make_url(server_url).set(database=name).render_as_string(hide_password=False))
        try:
            return await _insert_all(conn, workload, organisation_id, project_id)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _insert_all(conn: asyncpg.Connection, workload: Workload, organisation_id: str, project_id: str) -> Rate:
    scratch = metering_events.to_metadata(sa.MetaData(), schema="bench")  # same columns and primary key
    dialect = postgresql.dialect()
    await conn.execute(str(CreateSchema("bench").compile(dialect=dialect)))
    await conn.execute(str(CreateTable(scratch).compile(dialect=dialect)))
    statement = await conn.prepare(
        """
        INSERT INTO bench.events (organisation_id, project_id, event_id, metric, value, timestamp, dimensions)
        SELECT o, p, id, m, v::numeric, TIMESTAMPTZ 'epoch' + us * INTERVAL '1 microsecond', d
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::jsonb[])
            AS t(o, p, id, m, v, us, d)
        ON CONFLICT (project_id, event_id) DO NOTHING
        """
    )
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
    started = time.perf_counter()
    for chunk in chunks:
        await statement.fetch(*chunk)
    seconds = time.perf_counter() - started
    stored = await conn.fetchval("SELECT count(*) FROM bench.events")
    return Rate(stored, seconds)
