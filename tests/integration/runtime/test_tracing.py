"""Trace context across NATS in the shared runtime: an outbox row keeps the trace of the transaction that wrote
it, the relay's publish continues that trace, and a DurableConsumer handles each message in a span of the same
trace, inside which whatever the handler does (a call, another event) continues it."""

from __future__ import annotations

import asyncio
import secrets

import nats
import sqlalchemy as sa
from google.protobuf import wrappers_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from billing_runtime.consumer import DurableConsumer
from billing_runtime.database import UnitOfWork, create_engine
from billing_runtime.outbox import Outbox, OutboxRelay, outbox_table
from tests.conftest import FINISHED_SPANS


async def test_outbox_relay_and_durable_consumer_continue_the_writers_trace(database_url, nats_url):
    token = secrets.token_hex(4)
    schema, stream, subject = f"trace_{token}", f"TRACE_{token.upper()}", f"trace.{token}.happened"
    engine = create_engine(database_url, application_name="trace-test")
    table = outbox_table(sa.MetaData(schema=schema))
    client = await nats.connect(nats_url)
    consuming: asyncio.Task | None = None
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(table.metadata.create_all)
        js = client.jetstream()
        await js.add_stream(name=stream, subjects=[f"trace.{token}.>"])
        FINISHED_SPANS.clear()

        tracer = trace.get_tracer("tests")
        with tracer.start_as_current_span("the request", kind=SpanKind.SERVER) as request:
            async with UnitOfWork(engine) as uow:
                await Outbox(table).record(uow, subject, f"evt_{token}", wrappers_pb2.StringValue(value="hello"))
        # The relay runs later, in its own task and outside any span: the row alone carries the trace.
        assert await asyncio.create_task(OutboxRelay(engine, js, table).publish_pending()) == 1

        seen: list[trace.SpanContext] = []
        handled = asyncio.Event()

        async def handle(msg) -> None:
            seen.append(trace.get_current_span().get_span_context())
            handled.set()

        consumer = DurableConsumer(js, stream=stream, durable=f"trace-{token}", subjects=[subject], handle=handle,
                                   fetch_wait_seconds=0.2)
        consuming = asyncio.create_task(consumer.run())
        await asyncio.wait_for(handled.wait(), timeout=20)
    finally:
        if consuming is not None:
            consuming.cancel()
            # Bounded: a consumer that ignored its cancellation must fail this test, not hang the suite.
            await asyncio.wait_for(asyncio.gather(consuming, return_exceptions=True), timeout=10)
        await client.close()
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()

    trace_id = request.get_span_context().trace_id
    spans = [s for s in FINISHED_SPANS.get_finished_spans() if s.context.trace_id == trace_id]
    publish = next(s for s in spans if s.kind == SpanKind.PRODUCER and s.name == f"{subject} publish")
    assert publish.parent is not None and publish.parent.span_id == request.get_span_context().span_id
    process = next(s for s in spans if s.kind == SpanKind.CONSUMER and s.name == f"trace-{token} process")
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert process.attributes["messaging.message.delivery_count"] == 1
    (inside,) = seen
    assert inside.span_id == process.context.span_id, "the handler runs inside the message's span"
