"""In-process services shared by the integration tests of one session."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from billing.ingest.v1 import ingest_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2_grpc
from billing_runtime.service import Runtime
from services.ingest.__main__ import DEFINITION as INGEST
from services.invoicing.__main__ import DEFINITION as INVOICING
from services.metering.__main__ import DEFINITION as METERING
from tests.conftest import mesh_channel, running_service


@pytest.fixture(scope="session")
def metering_port() -> int:
    """Metering's port, chosen before either starts: invoicing reads usage from metering, and metering asks
    invoicing whether organisations exist."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
async def invoicing(
    database_url: str, nats_url: str, metering_port: int, refused_address: str
) -> AsyncIterator[Runtime]:
    """Payments is not running: a credit note's refund finds nobody there and stays pending."""
    async with running_service(
        INVOICING, database_url, nats_url, metering_address=f"127.0.0.1:{metering_port}", scheduler_enabled=False,
        payments_address=refused_address,
    ) as runtime:
        yield runtime


@pytest.fixture(scope="session")
async def ingest(database_url: str, nats_url: str, invoicing: Runtime, metering_port: int) -> AsyncIterator[Runtime]:
    """Ingest asks metering (at its port, started or not) about quotas; while metering is down it accepts."""
    async with running_service(
        INGEST, database_url, nats_url, invoicing_address=invoicing.address,
        metering_address=f"127.0.0.1:{metering_port}",
    ) as runtime:
        yield runtime


@pytest.fixture(scope="session")
async def metering(database_url: str, nats_url: str, invoicing: Runtime, metering_port: int) -> AsyncIterator[Runtime]:
    async with running_service(
        METERING, database_url, nats_url, invoicing_address=invoicing.address, grpc_port=metering_port
    ) as runtime:
        yield runtime


@pytest.fixture(scope="session")
async def invoicing_stub(invoicing: Runtime) -> AsyncIterator[invoicing_pb2_grpc.InvoicingServiceStub]:
    async with mesh_channel(invoicing.address) as channel:
        yield invoicing_pb2_grpc.InvoicingServiceStub(channel)


@pytest.fixture(scope="session")
async def ingest_stub(ingest: Runtime) -> AsyncIterator[ingest_pb2_grpc.IngestServiceStub]:
    async with mesh_channel(ingest.address) as channel:
        yield ingest_pb2_grpc.IngestServiceStub(channel)


@pytest.fixture(scope="session")
async def metering_stub(metering: Runtime) -> AsyncIterator[metering_pb2_grpc.MeteringServiceStub]:
    async with mesh_channel(metering.address) as channel:
        yield metering_pb2_grpc.MeteringServiceStub(channel)
