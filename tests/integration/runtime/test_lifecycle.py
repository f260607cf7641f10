"""The shared service lifecycle: health that tells the truth, reflection, migrations, the outbox."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import nats
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import database, migrations
from billing_runtime.messaging import stream_name
from billing_runtime.outbox import OutboxRelay
from billing_runtime.service import Runtime, Wiring, build_runtime
from devstack.nats import LocalNats
from devstack.ports import port_is_free
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.ingest.config import IngestSettings
from services.invoicing.__main__ import DEFINITION as INVOICING
from services.invoicing.adapters.tables import outbox
from services.metering.__main__ import DEFINITION as METERING
from services.payments.__main__ import DEFINITION as PAYMENTS
from services.payments.config import PaymentsSettings
from tests.conftest import create_database, drop_database, mesh_channel, running_service
from tests.integration.helpers import expect_rpc_error, organisation_request

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_of(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return reply.status


async def wait_for_health(address: str, expected: int, timeout: float = 10.0) -> float:
    """Seconds until health equals ``expected``; fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        if await health_of(address) == expected:
            return loop.time() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"health never became {expected} within {timeout}s")


async def test_serving_service_lists_its_services_by_reflection(invoicing):
    assert await health_of(invoicing.address) == SERVING
    assert await health_of(invoicing.address, "billing.invoicing.v1.InvoicingService") == SERVING
    async with mesh_channel(invoicing.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = set()
        async for response in responses:
            names |= {service.name for service in response.list_services_response.service}
            break
    assert {"billing.invoicing.v1.InvoicingService", "grpc.health.v1.Health"} <= names


async def test_not_serving_and_unavailable_until_the_database_answers(nats_url, refused_address):
    dead_database = f"postgresql://postgres@{refused_address}/nowhere"
    settings = INVOICING.settings_cls(
        database_url=dead_database, nats_url=nats_url, grpc_port=0, metering_address=refused_address
    )
    runtime = build_runtime(INVOICING, settings)
    starting = asyncio.create_task(runtime.start())
    try:
        for _ in range(50):
            if runtime.port:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert await health_of(runtime.address) == NOT_SERVING
        async with mesh_channel(runtime.address) as channel:
            stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
            await expect_rpc_error(
                stub.ListOrganisations(invoicing_pb2.ListOrganisationsRequest()), grpc.StatusCode.UNAVAILABLE
            )
        assert not starting.done(), "start() must keep waiting for the database, not give up"
    finally:
        await runtime.stop()
        await asyncio.gather(starting, return_exceptions=True)


async def test_health_follows_nats_going_away_and_coming_back(database_url, tmp_path, refused_address):
    local_nats = LocalNats(tmp_path / "nats", port=0, monitor_port=None, say=lambda _: None).start()
    try:
        async with running_service(
            METERING, database_url, local_nats.url, invoicing_address=refused_address
        ) as metering:
            assert await health_of(metering.address) == SERVING
            port = local_nats.port
            local_nats.stop()
            assert await wait_for_health(metering.address, NOT_SERVING) < 5
            for _ in range(100):  # the old server's socket may linger a moment after it exits
                if port_is_free(port):
                    break
                await asyncio.sleep(0.05)
            local_nats = LocalNats(tmp_path / "nats", port=port, monitor_port=None, say=lambda _: None).start()
            assert local_nats.port == port
            assert await wait_for_health(metering.address, SERVING, timeout=15) < 15
    finally:
        local_nats.stop()


async def test_migrations_are_idempotent_and_safe_to_run_concurrently(infrastructure):
    url = await create_database(infrastructure.server_url, prefix="billing_migrate")
    engine = database.create_engine(url, application_name="test")
    try:
        revisions = await asyncio.gather(
            *(migrations.migrate(engine, INVOICING.migrations_dir, INVOICING.schema) for _ in range(3))
        )
        head = max(path.name.split("_")[0] for path in (INVOICING.migrations_dir / "versions").glob("0*.py"))
        assert revisions == [head] * 3
        assert await migrations.migrate(engine, INVOICING.migrations_dir, INVOICING.schema) == head
        async with engine.connect() as conn:
            tables = set(
                (
                    await conn.execute(
                        sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'invoicing'")
                    )
                ).scalars()
            )
        assert {"organisations", "outbox", "alembic_version"} <= tables
    finally:
        await engine.dispose()
        await drop_database(infrastructure.server_url, url)


async def test_republishing_an_outbox_row_does_not_duplicate_the_event(invoicing, invoicing_stub, nats_url):
    created = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for _ in range(50):  # the relay publishes right after commit
            async with invoicing.engine.connect() as conn:
                pending = (
                    await conn.execute(
                        sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                    )
                ).scalar_one()
            if pending == 0:
                break
            await asyncio.sleep(0.05)
        before = (await js.stream_info(stream_name("invoicing"))).state.messages
        # Simulate a crash between publish and mark: the row is unpublished again and relayed a second time.
        async with invoicing.engine.begin() as conn:
            await conn.execute(
                sa.update(outbox)
                .values(published_at=None)
                .where(outbox.c.id == sa.select(sa.func.max(outbox.c.id)).scalar_subquery())
            )
        relay = OutboxRelay(invoicing.engine, js, outbox)
        assert await relay.publish_pending() == 1
        after = (await js.stream_info(stream_name("invoicing"))).state.messages
        assert after == before, "JetStream must drop the re-published event by its Nats-Msg-Id"
        assert created.id
    finally:
        await client.close()


async def test_relay_prunes_only_events_published_long_ago(invoicing, nats_url):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    async with invoicing.engine.begin() as conn:
        await conn.execute(
            sa.insert(outbox),
            [
                {
                    "event_id": "evt_old_published",
                    "subject": "s",
                    "payload": b"",
                    "published_at": now - timedelta(days=8),
                },
                {"event_id": "evt_new_published", "subject": "s", "payload": b"", "published_at": now},
            ],
        )
    client = await nats.connect(nats_url)
    try:
        relay = OutboxRelay(invoicing.engine, client.jetstream(), outbox)
        assert await relay.prune() == 1
        assert await relay.prune(older_than=timedelta(days=7)) == 0
    finally:
        await client.close()
    async with invoicing.engine.connect() as conn:
        kept = set((await conn.execute(sa.select(outbox.c.event_id))).scalars())
    assert "evt_old_published" not in kept and "evt_new_published" in kept


async def test_register_gets_its_typed_settings_and_on_ready_runs_once_dependencies_are_up(database_url, nats_url):
    seen: list[str] = []

    def register(runtime: Runtime, settings: PaymentsSettings) -> Wiring:
        seen.append(f"register {type(settings).__name__} {settings.health_check_interval_seconds}")

        async def on_ready() -> None:
            # A closure over what register had: no lookup on the runtime, and dependencies are up by now.
            seen.append(f"on_ready nats={runtime.nats is not None and runtime.nats.is_connected} "
                        f"health={await health_of(runtime.address)}")

        return Wiring(["grpc.health.v1.Health"], on_ready=on_ready)

    definition = dataclasses.replace(PAYMENTS, register=register)
    async with running_service(definition, database_url, nats_url) as runtime:
        assert seen == ["register PaymentsSettings 0.2", f"on_ready nats=True health={NOT_SERVING}"]
        assert await health_of(runtime.address) == SERVING


def test_a_runtime_refuses_settings_of_another_service(database_url):
    with pytest.raises(TypeError, match="payments needs PaymentsSettings, not IngestSettings"):
        build_runtime(PAYMENTS, IngestSettings(database_url=database_url))


async def test_tests_must_choose_every_peer_address(database_url, nats_url):
    # The defaults are the ports of a developer's `make run`: a test that inherited one could talk to it.
    with pytest.raises(TypeError, match="needs explicit invoicing_address"):
        async with running_service(METERING, database_url, nats_url):
            pass
    with pytest.raises(TypeError, match="http_port, ingest_address, metering_address, invoicing_address, "
                                        "payments_address, notification_address"):
        async with running_service(GATEWAY, database_url, nats_url, admin_token="x" * 16):
            pass
