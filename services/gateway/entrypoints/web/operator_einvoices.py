"""Operators' e-invoicing page: the registrations of invoices (and credit notes) with the IRP, by state (failed
first: those are an operator's to fix), each with its document, organisation, IRN, the IRP's Ack No and date, the
last error with the IRP's error codes, and when it is sent next; a failed one is retried from its row. The page
calls the admin API's own route functions: the list (``GET /api/v1/admin/einvoices``, read) and the retry (the
same use case, operate, audited ``einvoice.retry``)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from billing_runtime.errors import DomainError
from services.gateway.domain.access import Permission
from services.gateway.entrypoints.http import admin, einvoices
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.rendering import PREFIX, redirect, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
SHOW = Presentation()
PAGE = 50
State = Literal["failed", "pending", "registered", "cancelled", "all"]
STATES: tuple[tuple[str, str], ...] = (
    ("failed", "Failed (to fix and retry)"), ("pending", "Pending (being sent)"), ("registered", "Registered"),
    ("cancelled", "Cancelled"), ("all", "All"))
# An IRP error code in the registrar's words: "2176: Invalid HSN code(s)", "duplicate IRN (2150)".
IRP_CODE = re.compile(r"(?<![\w.-])(\d{4})(?=:|\))")


def irp_codes(last_error: str) -> list[str]:
    """The IRP's error codes a registration's last error names, each once, in order (none for a block before
    sending, a check of our own or an IRP that could not be reached)."""
    return list(dict.fromkeys(IRP_CODE.findall(last_error)))


class OrganisationNames:
    """Organisations' names, each asked once per page (the admin API's read)."""

    def __init__(self, request: Request) -> None:
        self.request = request

    async def of(self, organisation_ids: set[str]) -> dict[str, str]:
        ids = sorted(i for i in organisation_ids if i)
        found = await asyncio.gather(*(self._name(i) for i in ids))
        return dict(zip(ids, found, strict=True))

    async def _name(self, organisation_id: str) -> str:
        try:
            return (await admin.get_organisation(organisation_id, self.request)).name
        except DomainError:  # gone, or invoicing did not answer: the row shows the id
            return ""


def may_operate(request: Request) -> bool:
    """Whether to offer Retry (an operator or admin); the API decides anyway."""
    principal = getattr(request.state, "principal", None)
    return principal is not None and principal.may(Permission.OPERATE)


@router.get("/einvoices")
async def einvoices_page(request: Request, status: State = "failed", page_token: str = "",
                         retried: Annotated[str, Query(max_length=64)] = "") -> Response:
    page = await einvoices.list_einvoices(request, status=status, organisation_id="", invoice_id="",
                                          page_size=PAGE, page_token=page_token)
    names = await OrganisationNames(request).of({r.organisation_id for r in page.data})
    more = ""
    if page.next_page_token:
        more = "?" + urlencode({"status": status, "page_token": page.next_page_token})
    return render(request, "operator/einvoices.html", page=page, names=names, status=status, states=STATES,
                  codes_of=irp_codes, more=more, retried=retried, may_retry=may_operate(request), show=SHOW,
                  title="E-invoices")


@router.post("/einvoices/{document_id}/retry")
async def retry(document_id: str, request: Request) -> Response:
    """The API's retry: pending again, sent by the registrar at once. Back to the list the operator was reading,
    saying which document was sent again."""
    fields = await form_fields(request)
    back = fields.get("status", "failed")
    registration = await einvoices.retry_einvoice(document_id, request)
    query = urlencode({"status": back if back in dict(STATES) else "failed",
                       "retried": (registration.document_number or registration.document_id)[:64]})
    return redirect(request, f"{PREFIX}/operator/einvoices?{query}")
