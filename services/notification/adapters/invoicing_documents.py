"""Notification's client of invoicing: the invoice PDF to attach. Speaks only invoicing's published contract."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients


class InvoicingDocuments:
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

    async def close(self) -> None:
        await self._channel.close()
