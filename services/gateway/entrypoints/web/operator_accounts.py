"""Operators' view of the billed organisations: each with its subscription (plan and version), prepaid credit
balance and the amount its invoices still have due, and an organisation's own page (its subscriptions with the
current period, credit grants, invoices with their dunning state and e-invoice registration (IRN, Ack No and
date), its recurring mandates with their debits). Everything is read through the admin API's own route functions,
each of them a ``read`` route like the page's twin, so a page shows exactly what the API would and asks the same
permission."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import Response

from billing_runtime.errors import DomainError, NotFound
from services.gateway.entrypoints.http import admin, catalog, credits, dunning, einvoices, invoices, mandates, schemas
from services.gateway.entrypoints.http import catalog_schemas as cs
from services.gateway.entrypoints.http import credit_schemas as crs
from services.gateway.entrypoints.http import dunning_schemas as ds
from services.gateway.entrypoints.http import invoice_schemas as ins
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.rendering import PREFIX, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
ORGANISATIONS_PAGE = 25
# Invoices with money still to collect (paid, refunded, void and drafts have none).
OPEN_STATUSES = frozenset({"issued", "partially_paid", "overdue", "uncollectible"})
INVOICES_READ = 100
EINVOICES_READ = 500  # the most one page of the list holds


@dataclass
class Summary:
    """One organisation as the list shows it; amounts as (currency, decimal text), exact."""

    organisation: schemas.Organisation
    show: Presentation
    plans: list[tuple[cs.Subscription, cs.PlanVersion | None]] = field(default_factory=list)
    balances: list[crs.CreditBalance] = field(default_factory=list)
    due: list[tuple[str, str]] = field(default_factory=list)
    open_invoices: int = 0


def due_by_currency(listed: list[ins.Invoice]) -> tuple[list[tuple[str, str]], int]:
    """What the open invoices still have due, summed per currency in minor units (never floats), and how many."""
    totals: dict[str, int] = defaultdict(int)
    count = 0
    for invoice in listed:
        if invoice.status in OPEN_STATUSES and invoice.amount_due_minor:
            totals[invoice.currency] += invoice.amount_due_minor
            count += 1
    due = [(currency, minor_to_text(minor, currency) or str(minor)) for currency, minor in sorted(totals.items())]
    return due, count


class PlanVersions:
    """Plan versions asked once per page (many organisations share a plan)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.found: dict[str, asyncio.Task] = {}

    async def of(self, plan_version_id: str) -> cs.PlanVersion | None:
        if not plan_version_id:
            return None
        if plan_version_id not in self.found:
            self.found[plan_version_id] = asyncio.ensure_future(
                catalog.get_plan_version(plan_version_id, self.request))
        try:
            return await self.found[plan_version_id]
        except NotFound:
            return None


async def _read(request: Request, organisation_id: str, invoice_page: int):
    """The organisation's subscriptions, credit statement and latest invoices, asked at once."""
    return await asyncio.gather(
        catalog.list_subscriptions(request, organisation_id=organisation_id, page_size=20, page_token=""),
        credits.credit_balance(organisation_id, request),
        invoices.list_invoices(request, organisation_id=organisation_id, status=None, period_key="",
                               page_size=invoice_page, page_token=""),
    )


async def summary_of(request: Request, organisation: schemas.Organisation, versions: PlanVersions,
                     read=None) -> Summary:
    subscriptions, statement, listed = read or await _read(request, organisation.id, INVOICES_READ)
    found = Summary(organisation=organisation, show=Presentation.of(organisation.country, "UTC"))
    current = [s for s in subscriptions.data if s.state == "active"] or subscriptions.data[-1:]
    found.plans = [(s, await versions.of(s.plan_version_id)) for s in current]
    found.balances = [b for b in statement.balances if b.available_minor or b.pending_minor]
    found.due, found.open_invoices = due_by_currency(listed.data)
    return found


async def organisation_summaries(request: Request, page_token: str) -> tuple[list[Summary], str]:
    """A page of organisations (the admin API's list), each with its plan, credit and what it has due."""
    page = await admin.list_organisations(request, page_size=ORGANISATIONS_PAGE, page_token=page_token)
    versions = PlanVersions(request)
    summaries = await asyncio.gather(*(summary_of(request, o, versions) for o in page.data))
    return list(summaries), page.next_page_token


@router.get("/organisations/{organisation_id}")
async def organisation_detail(organisation_id: str, request: Request) -> Response:
    organisation = await admin.get_organisation(organisation_id, request)  # 404 first for an unknown id
    versions = PlanVersions(request)
    read = await _read(request, organisation_id, INVOICES_READ)
    subscriptions, statement, listed = read
    summary = await summary_of(request, organisation, versions, read)
    plans = [(s, await versions.of(s.plan_version_id)) for s in subscriptions.data]
    try:  # the current period as invoicing counts it (there is none without an active subscription)
        projected = await invoices.projected_invoice(organisation_id, request, forecast=False)
    except DomainError:
        projected = None
    open_invoices = [i for i in listed.data if i.status in OPEN_STATUSES]
    states = await asyncio.gather(*(_dunning(request, i.id) for i in open_invoices))
    dunning_of = dict(zip([i.id for i in open_invoices], states, strict=True))
    einvoice_of = await _einvoices(request, organisation_id)
    mandates_shown, mandates_note = await _mandates(request, organisation_id)
    return render(request, "operator/organisation.html", organisation=organisation, summary=summary,
                  plans=plans, statement=statement, invoices=listed.data[:50], projected=projected,
                  dunning_of=dunning_of, einvoice_of=einvoice_of, mandates=mandates_shown,
                  mandates_note=mandates_note, numbers={i.id: i.number for i in listed.data},
                  show=summary.show, title=organisation.name,
                  local=Presentation.of(organisation.country, organisation.timezone))


async def _einvoices(request: Request, organisation_id: str) -> dict[str, einvoices.EinvoiceRegistration]:
    """The organisation's invoices' own registrations with the IRP, by invoice (its credit notes' are left out)."""
    page = await einvoices.list_einvoices(request, status="all", organisation_id=organisation_id, invoice_id="",
                                          page_size=EINVOICES_READ, page_token="")
    return {r.invoice_id: r for r in page.data if r.document_id == r.invoice_id}


async def _mandates(request: Request, organisation_id: str
                    ) -> tuple[list[tuple[mandates.Mandate, list[mandates.AutoDebit]]], str]:
    """The organisation's mandates, newest first (finished ones too), each with its debits; or, when payments did
    not answer, why there is nothing to show (the rest of the page still shows)."""
    try:
        listed = (await mandates.list_mandates(organisation_id, request, include_finished=True)).data
        debits = await asyncio.gather(*(mandates.list_debits(m.id, request) for m in listed))
    except DomainError as error:
        return [], f"Mandates cannot be shown just now ({error})."
    return [(m, d.data) for m, d in zip(listed, debits, strict=True)], ""


@router.get("/organisations/{organisation_id}/period")
async def organisation_period(organisation_id: str, request: Request) -> Response:
    """The current billing period as invoicing counts it, in the organisation's own days: a fragment the
    organisations' list asks for each row once it is drawn (so the list paints first; the period needs the
    organisation's projected invoice, which reads usage)."""
    organisation = await admin.get_organisation(organisation_id, request)
    try:
        projected = await invoices.projected_invoice(organisation_id, request, forecast=False)
    except DomainError:
        projected = None
    local = Presentation.of(organisation.country, organisation.timezone)
    return render(request, "operator/organisation_period.html", projected=projected, local=local)


async def _dunning(request: Request, invoice_id: str) -> ds.Dunning | str:
    """Where the invoice's dunning stands, or in words why there is nothing to show: none (not due, nothing to
    pay, not yet seen by payments), or payments did not answer (the rest of the page still shows)."""
    try:
        return await dunning.get_dunning(invoice_id, request)
    except NotFound:
        return "none"
    except DomainError as error:
        return f"unknown ({error})"
