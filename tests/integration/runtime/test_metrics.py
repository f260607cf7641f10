"""Prometheus metrics served by the shared runtime: RPC outcomes, dependencies, outbox."""

from __future__ import annotations

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from billing.invoicing.v1 import invoicing_pb2_grpc
from services.invoicing.__main__ import DEFINITION as INVOICING
from tests.conftest import mesh_channel, running_service
from tests.integration.helpers import expect_rpc_error, organisation_request


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def handled(samples, method: str, code: str) -> float:
    labels = (("grpc_code", code), ("grpc_method", method), ("grpc_service", "billing.invoicing.v1.InvoicingService"))
    return samples.get(("grpc_server_handled_total", labels), 0.0)


async def test_rpc_outcomes_dependencies_and_outbox_are_measured(database_url, nats_url, refused_address):
    async with running_service(
        INVOICING, database_url, nats_url, metrics_port=0, scheduler_enabled=False, metering_address=refused_address,
        payments_address=refused_address,
    ) as invoicing:
        url = invoicing.metrics_server.address
        before = await scrape(url)
        async with mesh_channel(invoicing.address) as channel:
            stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
            await stub.CreateOrganisation(organisation_request())
            await expect_rpc_error(
                stub.CreateOrganisation(organisation_request(gstin="29ABCDE1234F1Z5")),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        after = await scrape(url)

        assert handled(after, "CreateOrganisation", "OK") - handled(before, "CreateOrganisation", "OK") == 1
        assert (
            handled(after, "CreateOrganisation", "INVALID_ARGUMENT")
            - handled(before, "CreateOrganisation", "INVALID_ARGUMENT")
            == 1
        )
        latency_count = (
            "grpc_server_handling_seconds_count",
            (("grpc_method", "CreateOrganisation"), ("grpc_service", "billing.invoicing.v1.InvoicingService")),
        )
        assert after[latency_count] - before.get(latency_count, 0) == 2
        assert after[("billing_service_serving", ())] == 1
        assert after[("billing_outbox_published_total", ())] >= 1
