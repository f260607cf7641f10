"""gRPC clients of the services behind the gateway."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing.ingest.v1 import ingest_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2_grpc
from billing.notification.v1 import notification_pb2_grpc
from billing.payments.v1 import payments_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import NotFound


class ServiceClients:
    """One channel per service, opened once; stubs for the RPCs the gateway calls and for health."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = addresses
        self._channels = {name: clients.channel(address) for name, address in addresses.items()}
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self._channels["ingest"])
        self.invoicing = invoicing_pb2_grpc.InvoicingServiceStub(self._channels["invoicing"])
        self.metering = metering_pb2_grpc.MeteringServiceStub(self._channels["metering"])
        self.payments = payments_pb2_grpc.PaymentsServiceStub(self._channels["payments"])
        self.notification = notification_pb2_grpc.NotificationServiceStub(self._channels["notification"])
        self._health = {name: health_pb2_grpc.HealthStub(ch) for name, ch in self._channels.items()}

    async def health(self, timeout: float) -> dict[str, str]:
        """Each service's gRPC health status ('serving', 'not_serving', or 'unreachable'), asked concurrently."""

        async def check(name: str) -> tuple[str, str]:
            try:
                response = await self._health[name].Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            except grpc.aio.AioRpcError:
                return name, "unreachable"
            return name, health_pb2.HealthCheckResponse.ServingStatus.Name(response.status).lower()

        return dict(await asyncio.gather(*(check(name) for name in self._health)))

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))


class InvoicingOrganisations:
    """The ``Organisations`` an organisation user is checked against: invoicing, which owns organisations."""

    def __init__(self, service_clients: ServiceClients) -> None:
        self._clients = service_clients

    async def exists(self, organisation_id: str) -> bool:
        try:
            await clients.call(self._clients.invoicing.GetOrganisation,
                               invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
        except NotFound:
            return False
        return True
