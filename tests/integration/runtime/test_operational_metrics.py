"""What the runtime counts for operators: redeliveries by durable consumer, outbox events recorded by
subject once their transaction committed, and migrations that failed by schema."""

from __future__ import annotations

import asyncio
import secrets

import nats
import sqlalchemy as sa
from google.protobuf import wrappers_pb2
from prometheus_client import REGISTRY

from billing_runtime.consumer import DurableConsumer
from billing_runtime.database import UnitOfWork, create_engine
from billing_runtime.outbox import Outbox, outbox_table


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_message_handled_on_its_second_delivery_counts_one_redelivery(nats_url):
    token = secrets.token_hex(4)
    stream, subject, durable = f"REDELIVER_{token.upper()}", f"redeliver.{token}", f"redeliver-{token}"
    client = await nats.connect(nats_url)
    attempts: list[int] = []
    done = asyncio.Event()

    async def handle(msg) -> None:
        attempts.append(msg.metadata.num_delivered)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt fails")
        done.set()

    consuming = None
    try:
        js = client.jetstream()
        await js.add_stream(name=stream, subjects=[subject])
        await js.publish(subject, b"x")
        consumer = DurableConsumer(js, stream=stream, durable=durable, subjects=[subject], handle=handle,
                                   fetch_wait_seconds=0.2)
        consuming = asyncio.create_task(consumer.run())
        await asyncio.wait_for(done.wait(), timeout=20)
    finally:
        if consuming is not None:
            consuming.cancel()
            await asyncio.gather(consuming, return_exceptions=True)
        await client.close()
    assert attempts == [1, 2]
    assert sample("billing_consumer_redeliveries_total", durable=durable) == 1
    assert sample("billing_consumer_messages_total", durable=durable, outcome="retry") == 1
    assert sample("billing_consumer_messages_total", durable=durable, outcome="handled") == 1


async def test_a_consumers_backlog_is_sampled_for_the_lag_alert(nats_url):
    token = secrets.token_hex(4)
    stream, subject, durable = f"BACKLOG_{token.upper()}", f"backlog.{token}", f"backlog-{token}"
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name=stream, subjects=[subject])
        for _ in range(3):
            await js.publish(subject, b"x")

        async def never(msg) -> None:
            raise AssertionError("nothing is consumed here")

        consumer = DurableConsumer(js, stream=stream, durable=durable, subjects=[subject], handle=never)
        await js.add_consumer(stream, config=consumer.config())
        reporting = asyncio.create_task(consumer._report_backlog())
        try:
            for _ in range(200):  # the first sample is taken at once
                if sample("billing_consumer_backlog_messages", durable=durable, state="pending") == 3:
                    break
                await asyncio.sleep(0.05)
            assert sample("billing_consumer_backlog_messages", durable=durable, state="pending") == 3
        finally:
            reporting.cancel()
            await asyncio.gather(reporting, return_exceptions=True)
        assert sample("billing_consumer_backlog_messages", durable=durable, state="unacknowledged") == 0
    finally:
        await client.close()


async def test_outbox_events_are_counted_by_subject_once_committed(database_url):
    token = secrets.token_hex(4)
    schema, subject = f"counted_{token}", f"counted.{token}"
    engine = create_engine(database_url, application_name="outbox-metrics-test")
    table = outbox_table(sa.MetaData(schema=schema))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(table.metadata.create_all)
        outbox = Outbox(table)
        events = [(f"evt_{token}_{i}", wrappers_pb2.StringValue(value=str(i))) for i in range(3)]
        try:
            async with UnitOfWork(engine) as uow:
                await outbox.record_many(uow, subject, events[:2])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert sample("billing_outbox_events_recorded_total", subject=subject) == 0
        async with UnitOfWork(engine) as uow:
            await outbox.record_many(uow, subject, events)
        assert sample("billing_outbox_events_recorded_total", subject=subject) == 3
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


async def test_a_failing_migration_is_counted_for_its_schema_and_a_database_not_up_is_not(
    database_url, refused_address, tmp_path
):
    from billing_runtime import migrations

    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(
        "from sqlalchemy import MetaData\n"
        "from billing_runtime.migrations import run_alembic_env\n"
        "run_alembic_env(MetaData())\n"
    )
    (tmp_path / "versions" / "0001_broken.py").write_text(
        "from alembic import op\n"
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n    op.execute('SELECT * FROM no_such_table_anywhere')\n"
    )
    schema = f"broken_{secrets.token_hex(4)}"
    engine = create_engine(database_url, application_name="migration-metrics-test")
    down = create_engine(f"postgresql://nobody@{refused_address}/none", application_name="migration-metrics-test")
    try:
        try:
            await migrations.migrate(engine, tmp_path, schema)
            raise AssertionError("the broken migration must fail")
        except sa.exc.ProgrammingError:
            pass
        assert sample("billing_migration_failures_total", schema=schema) == 1
        try:
            await migrations.migrate(down, tmp_path, schema)
            raise AssertionError("no database there")
        except OSError:
            pass
        assert sample("billing_migration_failures_total", schema=schema) == 1, "not up yet is not a failure"
    finally:
        await engine.dispose()
        await down.dispose()
