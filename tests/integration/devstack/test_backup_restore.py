"""The restore drill of docs/operations.md, on real services: bill usage, back up every service's schema while the
services run, wipe the schemas, restore them, and read the same totals and invoices back through the services'
APIs; then replay the ingest stream to recover the events accepted after the backup.

The services here have a database and a NATS of their own: on the session's NATS this metering would share the
``metering-events`` durable consumer with the integration tests' metering.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2_grpc
from billing_runtime import database, messaging, migrations
from devstack import backup
from devstack.errors import DevstackError
from devstack.nats import LocalNats
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.ingest.__main__ import DEFINITION as INGEST
from services.invoicing.__main__ import DEFINITION as INVOICING
from services.metering.__main__ import DEFINITION as METERING
from services.notification.__main__ import DEFINITION as NOTIFICATION
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import Infrastructure, create_database, drop_database, mesh_channel, running_service
from tests.integration.invoicing.conftest import (
    create_organisation,
    create_plan,
    invoices_of,
    record_usage,
    run_to_completion,
    subscribe,
    terms,
)
from tests.integration.metering.conftest import E, batch, eventually, publish, whole_usage

SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
OCT_START_IST = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)  # 1 October 00:00 in Asia/Kolkata
NOV_START_IST = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
PLAN = dict(
    currency="INR",
    base_fee="999",
    charges=[
        {"metric_code": "api_calls", "display_name": "API calls",
         "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.05"}},
        {"metric_code": "llm_tokens", "display_name": "LLM tokens",
         "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.0004"}},
    ],
)
METRICS = ("api_calls", "llm_tokens")
ALL_SERVICES = (INGEST, METERING, INVOICING, PAYMENTS, NOTIFICATION, GATEWAY)


@pytest.fixture
async def isolated(infrastructure: Infrastructure, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(database URL, NATS URL) of a fresh database with every service's schema migrated, and a NATS of its own."""
    nats = LocalNats(tmp_path / "nats", port=0, monitor_port=None, say=lambda message: None).start()
    database_url = await create_database(infrastructure.server_url, prefix="billing_drill")
    try:
        for definition in ALL_SERVICES:
            engine = database.create_engine(database_url, application_name="drill-migrate")
            try:
                await migrations.migrate(engine, definition.migrations_dir, definition.schema)
            finally:
                await engine.dispose()
        connection = await messaging.connect(nats.url, name="drill")
        try:
            await messaging.ensure_stream(connection.jetstream(), "BILLING_INGEST", ["billing.ingest.v1.>"])
        finally:
            await connection.close()
        yield database_url, nats.url
    finally:
        await drop_database(infrastructure.server_url, database_url)
        nats.stop()


@asynccontextmanager
async def billing_services(database_url: str, nats_url: str) -> AsyncIterator[tuple]:
    """Invoicing and metering, as the integration tests run them; yields (invoicing runtime, invoicing stub,
    metering stub)."""
    with socket.socket() as probe, socket.socket() as refusing:
        probe.bind(("127.0.0.1", 0))
        metering_port = probe.getsockname()[1]
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: payments is not run here
        refused_address = f"127.0.0.1:{refusing.getsockname()[1]}"
    async with (
        running_service(INVOICING, database_url, nats_url, metering_address=f"127.0.0.1:{metering_port}",
                        scheduler_enabled=False, payments_address=refused_address) as invoicing,
        running_service(METERING, database_url, nats_url, invoicing_address=invoicing.address,
                        grpc_port=metering_port) as metering,
        mesh_channel(invoicing.address) as invoicing_channel,
        mesh_channel(metering.address) as metering_channel,
    ):
        yield (invoicing, invoicing_pb2_grpc.InvoicingServiceStub(invoicing_channel),
               metering_pb2_grpc.MeteringServiceStub(metering_channel))


async def observed(invoicing_stub, metering_stub, organisation_id: str) -> tuple[dict, list[pb.Invoice]]:
    """What an operator checks after a restore: October's usage totals (value, event count) per metric, and every
    invoice of the organisation in full (number, lines, taxes, totals, status)."""
    totals = {code: await whole_usage(metering_stub, organisation_id, code, OCT_START_IST, NOV_START_IST)
              for code in METRICS}
    return totals, await invoices_of(invoicing_stub, organisation_id)


async def schemas_present(database_url: str) -> set[str]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT nspname FROM pg_namespace")
    finally:
        await connection.close()
    return {row["nspname"] for row in rows} & set(backup.SERVICE_SCHEMAS)


async def test_the_restore_drill_gives_back_identical_totals_and_invoices(isolated, tmp_path: Path) -> None:
    database_url, nats_url = isolated
    project = f"prj_drill{secrets.token_hex(6)}"

    async with billing_services(database_url, nats_url) as (invoicing, invoicing_stub, metering_stub):
        organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
        plan = await create_plan(invoicing_stub, terms(**PLAN))
        await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
        await record_usage(
            invoicing.js, metering_stub, organisation_id,
            [("api_calls", "1200", datetime(2026, 10, 3, tzinfo=UTC)),
             ("api_calls", "34", datetime(2026, 10, 9, tzinfo=UTC)),
             ("llm_tokens", "250000", datetime(2026, 10, 20, tzinfo=UTC))],
            expect={"api_calls": (OCT_START_IST, NOV_START_IST, "1234"),
                    "llm_tokens": (OCT_START_IST, NOV_START_IST, "250000")},
        )
        run = await run_to_completion(invoicing_stub, "2026-10", organisation_id)
        assert (run.state, run.invoiced) == (pb.INVOICE_RUN_STATE_COMPLETED, 1), run
        at_backup = await observed(invoicing_stub, metering_stub, organisation_id)
        (invoice,) = at_backup[1]
        assert invoice.status == pb.INVOICE_STATUS_ISSUED and invoice.number
        # 999 + 1,234 x 0.05 + 250,000 x 0.0004 = 999 + 61.70 + 100, before GST
        assert invoice.subtotal_minor == 116070

        # An online backup: pg_dump reads one consistent snapshot while the services keep running.
        backup_started = datetime.now(UTC)
        manifest = await asyncio.to_thread(backup.dump, database_url, tmp_path / "backup")

        # Accepted after the backup: these live only in the ingest stream until the restore drill replays it.
        await publish(invoicing.js, batch(organisation_id, project, [
            E("evt-after-backup-1", "66", datetime(2026, 10, 25, tzinfo=UTC), metric="api_calls"),
            E("evt-after-backup-2", "1000", datetime(2026, 10, 26, tzinfo=UTC), metric="llm_tokens"),
        ]))
        before_wipe = await eventually(
            lambda: observed(invoicing_stub, metering_stub, organisation_id),
            lambda seen: seen[0]["api_calls"][0] == "1300" and seen[0]["llm_tokens"][0] == "251000",
        )

    assert [entry.schema for entry in manifest.schemas] == list(backup.SERVICE_SCHEMAS)
    assert all(entry.bytes > 0 and len(entry.sha256) == 64 and entry.revision for entry in manifest.schemas)
    assert backup.Manifest.read(tmp_path / "backup") == manifest

    # Wipe: every service schema dropped, as if the database had been lost.
    engine = database.create_engine(database_url, application_name="drill")
    try:
        async with engine.begin() as connection:
            for schema in backup.SERVICE_SCHEMAS:
                await connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()
    assert await schemas_present(database_url) == set()

    await asyncio.to_thread(backup.restore, database_url, tmp_path / "backup")
    assert await schemas_present(database_url) == set(backup.SERVICE_SCHEMAS)

    async with billing_services(database_url, nats_url) as (_, invoicing_stub, metering_stub):
        # The services reconnect to the restored schemas: exactly the state at the backup.
        assert await observed(invoicing_stub, metering_stub, organisation_id) == at_backup
        assert backup_started > datetime.now(UTC) - timedelta(minutes=5)

    # The ingest stream still holds what was accepted after the backup; the durable consumer's ack floor is past
    # it. With metering stopped, delete its durable consumer: metering recreates it from the stream's start and
    # its (project, event_id) key drops the events the restored tables already hold.
    connection = await messaging.connect(nats_url, name="drill")
    try:
        await connection.jetstream().delete_consumer("BILLING_INGEST", "metering-events")
    finally:
        await connection.close()
    async with billing_services(database_url, nats_url) as (_, invoicing_stub, metering_stub):
        replayed = await eventually(
            lambda: observed(invoicing_stub, metering_stub, organisation_id),
            lambda seen: seen[0]["api_calls"][0] == "1300",
        )
        assert replayed == before_wipe
        assert replayed[0] == {"api_calls": ("1300", 3), "llm_tokens": ("251000", 2)}
        assert replayed[1] == at_backup[1]  # the invoice was issued before the backup: restored as it was


async def test_a_damaged_backup_is_refused_and_a_failed_restore_changes_nothing(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    database_url = await create_database(infrastructure.server_url, prefix="billing_drill")
    role = f"drill_owner_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE ROLE "{role}"')
        await admin.execute('CREATE SCHEMA ingest; CREATE TABLE ingest.projects (id text PRIMARY KEY)')
        await admin.execute(f'ALTER TABLE ingest.projects OWNER TO "{role}"')
        await admin.execute("INSERT INTO ingest.projects VALUES ('prj_backed_up')")
        backup.dump(database_url, tmp_path / "backup", ["ingest"])
        with pytest.raises(DevstackError, match="not empty"):
            backup.dump(database_url, tmp_path / "backup", ["ingest"])

        # The table's owner no longer exists: the restore fails on its ALTER ... OWNER, after its DROP SCHEMA.
        await admin.execute("INSERT INTO ingest.projects VALUES ('prj_after_backup')")
        await admin.execute(f'ALTER TABLE ingest.projects OWNER TO "{await admin.fetchval("SELECT current_user")}"')
        await admin.execute(f'DROP ROLE "{role}"')
        with pytest.raises(DevstackError, match="rolled back"):
            backup.restore(database_url, tmp_path / "backup")
        rows = await admin.fetch("SELECT id FROM ingest.projects ORDER BY id")
        assert [row["id"] for row in rows] == ["prj_after_backup", "prj_backed_up"]

        # Without owners it restores, as onto a server without the original roles.
        backup.restore(database_url, tmp_path / "backup", no_owner=True)
        rows = await admin.fetch("SELECT id FROM ingest.projects ORDER BY id")
        assert [row["id"] for row in rows] == ["prj_backed_up"]

        dump_file = tmp_path / "backup" / "ingest.dump"
        damaged = bytearray(dump_file.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        dump_file.write_bytes(bytes(damaged))
        with pytest.raises(DevstackError, match="damaged"):
            backup.restore(database_url, tmp_path / "backup")
    finally:
        await admin.close()
        await drop_database(infrastructure.server_url, database_url)
        cleanup = await asyncpg.connect(infrastructure.server_url)
        try:
            await cleanup.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await cleanup.close()

