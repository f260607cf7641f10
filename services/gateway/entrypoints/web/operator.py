"""Operators' pages (staff): organisations, invoice runs with live progress (start one, watch it move: the row
of a running run asks for itself again every second through htmx until it finishes), and the audit log with its
filters. Each calls the admin API's own route functions, so permissions (operators start runs, viewers only
look), audit entries and answers are the API's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from billing_runtime.errors import InvalidArgument
from services.gateway.adapters.audit import AuditFilter
from services.gateway.entrypoints.http import admin, invoices
from services.gateway.entrypoints.http import invoice_schemas as ins
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.operator_accounts import organisation_summaries
from services.gateway.entrypoints.web.rendering import PREFIX, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
# Operators see every organisation: times in UTC, amounts in plain English grouping.
SHOW = Presentation()
AUDIT_PAGE = 50


@router.get("/organisations")
async def organisations(request: Request, page_token: str = "") -> Response:
    """Every organisation with its plan, prepaid credit and what its invoices still have due."""
    summaries, next_page_token = await organisation_summaries(request, page_token)
    return render(request, "operator/organisations.html", summaries=summaries, next_page_token=next_page_token,
                  show=SHOW, title="Organisations")


@router.get("/invoice-runs")
async def invoice_runs(request: Request, page_token: str = "") -> Response:
    page = await invoices.list_invoice_runs(request, page_size=50, page_token=page_token)
    return render(request, "operator/invoice_runs.html", page=page, show=SHOW, title="Invoice runs",
                  default_period=_previous_month(), error="")


def _previous_month() -> str:
    today = datetime.now(UTC).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@router.post("/invoice-runs")
async def start_invoice_run(request: Request) -> Response:
    """The admin API's start (same use case, same idempotency and audit entry); answers the new run's row, which
    then polls itself."""
    fields = await form_fields(request)
    try:
        body = ins.InvoiceRunStart(period_key=fields.get("period_key", "").strip(),
                                   organisation_id=fields.get("organisation_id", "").strip())
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidArgument(first.get("msg", "is not valid"), field=str(first.get("loc", ("form",))[0])) from None
    run = await invoices.start_invoice_run(body, request, Response(),
                                           idempotency_key=request.headers.get("Idempotency-Key", ""))
    return render(request, "operator/invoice_run_row.html", run=run, show=SHOW)


@router.get("/invoice-runs/{invoice_run_id}")
async def invoice_run(invoice_run_id: str, request: Request) -> Response:
    """One run's row (what the polling asks for)."""
    run = await invoices.get_invoice_run(invoice_run_id, request)
    return render(request, "operator/invoice_run_row.html", run=run, show=SHOW)


def _moment(value: str, field: str) -> datetime | None:
    """A filter's day (``2026-12-05``, from a date input) or moment, read in UTC when it names no offset."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument("is not a date such as 2026-12-05", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Text = Annotated[str, Query(max_length=200)]


@router.get("/audit-log")
async def audit_log(
    request: Request, actor: Text = "", action: Text = "", resource_type: Text = "", resource_id: Text = "",
    since: Annotated[str, Query(max_length=40)] = "", until: Annotated[str, Query(max_length=40)] = "",
    before_id: Annotated[int | None, admin._AUDIT_ID] = None,
) -> Response:
    """The admin API's audit-log query (same filters: actor, action prefix, resource, time) as a table."""
    matching = AuditFilter(actor=actor, action=action, resource_type=resource_type, resource_id=resource_id,
                           since=_moment(since, "since"), until=_moment(until, "until"))
    entries = await admin.audit_log(request, matching, limit=AUDIT_PAGE, before_id=before_id)
    filters = {"actor": actor, "action": action, "resource_type": resource_type, "resource_id": resource_id,
               "since": since, "until": until}
    older = ""
    if len(entries) == AUDIT_PAGE:
        older = "?" + urlencode({**{k: v for k, v in filters.items() if v}, "before_id": entries[-1]["id"]})
    return render(request, "operator/audit_log.html", entries=entries, filters=filters, older=older, show=SHOW,
                  title="Audit log")
