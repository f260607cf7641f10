"""Invoice runs and invoices: the admin routes under /api/v1/admin, and the key holder's own invoices under
/api/v1 (scoped to the organisation of the presented project API key)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.errors import NotFound
from services.gateway.entrypoints.http import invoice_schemas as ins
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope, Scope
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute

# Rendering a PDF takes longer than a lookup; a run is started, not awaited.
RENDER_TIMEOUT_SECONDS = 30.0
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 422, 503)}
_PDF_RESPONSE = {200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                       "description": "The invoice as a PDF, as an attachment"}}
_HTML_RESPONSE = {200: {"content": {"text/html": {"schema": {"type": "string"}}},
                        "description": "The invoice as an HTML page (the operator's template)"}}

admin_router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_admin)],
                         route_class=DecimalJsonRoute, responses=_ERRORS)
router = APIRouter(prefix="/api/v1", tags=["invoices (API key)"], responses=_ERRORS)

StatusFilter = Annotated[ins.InvoiceStatusName | None, Query(description="Only invoices in this status")]
PeriodFilter = Annotated[str, Query(description="Only this billing period, YYYY-MM", examples=["2026-10"])]


def invoicing_of(request: Request):
    """The invoicing service's stub (for this module, :mod:`.settlement` and :mod:`.dunning`)."""
    return request.app.state.clients.invoicing


def _status_number(name: str | None) -> int:
    return ins.INVOICE_STATUSES.number(name) if name else invoicing_pb2.INVOICE_STATUS_UNSPECIFIED


def attachment_filename(filename: str, invoice_id: str, extension: str) -> str:
    """The service's file name when it is plainly safe in a header, else one made of the invoice id."""
    if _SAFE_FILENAME.fullmatch(filename) and filename.endswith(f".{extension}"):
        return filename
    fallback = re.sub(r"[^A-Za-z0-9._-]", "-", invoice_id)[:90] or "invoice"
    return f"{fallback}.{extension}"


async def _render(request: Request, invoice_id: str, invoice_format: int) -> Response:
    reply = await clients.call(
        invoicing_of(request).RenderInvoice,
        invoicing_pb2.RenderInvoiceRequest(invoice_id=invoice_id, format=invoice_format),
        timeout=RENDER_TIMEOUT_SECONDS,
    )
    return rendered_document(reply, invoice_id, invoice_format)


def rendered_document(reply: invoicing_pb2.RenderInvoiceResponse | invoicing_pb2.RenderCreditNoteResponse,
                      document_id: str, document_format: int) -> Response:
    """A rendered invoice or credit note as the HTTP answer: a PDF attachment, or the HTML page."""
    if document_format == invoicing_pb2.INVOICE_FORMAT_PDF:
        filename = attachment_filename(reply.filename, document_id, "pdf")
        return Response(reply.content, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return Response(reply.content, media_type=reply.content_type or "text/html; charset=utf-8")


async def _get_invoice(request: Request, invoice_id: str) -> invoicing_pb2.Invoice:
    reply = await clients.call(invoicing_of(request).GetInvoice, invoicing_pb2.GetInvoiceRequest(invoice_id=invoice_id))
    return reply.invoice


# --- invoice runs --------------------------------------------------------------------------------------------


@admin_router.post("/invoice-runs", status_code=status.HTTP_202_ACCEPTED, response_model=ins.InvoiceRun,
                   tags=["invoices"], summary="Close a billing period: invoice one organisation or all")
async def start_invoice_run(
    body: ins.InvoiceRunStart, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Starts the run in the background and answers 202 with it; poll `GET /invoice-runs/{id}` for progress.
    Each (organisation, period) is invoiced at most once however many runs cover it: organisations already
    invoiced are counted as `already_invoiced`, those whose period has not ended as `not_due`."""
    reply = await clients.call(
        invoicing_of(request).StartInvoiceRun,
        invoicing_pb2.StartInvoiceRunRequest(period_key=body.period_key, organisation_id=body.organisation_id,
                                             idempotency_key=idempotency_key),
    )
    if reply.created:
        await audit(request, "invoice_run.start", "invoice_run", reply.invoice_run.id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return ins.InvoiceRun.from_pb(reply.invoice_run)


@admin_router.get("/invoice-runs", response_model=schemas.Page[ins.InvoiceRun], tags=["invoices"],
                  summary="List invoice runs")
async def list_invoice_runs(request: Request, page_size: PageSize = 0, page_token: str = ""):
    """Runs with their progress counts, newest first."""
    reply = await clients.call(
        invoicing_of(request).ListInvoiceRuns,
        invoicing_pb2.ListInvoiceRunsRequest(page_size=page_size, page_token=page_token),
    )
    return schemas.Page[ins.InvoiceRun](data=[ins.InvoiceRun.from_pb(r) for r in reply.invoice_runs],
                                        next_page_token=reply.next_page_token)


@admin_router.get("/invoice-runs/{invoice_run_id}", response_model=ins.InvoiceRun, tags=["invoices"],
                  summary="Get an invoice run and its progress")
async def get_invoice_run(invoice_run_id: str, request: Request):
    reply = await clients.call(
        invoicing_of(request).GetInvoiceRun, invoicing_pb2.GetInvoiceRunRequest(invoice_run_id=invoice_run_id)
    )
    return ins.InvoiceRun.from_pb(reply.invoice_run)


# --- invoices (admin) ----------------------------------------------------------------------------------------


@admin_router.get("/invoices", response_model=schemas.Page[ins.Invoice], tags=["invoices"],
                  summary="List invoices")
async def list_invoices(
    request: Request,
    organisation_id: Annotated[str, Query(description="Only this organisation's invoices")] = "",
    status: StatusFilter = None,
    period_key: PeriodFilter = "",
    page_size: PageSize = 0,
    page_token: str = "",
):
    """Invoices newest first, without their lines (get one for its lines)."""
    reply = await clients.call(
        invoicing_of(request).ListInvoices,
        invoicing_pb2.ListInvoicesRequest(organisation_id=organisation_id, status=_status_number(status),
                                          period_key=period_key, page_size=page_size, page_token=page_token),
    )
    return schemas.Page[ins.Invoice](data=[ins.Invoice.from_pb(i) for i in reply.invoices],
                                     next_page_token=reply.next_page_token)


@admin_router.get("/invoices/{invoice_id}", response_model=ins.Invoice, tags=["invoices"], summary="Get an invoice")
async def get_invoice(invoice_id: str, request: Request):
    """An invoice with its lines (each with its tier breakdown), tax lines, parties and the exchange rate used."""
    return ins.Invoice.from_pb(await _get_invoice(request, invoice_id))


@admin_router.post("/invoices/{invoice_id}/void", response_model=ins.Invoice, tags=["invoices"],
                   summary="Void an issued invoice")
async def void_invoice(invoice_id: str, body: ins.InvoiceVoid, request: Request):
    """The invoice keeps its number (never reused) and the reason. Voiding a void invoice returns it unchanged.
    A voided invoice can be reissued under a new number."""
    reply = await clients.call(
        invoicing_of(request).VoidInvoice,
        invoicing_pb2.VoidInvoiceRequest(invoice_id=invoice_id, reason=body.reason,
                                         irn_cancel_reason=body.irn_cancel_reason),
    )
    await audit(request, "invoice.void", "invoice", invoice_id, reason=body.reason,
                after={"status": ins.Invoice.from_pb(reply.invoice).status})
    return ins.Invoice.from_pb(reply.invoice)


@admin_router.post("/invoices/{invoice_id}/reissue", status_code=status.HTTP_201_CREATED, response_model=ins.Invoice,
                   tags=["invoices"], summary="Reissue a voided invoice under a new number")
async def reissue_invoice(invoice_id: str, request: Request, response: Response):
    """Issues a new invoice for the voided one's period (201). Asking again returns that same reissue
    (200, `Idempotent-Replayed: true`)."""
    reply = await clients.call(
        invoicing_of(request).ReissueInvoice, invoicing_pb2.ReissueInvoiceRequest(invoice_id=invoice_id)
    )
    if reply.created:
        await audit(request, "invoice.reissue", "invoice", reply.invoice.id)
    else:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return ins.Invoice.from_pb(reply.invoice)


@admin_router.get("/invoices/{invoice_id}/pdf", response_class=Response, tags=["invoices"],
                  responses=_PDF_RESPONSE, summary="Download an invoice as PDF")
async def invoice_pdf(invoice_id: str, request: Request) -> Response:
    return await _render(request, invoice_id, invoicing_pb2.INVOICE_FORMAT_PDF)


@admin_router.get("/invoices/{invoice_id}/html", response_class=Response, tags=["invoices"],
                  responses=_HTML_RESPONSE, summary="An invoice as an HTML page")
async def invoice_html(invoice_id: str, request: Request) -> Response:
    """The same page the email and the dashboard show, from the operator's Jinja2 template."""
    return await _render(request, invoice_id, invoicing_pb2.INVOICE_FORMAT_HTML)


ForecastFlag = Annotated[bool, Query(description="Add the forecast of the period's end from the trend so far")]


async def _projected(request: Request, organisation_id: str, forecast: bool) -> ins.ProjectedInvoice:
    reply = await clients.call(
        invoicing_of(request).GetProjectedInvoice,
        invoicing_pb2.GetProjectedInvoiceRequest(organisation_id=organisation_id, include_forecast=forecast),
        timeout=RENDER_TIMEOUT_SECONDS,
    )
    return ins.ProjectedInvoice.from_response(reply)


@admin_router.get("/organisations/{organisation_id}/projected-invoice", response_model=ins.ProjectedInvoice,
                  tags=["invoices"], summary="The current period's usage so far, priced, and its forecast")
async def projected_invoice(organisation_id: str, request: Request, forecast: ForecastFlag = True):
    """What the organisation's invoice would be if its current period ended now: not stored, not numbered
    (`projected: true`), with earlier periods' late usage as `usage_adjustment` lines and the prepaid credit the
    period close would spend in `credit_lines` (`amount_due`: what is left to pay); nothing is spent. In
    `forecast`, what it will be at the period's end if usage keeps its trend, with the credit the same balance
    would pay of that total (grants expiring before the period ends left out)."""
    return await _projected(request, organisation_id, forecast)


# --- the key holder's own invoices ---------------------------------------------------------------------------

KeyStatusFilter = Annotated[
    Literal["issued", "partially_paid", "paid", "partially_refunded", "refunded", "overdue", "uncollectible",
            "void"] | None,
    Query(description="Only invoices in this status"),
]


async def own_invoice(request: Request, scope: Scope, invoice_id: str) -> invoicing_pb2.Invoice:
    """The invoice if it is the key's organisation's and issued; another organisation's is 'not found', exactly as
    a missing one, so a key cannot probe for other organisations' invoice ids. Every key holder's route about one
    invoice (its PDF here, its checkout and payments in :mod:`.payments`) asks this first."""
    try:
        invoice = await _get_invoice(request, invoice_id)
    except NotFound:
        invoice = None
    if (invoice is None or invoice.organisation_id != scope.organisation_id
            or invoice.status == invoicing_pb2.INVOICE_STATUS_DRAFT):
        raise NotFound(f"invoice {invoice_id} not found", field="invoice_id")
    return invoice


@router.get("/invoices", response_model=schemas.Page[ins.Invoice], summary="Your organisation's invoices")
async def my_invoices(
    request: Request, scope: OrgScope, status: KeyStatusFilter = None, period_key: PeriodFilter = "",
    page_size: PageSize = 0, page_token: str = "",
):
    """The invoices of the API key's organisation, newest first, without lines (drafts are not shown)."""
    reply = await clients.call(
        invoicing_of(request).ListInvoices,
        invoicing_pb2.ListInvoicesRequest(organisation_id=scope.organisation_id, status=_status_number(status),
                                          period_key=period_key, page_size=page_size, page_token=page_token),
    )
    shown = [i for i in reply.invoices if i.status != invoicing_pb2.INVOICE_STATUS_DRAFT]
    return schemas.Page[ins.Invoice](data=[ins.Invoice.from_pb(i) for i in shown],
                                     next_page_token=reply.next_page_token)


@router.get("/invoices/{invoice_id}", response_model=ins.Invoice, summary="One of your organisation's invoices")
async def my_invoice(invoice_id: str, request: Request, scope: OrgScope):
    """404 for an invoice of another organisation, as for one that does not exist."""
    return ins.Invoice.from_pb(await own_invoice(request, scope, invoice_id))


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, responses=_PDF_RESPONSE,
            summary="Download one of your organisation's invoices as PDF")
async def my_invoice_pdf(invoice_id: str, request: Request, scope: OrgScope) -> Response:
    await own_invoice(request, scope, invoice_id)
    return await _render(request, invoice_id, invoicing_pb2.INVOICE_FORMAT_PDF)


@router.get("/projected-invoice", response_model=ins.ProjectedInvoice,
            summary="Your current period so far, priced, and its forecast")
async def my_projected_invoice(request: Request, scope: OrgScope, forecast: ForecastFlag = True):
    """The API key's organisation's projected invoice for the current period: usage so far, priced on its plan,
    with late usage of earlier periods (`usage_adjustment` lines) and the prepaid credit it would spend
    (`credit_lines`, `amount_due`); and, in `forecast`, the invoice at the period's end if usage keeps its trend,
    with the credit the same balance would pay of it. Nothing is spent."""
    return await _projected(request, scope.organisation_id, forecast)
