"""grpc.health.v1 ``List`` on a real service: every registered name (``""`` included) with the status ``Check``
answers, while starting, serving and shutting down; the RPC that reflection advertises answers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from billing_runtime.grpc_server import MAX_LISTED_SERVICES
from billing_runtime.service import Wiring, build_runtime
from services.invoicing.__main__ import DEFINITION as INVOICING
from services.metering.__main__ import DEFINITION as METERING
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import running_service

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
INVOICING_SERVICE = "billing.invoicing.v1.InvoicingService"


async def health_list(address: str) -> dict[str, int]:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=2)
    return {name: response.status for name, response in reply.statuses.items()}


async def advertised_methods(address: str) -> set[str]:
    """The Health service's methods, as reflection describes them to a client."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health")
        async for response in stub.ServerReflectionInfo(iter([request])):
            methods = set()
            for raw in response.file_descriptor_response.file_descriptor_proto:
                proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                methods |= {m.name for s in proto.service if s.name == "Health" for m in s.method}
            return methods
    raise AssertionError("no reflection response")


async def test_list_answers_every_registered_service_of_a_serving_service(invoicing, caplog):
    caplog.set_level(logging.ERROR)
    assert "List" in await advertised_methods(invoicing.address)
    assert await health_list(invoicing.address) == {"": SERVING, INVOICING_SERVICE: SERVING}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_list_reports_not_serving_while_dependencies_are_missing_and_during_shutdown(
    database_url, nats_url, refused_address
):
    dead_database = f"postgresql://postgres@{refused_address}/nowhere"
    runtime = build_runtime(
        INVOICING,
        INVOICING.settings_cls(database_url=dead_database, nats_url=nats_url, grpc_port=0,
                               metering_address=refused_address),
    )
    starting = asyncio.create_task(runtime.start())
    try:
        for _ in range(100):
            if runtime.port:
                break
            await asyncio.sleep(0.05)
        # Health answers while every other RPC is UNAVAILABLE: List is how a prober sees why.
        assert await health_list(runtime.address) == {"": NOT_SERVING, INVOICING_SERVICE: NOT_SERVING}
    finally:
        await runtime.stop()
        await asyncio.gather(starting, return_exceptions=True)

    async with running_service(METERING, database_url, nats_url, invoicing_address=refused_address) as metering:
        assert await health_list(metering.address) == {"": SERVING, "billing.metering.v1.MeteringService": SERVING}
        await metering.health.enter_graceful_shutdown()  # what stop() does first
        assert await health_list(metering.address) == {
            "": NOT_SERVING, "billing.metering.v1.MeteringService": NOT_SERVING
        }


async def test_list_refuses_when_there_are_too_many_services_to_list(database_url, nats_url):
    names = [f"test.Extra{index}" for index in range(MAX_LISTED_SERVICES)]  # with "", one more than allowed
    crowded = dataclasses.replace(PAYMENTS, register=lambda runtime, settings: Wiring(names))
    async with running_service(crowded, database_url, nats_url) as runtime:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await health_list(runtime.address)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
