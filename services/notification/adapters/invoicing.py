"""Notification's client of invoicing: the invoice PDF to attach, and an organisation's billing contact for mail
about no invoice. Speaks only invoicing's published contract."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import NotFound
from services.notification.domain.notice import Contact


class Invoicing:
    def __init__(self, address: str) -> None:
        self._channel = clients.channel(address)
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)

    async def pdf(self, invoice_id: str) -> tuple[str, bytes]:
        """(file name, bytes) of the invoice's PDF; raises the callee's domain error (Unavailable when down)."""
        reply = await clients.call(
            self._stub.RenderInvoice,
            invoicing_pb2.RenderInvoiceRequest(invoice_id=invoice_id, format=invoicing_pb2.INVOICE_FORMAT_PDF),
            timeout=30.0,
        )
        return reply.filename or f"{invoice_id}.pdf", reply.content

    async def contact(self, organisation_id: str) -> Contact | None:
        """The organisation's name, billing email and time zone now; None when invoicing does not know it. Any
        other failure (Unavailable when invoicing is down) is raised for the caller to retry."""
        try:
            reply = await clients.call(self._stub.GetOrganisation,
                                       invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))
        except NotFound:
            return None
        organisation = reply.organisation
        return Contact(organisation.id or organisation_id, organisation.name, organisation.billing_email,
                       organisation.timezone or "UTC")

    async def close(self) -> None:
        await self._channel.close()
