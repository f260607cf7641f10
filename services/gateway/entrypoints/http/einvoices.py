"""E-invoicing for operators (admin, under /api/v1/admin): the registrations of invoices with the IRP, by status
(failed ones to fix and retry), and the retry. Invoicing owns them; these routes translate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.invoices import invoicing_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 422, 503)}
_STATUSES = {
    "pending": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_PENDING,
    "registered": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_REGISTERED,
    "failed": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_FAILED,
    "cancelled": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_CANCELLED,
    "all": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED,
}
_NAMES = {number: name for name, number in _STATUSES.items() if name != "all"}

router = APIRouter(
    prefix="/api/v1/admin", tags=["e-invoicing"], dependencies=[Depends(require_admin)], responses=_ERRORS
)


class EinvoiceRegistration(BaseModel):
    document_id: str
    invoice_id: str
    document_type: str
    document_number: str
    irn: str
    status: str
    attempts: int
    last_error: str
    ack_no: str
    acknowledged_at: datetime | None
    next_attempt_at: datetime | None
    cancelled_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.EinvoiceRegistration) -> EinvoiceRegistration:
        def when(field: str) -> datetime | None:
            return from_timestamp(getattr(message, field)) if message.HasField(field) else None

        return cls(
            document_id=message.document_id,
            invoice_id=message.invoice_id,
            document_type=message.document_type,
            document_number=message.document_number,
            irn=message.irn,
            status=_NAMES.get(message.status, "unknown"),
            attempts=message.attempts,
            last_error=message.last_error,
            ack_no=message.ack_no,
            acknowledged_at=when("ack_time"),
            next_attempt_at=when("next_attempt_time"),
            cancelled_at=when("cancel_time"),
        )


@router.get(
    "/einvoices",
    response_model=schemas.Page[EinvoiceRegistration],
    summary="Invoices' registrations with the IRP (e-invoicing)",
)
async def list_einvoices(
    request: Request,
    status: Annotated[
        Literal["pending", "registered", "failed", "cancelled", "all"],
        Query(description="Which ones; default failed (refused by the IRP or blocked)"),
    ] = "failed",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Each e-invoiced document with its IRN (computed locally), status, attempts and, for a failed or retried
    one, why (the IRP's error codes, or the 30-day rule that blocked it before sending)."""
    reply = await clients.call(
        invoicing_of(request).ListEinvoiceRegistrations,
        invoicing_pb2.ListEinvoiceRegistrationsRequest(
            status=_STATUSES[status], page_size=page_size, page_token=page_token
        ),
    )
    return schemas.Page[EinvoiceRegistration](
        data=[EinvoiceRegistration.from_pb(r) for r in reply.registrations], next_page_token=reply.next_page_token
    )


@router.post(
    "/einvoices/{document_id}/retry",
    response_model=EinvoiceRegistration,
    summary="Send a failed e-invoice registration again",
)
async def retry_einvoice(document_id: str, request: Request):
    """The registration is pending again and the registrar sends it at once. Retrying a pending one returns it
    unchanged; 422 for a registered or cancelled one; 404 for an unknown id."""
    reply = await clients.call(
        invoicing_of(request).RetryEinvoiceRegistration,
        invoicing_pb2.RetryEinvoiceRegistrationRequest(document_id=document_id),
    )
    await audit(request, "einvoice.retry", "invoice", document_id)
    return EinvoiceRegistration.from_pb(reply.registration)
