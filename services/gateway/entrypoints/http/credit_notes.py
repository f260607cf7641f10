"""Credit notes (invoicing's): the admin routes under /api/v1/admin, and the organisation's own under /api/v1
(where its invoices are readable: a project API key or an organisation user, scoped to that organisation)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.errors import NotFound
from services.gateway.entrypoints.http import credit_note_schemas as cns
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope, Scope
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute
from services.gateway.entrypoints.http.invoices import (
    _ERRORS,
    _HTML_RESPONSE,
    _PDF_RESPONSE,
    RENDER_TIMEOUT_SECONDS,
    invoicing_of,
    own_invoice,
    rendered_document,
)

admin_router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_admin)], tags=["credit notes"],
                         route_class=DecimalJsonRoute, responses=_ERRORS)
router = APIRouter(prefix="/api/v1", tags=["credit notes (API key)"], responses=_ERRORS)
_SAME_NAMES = field_paths.renamed({})


async def _get(request: Request, credit_note_id: str) -> invoicing_pb2.CreditNote:
    reply = await clients.call(invoicing_of(request).GetCreditNote,
                               invoicing_pb2.GetCreditNoteRequest(credit_note_id=credit_note_id))
    return reply.credit_note


async def _list(request: Request, *, invoice_id: str = "", organisation_id: str = "", page_size: int = 0,
                page_token: str = "") -> schemas.Page[cns.CreditNote]:
    reply = await clients.call(
        invoicing_of(request).ListCreditNotes,
        invoicing_pb2.ListCreditNotesRequest(invoice_id=invoice_id, organisation_id=organisation_id,
                                             page_size=page_size, page_token=page_token),
    )
    return schemas.Page[cns.CreditNote](data=[cns.CreditNote.from_pb(n) for n in reply.credit_notes],
                                        next_page_token=reply.next_page_token)


async def _render(request: Request, credit_note_id: str, credit_note_format: int) -> Response:
    reply = await clients.call(
        invoicing_of(request).RenderCreditNote,
        invoicing_pb2.RenderCreditNoteRequest(credit_note_id=credit_note_id, format=credit_note_format),
        timeout=RENDER_TIMEOUT_SECONDS,
    )
    return rendered_document(reply, credit_note_id, credit_note_format)


# --- admin ---------------------------------------------------------------------------------------------------


@admin_router.post("/invoices/{invoice_id}/credit-notes", status_code=status.HTTP_201_CREATED,
                   response_model=cns.CreditNote, summary="Credit an issued invoice, in whole or in part")
async def create_credit_note(
    invoice_id: str, body: cns.CreditNoteCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = "",
):
    """A credit note against the invoice: `whole`, or an amount (`amount_minor`) or a `quantity` off given lines,
    never more than is left to credit (422 otherwise). Its GST is the invoice's, reversed. It first reduces what
    the invoice still owes; what was already paid is refunded through the provider (`outcome: refund`) or left
    as credit for the customer (`outcome: credit`). Retrying with the same `Idempotency-Key` returns the first
    (`Idempotent-Replayed: true`) and asks payments again for a refund still `pending`."""
    reply = await field_paths.call(invoicing_of(request).CreateCreditNote, body.to_pb(invoice_id, idempotency_key),
                                   _SAME_NAMES)
    note = cns.CreditNote.from_pb(reply.credit_note)
    if reply.created:
        await audit(request, "credit_note.create", "credit_note", note.id, reason=body.reason,
                    after={"invoice_id": invoice_id, "number": note.number, "total_minor": note.total_minor,
                           "currency": note.currency, "outcome": note.outcome, "reason_code": note.reason_code})
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return note


@admin_router.get("/invoices/{invoice_id}/credit-notes", response_model=schemas.Page[cns.CreditNote],
                  summary="An invoice's credit notes")
async def invoice_credit_notes(invoice_id: str, request: Request, page_size: PageSize = 0, page_token: str = ""):
    """Newest first."""
    return await _list(request, invoice_id=invoice_id, page_size=page_size, page_token=page_token)


@admin_router.get("/organisations/{organisation_id}/credit-notes", response_model=schemas.Page[cns.CreditNote],
                  summary="An organisation's credit notes")
async def organisation_credit_notes(organisation_id: str, request: Request, page_size: PageSize = 0,
                                    page_token: str = ""):
    """Newest first, across its invoices."""
    return await _list(request, organisation_id=organisation_id, page_size=page_size, page_token=page_token)


@admin_router.get("/credit-notes/{credit_note_id}", response_model=cns.CreditNote, summary="Get a credit note")
async def get_credit_note(credit_note_id: str, request: Request):
    return cns.CreditNote.from_pb(await _get(request, credit_note_id))


@admin_router.get("/credit-notes/{credit_note_id}/pdf", response_class=Response, responses=_PDF_RESPONSE,
                  summary="Download a credit note as PDF")
async def credit_note_pdf(credit_note_id: str, request: Request) -> Response:
    return await _render(request, credit_note_id, invoicing_pb2.INVOICE_FORMAT_PDF)


@admin_router.get("/credit-notes/{credit_note_id}/html", response_class=Response, responses=_HTML_RESPONSE,
                  summary="A credit note as an HTML page")
async def credit_note_html(credit_note_id: str, request: Request) -> Response:
    return await _render(request, credit_note_id, invoicing_pb2.INVOICE_FORMAT_HTML)


# --- the organisation's own ----------------------------------------------------------------------------------


async def own_credit_note(request: Request, scope: Scope, credit_note_id: str) -> invoicing_pb2.CreditNote:
    """The credit note if it is the scope's organisation's; another organisation's is 'not found', as a missing
    one is."""
    try:
        note = await _get(request, credit_note_id)
    except NotFound:
        note = None
    if note is None or note.organisation_id != scope.organisation_id:
        raise NotFound(f"credit note {credit_note_id} not found", field="credit_note_id")
    return note


@router.get("/invoices/{invoice_id}/credit-notes", response_model=schemas.Page[cns.CreditNote],
            summary="The credit notes of one of your organisation's invoices")
async def my_invoice_credit_notes(invoice_id: str, request: Request, scope: OrgScope, page_size: PageSize = 0,
                                  page_token: str = ""):
    await own_invoice(request, scope, invoice_id)
    return await _list(request, invoice_id=invoice_id, page_size=page_size, page_token=page_token)


@router.get("/credit-notes", response_model=schemas.Page[cns.CreditNote],
            summary="Your organisation's credit notes")
async def my_credit_notes(request: Request, scope: OrgScope, page_size: PageSize = 0, page_token: str = ""):
    return await _list(request, organisation_id=scope.organisation_id, page_size=page_size, page_token=page_token)


@router.get("/credit-notes/{credit_note_id}", response_model=cns.CreditNote,
            summary="One of your organisation's credit notes")
async def my_credit_note(credit_note_id: str, request: Request, scope: OrgScope):
    """404 for a credit note of another organisation, as for one that does not exist."""
    return cns.CreditNote.from_pb(await own_credit_note(request, scope, credit_note_id))


@router.get("/credit-notes/{credit_note_id}/pdf", response_class=Response, responses=_PDF_RESPONSE,
            summary="Download one of your organisation's credit notes as PDF")
async def my_credit_note_pdf(credit_note_id: str, request: Request, scope: OrgScope) -> Response:
    await own_credit_note(request, scope, credit_note_id)
    return await _render(request, credit_note_id, invoicing_pb2.INVOICE_FORMAT_PDF)
