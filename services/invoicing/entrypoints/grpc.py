"""InvoicingService over gRPC: protobuf in, use case, protobuf out. Nothing else."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime.service import Runtime
from services.invoicing.adapters.messages import organisation_to_pb
from services.invoicing.service import organisations


class InvoicingServicer(invoicing_pb2_grpc.InvoicingServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def CreateOrganisation(self, request, context):  # noqa: N802 - gRPC method names
        organisation, created = await organisations.create_organisation(
            self._runtime.uow(),
            self._runtime.outbox,
            organisations.CreateOrganisation(
                name=request.name,
                billing_email=request.billing_email,
                billing_currency=request.billing_currency,
                country=request.country,
                state_code=request.state_code,
                gstin=request.gstin,
                timezone=request.timezone,
                idempotency_key=request.idempotency_key,
            ),
        )
        return invoicing_pb2.CreateOrganisationResponse(
            organisation=organisation_to_pb(organisation), created=created
        )

    async def GetOrganisation(self, request, context):  # noqa: N802
        organisation = await organisations.get_organisation(self._runtime.uow(), request.organisation_id)
        return invoicing_pb2.GetOrganisationResponse(organisation=organisation_to_pb(organisation))

    async def ListOrganisations(self, request, context):  # noqa: N802
        page, next_token = await organisations.list_organisations(
            self._runtime.uow(), request.page_size, request.page_token
        )
        return invoicing_pb2.ListOrganisationsResponse(
            organisations=[organisation_to_pb(o) for o in page], next_page_token=next_token
        )

