"""E-invoicing: for operators (admin, under /api/v1/admin), the registrations of invoices with the IRP, by status
(failed ones to fix and retry), by organisation or invoice, and the retry; for the customer (``/api/v1``), an
invoice's IRN, Ack No and date as the IRP acknowledged them. Invoicing owns them; these routes translate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.errors import NotFound
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope
from services.gateway.entrypoints.http.invoices import invoicing_of, own_invoice

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 422, 503)}
_STATUSES = {
    "pending": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_PENDING,
    "registered": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_REGISTERED,
    "failed": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_FAILED,
    "cancelled": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_CANCELLED,
    "all": invoicing_pb2.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED,
}
_NAMES = {number: name for name, number in _STATUSES.items() if name != "all"}

admin_router = APIRouter(
    prefix="/api/v1/admin", tags=["e-invoicing"], dependencies=[Depends(require_admin)], responses=_ERRORS
)
router = APIRouter(prefix="/api/v1", tags=["invoices (API key)"], responses=_ERRORS)
IdFilter = Annotated[str, Query(max_length=64)]


class EinvoiceRegistration(BaseModel):
    document_id: str
    invoice_id: str
    organisation_id: str = Field(description="The organisation the invoice bills")
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
            organisation_id=message.organisation_id,
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


StatusFilter = Annotated[
    Literal["pending", "registered", "failed", "cancelled", "all"],
    Query(description="Which ones; default failed (refused by the IRP or blocked)"),
]


@admin_router.get(
    "/einvoices",
    response_model=schemas.Page[EinvoiceRegistration],
    summary="Invoices' registrations with the IRP (e-invoicing)",
)
async def list_einvoices(
    request: Request,
    status: StatusFilter = "failed",
    organisation_id: IdFilter = "",
    invoice_id: IdFilter = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Each e-invoiced document with its IRN (computed locally), status, attempts and, for a failed or retried
    one, why (the IRP's error codes, or the 30-day rule that blocked it before sending); by document id. Only one
    organisation's (its invoices and their credit notes) or one invoice's when asked."""
    reply = await clients.call(
        invoicing_of(request).ListEinvoiceRegistrations,
        invoicing_pb2.ListEinvoiceRegistrationsRequest(
            status=_STATUSES[status],
            organisation_id=organisation_id,
            invoice_id=invoice_id,
            page_size=page_size,
            page_token=page_token,
        ),
    )
    return schemas.Page[EinvoiceRegistration](
        data=[EinvoiceRegistration.from_pb(r) for r in reply.registrations], next_page_token=reply.next_page_token
    )


@admin_router.post(
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


# --- the customer's own invoice ------------------------------------------------------------------------------


class InvoiceEinvoice(BaseModel):
    """An invoice's registration with the IRP as its customer sees it: what the IRP acknowledged, never why an
    attempt failed (that is the supplier's to fix)."""

    invoice_id: str
    status: str = Field(
        examples=["registered"],
        description="pending (awaiting its IRN), registered, failed (the supplier is fixing it; awaiting its IRN) "
        "or cancelled (the invoice was voided)",
    )
    irn: str = Field(description="The Invoice Reference Number, once the IRP acknowledged it; empty before")
    ack_no: str = Field(description="The IRP's acknowledgement number; empty before")
    acknowledged_at: datetime | None = Field(description="When the IRP acknowledged it")
    cancelled_at: datetime | None


@router.get(
    "/invoices/{invoice_id}/einvoice",
    response_model=InvoiceEinvoice,
    summary="One of your organisation's invoices as registered with the IRP (e-invoicing)",
)
async def my_invoice_einvoice(invoice_id: str, request: Request, scope: OrgScope):
    """The IRN, Ack No and Ack date printed on the invoice once the IRP registered it. 404 for an invoice that is
    not e-invoiced (a B2C one, or e-invoicing is off), and for another organisation's, as for one that does not
    exist."""
    await own_invoice(request, scope, invoice_id)
    reply = await clients.call(
        invoicing_of(request).ListEinvoiceRegistrations,
        invoicing_pb2.ListEinvoiceRegistrationsRequest(
            status=invoicing_pb2.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED, invoice_id=invoice_id, page_size=500
        ),
    )
    found = next((r for r in reply.registrations if r.document_id == invoice_id), None)
    if found is None:
        raise NotFound(f"invoice {invoice_id} is not e-invoiced", field="invoice_id")
    registration = EinvoiceRegistration.from_pb(found)
    acknowledged = bool(registration.ack_no)  # an IRN is the invoice's only once the IRP acknowledged it
    return InvoiceEinvoice(
        invoice_id=invoice_id,
        status=registration.status,
        irn=registration.irn if acknowledged else "",
        ack_no=registration.ack_no,
        acknowledged_at=registration.acknowledged_at,
        cancelled_at=registration.cancelled_at,
    )
