"""Metering's client of invoicing's ``GetInvoicingHorizon``: the earliest billing period start not invoiced yet,
before which stored events may be archived. Speaks only invoicing's published contract."""

from __future__ import annotations

from datetime import datetime

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients
from billing_runtime.timestamps import from_timestamp


class InvoicingHorizon:
    def __init__(self, address: str) -> None:
        self._channel = clients.channel(address)
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)

    async def open_from(self) -> datetime | None:
        """The horizon; None when no period is open. Unavailable and other failures propagate."""
        response = await clients.call(
            self._stub.GetInvoicingHorizon, invoicing_pb2.GetInvoicingHorizonRequest(), timeout=10.0
        )
        return from_timestamp(response.open_from) if response.HasField("open_from") else None

    async def close(self) -> None:
        await self._channel.close()
