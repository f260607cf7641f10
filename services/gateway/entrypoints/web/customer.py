"""A customer's pages (organisation users, their own organisation only): the overview (plan, period, a meter per
metric, the projected invoice), usage by day, and invoices with their PDF (an invoice's own page, with
Pay, is in ``paying.py``). Each page calls the REST API's own
route functions with the signed-in person's scope, so the answers and refusals are the API's (another
organisation's invoice is 404 here as there)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.errors import InvalidArgument, PermissionDenied, Unauthenticated
from services.gateway.entrypoints.http import alerts, invoices, schemas, usage
from services.gateway.entrypoints.http.api_key import Scope
from services.gateway.entrypoints.web.formatting import Meter, Presentation, zone_of
from services.gateway.entrypoints.web.rendering import PREFIX, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

MAX_GROUP_BY = 64


def page_scope(request: Request) -> Scope:
    """The signed-in organisation user's organisation (what ``api_key.org_scope`` gives their API calls); pages
    never act for a project key."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthenticated("sign in to see your organisation's pages")
    if not principal.organisation_id:
        raise PermissionDenied("these are an organisation's pages; operators use /app/operator")
    return Scope(organisation_id=principal.organisation_id, actor=principal.actor)


async def organisation_of(request: Request, scope: Scope) -> schemas.Organisation:
    reply = await clients.call(request.app.state.clients.invoicing.GetOrganisation,
                               invoicing_pb2.GetOrganisationRequest(organisation_id=scope.organisation_id))
    return schemas.Organisation.from_pb(reply.organisation)


def _metrics_of(projected) -> list[tuple[str, str]]:
    """(code, name) of every metric the plan charges for, in the invoice's order (not late usage of an earlier
    period: its metric may be one the plan no longer charges)."""
    seen: dict[str, str] = {}
    for line in projected.lines:
        if line.metric_code and line.kind != "usage_adjustment" and line.metric_code not in seen:
            seen[line.metric_code] = line.description or line.metric_code
    return list(seen.items())


@router.get("/overview")
async def overview(request: Request) -> Response:
    scope = page_scope(request)
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    projected = await invoices.my_projected_invoice(request, scope, forecast=False)
    plan = await alerts.key_entitlements(request, scope, feature="")
    fired = (await alerts.key_fired_alerts(request, scope, page_size=100, page_token="")).data
    meters = []
    for code, name in _metrics_of(projected):
        quota = await alerts.quota(request, Response(), scope, metric=code, quantity="")
        alert = next((a for a in fired if a.metric_code == code and a.period_start == projected.period_start), None)
        meters.append({"code": code, "name": name, "quota": quota, "meter": Meter.of(quota.used, quota.limit),
                       "alert": alert})
    return render(request, "customer/overview.html", organisation=organisation, show=show, projected=projected,
                  plan=plan, meters=meters, title="Overview")


@router.get("/usage")
async def usage_page(request: Request, metric: str = "", group_by: str = "") -> Response:
    scope = page_scope(request)
    if len(group_by) > MAX_GROUP_BY:
        raise InvalidArgument(f"is longer than {MAX_GROUP_BY} characters", field="group_by")
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    projected = await invoices.my_projected_invoice(request, scope, forecast=False)
    metrics = _metrics_of(projected)
    metric = metric or (metrics[0][0] if metrics else "")
    found = None
    if metric:
        params = usage.UsageParams(metric=metric, start=projected.period_start, end=datetime.now(UTC), window="day",
                                   time_zone=show.time_zone, group_by=group_by)
        found = await usage.project_usage(request, params, scope)
    days: list[str] = []
    series: dict[str, dict[str, str]] = {}
    for row in found.rows if found else []:
        day = row.start.astimezone(zone_of(show.time_zone)).date().isoformat()
        if day not in days:
            days.append(day)
        series.setdefault(row.group_value or ("all" if not group_by else "(none)"), {})[day] = row.value
    chart = {
        "labels": days,
        # Chart.js draws numbers; the exact decimals are in the table beside it.
        "datasets": [{"label": name, "data": [float(Decimal(values.get(d, "0"))) for d in days]}
                     for name, values in series.items()],
        "unit": metric,
    }
    # In a <script type="application/json"> block: no "<" may end it early (dimension values are the customer's).
    chart_json = json.dumps(chart).replace("<", "\\u003c")
    return render(request, "customer/usage.html", organisation=organisation, show=show, metrics=metrics,
                  metric=metric, group_by=group_by, days=days, series=series, chart_json=chart_json,
                  projected=projected, title="Usage")


@router.get("/invoices")
async def invoice_list(request: Request, page_token: str = "") -> Response:
    scope = page_scope(request)
    organisation = await organisation_of(request, scope)
    show = Presentation.of(organisation.country, organisation.timezone)
    page = await invoices.my_invoices(request, scope, status=None, period_key="", page_size=50,
                                      page_token=page_token)
    return render(request, "customer/invoices.html", organisation=organisation, show=show, page=page,
                  title="Invoices")


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_pdf(invoice_id: str, request: Request) -> Response:
    return await invoices.my_invoice_pdf(invoice_id, request, page_scope(request))
