"""Ingest's client of the invoicing service: the ``OrganisationDirectory`` that project creation asks whether an
organisation exists, and the ``PlanRates`` that rate limiting asks for the plan's event rate.

It lives here, in the caller, and speaks only invoicing's published contract (``billing.invoicing.v1``):
invoicing's package is never imported, so the two services can change their insides independently. Metering keeps
its own copy of these few lines for the same reason."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import NotFound
from services.ingest.domain.event_rate import EventRate


class InvoicingOrganisations:
    """Answers whether an organisation exists by asking the invoicing service, which owns them."""

    def __init__(self, address: str, *, timeout_seconds: float = 1.0) -> None:
        self._channel = clients.channel(address)
        self._timeout = timeout_seconds
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)

    async def exists(self, organisation_id: str) -> bool:
        try:
            await clients.call(
                self._stub.GetOrganisation, invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id)
            )
        except NotFound:
            return False
        return True

    async def ingest_rate(self, organisation_id: str) -> EventRate | None:
        """The ``ingest_rate_limit`` of the plan version in force now; None when it sets none or nothing is."""
        try:
            reply = await clients.call(
                self._stub.GetPlanInForce, invoicing_pb2.GetPlanInForceRequest(organisation_id=organisation_id),
                timeout=self._timeout,
            )
        except NotFound:
            return None
        terms = reply.plan_version.terms
        if not reply.found or not terms.HasField("ingest_rate_limit"):
            return None
        limit = terms.ingest_rate_limit
        return EventRate(limit.events_per_second, limit.burst or limit.events_per_second)

    async def close(self) -> None:
        await self._channel.close()
