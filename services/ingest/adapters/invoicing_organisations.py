"""Ingest's client of the invoicing service: the ``OrganisationDirectory`` that project creation asks whether an
organisation exists.

It lives here, in the caller, and speaks only invoicing's published contract (``billing.invoicing.v1``):
invoicing's package is never imported, so the two services can change their insides independently. Metering keeps
its own copy of these few lines for the same reason."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import NotFound


class InvoicingOrganisations:
    """Answers whether an organisation exists by asking the invoicing service, which owns them."""

    def __init__(self, address: str) -> None:
        self._channel = clients.channel(address)
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)

    async def exists(self, organisation_id: str) -> bool:
        try:
            await clients.call(
                self._stub.GetOrganisation, invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id)
            )
        except NotFound:
            return False
        return True

    async def close(self) -> None:
        await self._channel.close()
