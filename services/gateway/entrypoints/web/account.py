"""A customer's account pages: the plan picker (the plan in force beside the others: base fee, prices, quotas and
features; a change priced before it is confirmed, its proration shown, then made), the API keys of the
organisation's projects (a new key's secret shown once; revoking asks first), alert rules, webhook endpoints
with their deliveries, and the email log.

Each calls the customer API's own route function (``http/account.py``, ``http/webhook_endpoints.py``,
``http/notifications.py``) with the signed-in person's scope, so a member sees these pages and an owner also
changes things (``org_manage``), exactly as on the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from billing_runtime.errors import Unavailable
from services.gateway.entrypoints.http import account, alerts, notifications, webhook_endpoints
from services.gateway.entrypoints.http import webhook_endpoint_schemas as ws
from services.gateway.entrypoints.web.customer import organisation_of, page_scope
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_body, form_fields
from services.gateway.entrypoints.web.rendering import PREFIX, redirect, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def may_manage(request: Request) -> bool:
    """Whether to offer the changes (an owner); the API decides anyway."""
    principal = getattr(request.state, "principal", None)
    return principal is not None and principal.role.value == "owner"


async def _shown(request: Request):
    scope = page_scope(request)
    organisation = await organisation_of(request, scope)
    return scope, organisation, Presentation.of(organisation.country, organisation.timezone)


# --- the plan picker -------------------------------------------------------------------------------------------


def price_of(charge, show: Presentation, currency: str) -> str:
    """A charge's price in a few words (``₹0.05 each``, ``₹500.00 per 1,000``, tiers from ...)."""
    c = charge.charge
    if c.model == "per_unit":
        text = f"{show.money(c.unit_price, currency)} each"
    elif c.model == "package":
        text = f"{show.money(c.package_price, currency)} per {show.number(c.package_size)}"
    elif c.model == "flat":
        text = f"{show.money(c.flat_amount, currency)} a period"
    elif c.model in ("graduated", "volume") and c.tiers:
        first = c.tiers[0]
        text = f"{c.model} tiers, from {show.money(first.unit_price or '0', currency)} each"
    elif c.model == "percentage":
        text = f"{c.rate} % of each event's amount"
    else:
        text = c.model
    if c.free_units and Decimal(c.free_units) > 0:
        text += f", first {show.number(c.free_units)} free"
    return text


def feature_of(value) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(getattr(value, "number", value))


def comparison(choice: account.PlanChoice, show: Presentation, currency: str) -> dict[str, Any]:
    """Rows (base fee, each metric's price and quota, each feature) by columns (the plan in force, then the
    others), for one table a screen reader reads by its headers."""
    columns = []
    if choice.current is not None:
        columns.append({"code": choice.current.plan_code, "name": choice.current.plan_name, "current": True,
                        "terms": choice.current.terms})
    for plan in choice.plans:
        if choice.current is not None and plan.code == choice.current.plan_code:
            continue
        columns.append({"code": plan.code, "name": plan.name, "current": False, "terms": plan.latest_version.terms})
    metrics: dict[str, str] = {}
    features: list[str] = []
    for column in columns:
        for charge in column["terms"].charges:
            metrics.setdefault(charge.metric_code, charge.display_name or charge.metric_code)
        for quota in column["terms"].quotas:
            metrics.setdefault(quota.metric_code, quota.metric_code)
        features.extend(key for key in column["terms"].entitlements if key not in features)
    rows = [("Base fee a month", [show.money(c["terms"].base_fee or "0", currency) for c in columns])]
    for code, name in metrics.items():
        prices, quotas = [], []
        for column in columns:
            charge = next((ch for ch in column["terms"].charges if ch.metric_code == code), None)
            prices.append(price_of(charge, show, currency) if charge else "not charged")
            quota = next((q for q in column["terms"].quotas if q.metric_code == code), None)
            quotas.append(f"{show.number(quota.limit)} ({quota.cap} cap)" if quota else "no quota")
        rows.append((f"{name}: price", prices))
        rows.append((f"{name}: quota", quotas))
    for key in features:
        rows.append((f"Feature: {key}", [feature_of(c["terms"].entitlements[key]) if key in c["terms"].entitlements
                                         else "—" for c in columns]))
    return {"columns": columns, "rows": rows}


@router.get("/plan")
async def plan(request: Request, changed: str = "") -> Response:
    scope, organisation, show = await _shown(request)
    choice = await account.my_plans(request, scope)
    return render(request, "customer/plan.html", organisation=organisation, show=show, choice=choice,
                  table=comparison(choice, show, organisation.billing_currency), may_manage=may_manage(request),
                  changed=changed[:64], title="Plan")


def _change(fields: dict[str, str]) -> account.PlanChange:
    return form_body(account.PlanChange, {"plan_code": fields.get("plan_code", ""),
                                      "effective_date": fields.get("effective_date") or None})


@router.get("/plan/preview")
async def plan_preview(request: Request, plan_code: str = "", effective_date: str = "") -> Response:
    """The change priced (``GET /api/v1/subscription/change-plan/preview``): the period as it stands beside the
    period as if changed, and the confirmation."""
    scope, organisation, show = await _shown(request)
    change = _change({"plan_code": plan_code[:100], "effective_date": effective_date[:40]})
    preview = await account.my_plan_change_preview(change, request, scope)
    difference = show.money(preview.difference, preview.changed.currency)
    if preview.difference and Decimal(preview.difference) > 0:
        difference = "+" + difference
    return render(request, "customer/_plan_preview.html", show=show, preview=preview, difference=difference,
                  may_manage=may_manage(request))


@router.post("/plan/change")
async def plan_change(request: Request) -> Response:
    """``POST /api/v1/subscription/change-plan``, then the plan page showing the plan now in force."""
    scope = page_scope(request)
    change = _change(await form_fields(request))
    await account.my_change_plan(change, request, Response(), scope)
    return redirect(request, f"{PREFIX}/plan?changed={change.plan_code}")


# --- API keys --------------------------------------------------------------------------------------------------


@router.get("/api-keys")
async def api_keys(request: Request) -> Response:
    scope, organisation, show = await _shown(request)
    projects = await account.my_api_keys(request, scope)
    return render(request, "customer/api_keys.html", organisation=organisation, show=show, projects=projects,
                  may_manage=may_manage(request), title="API keys")


@router.post("/api-keys")
async def create_api_key(request: Request) -> Response:
    """``POST /api/v1/api-keys``: the new key with its secret, shown this once (the list reloads without it)."""
    scope, organisation, show = await _shown(request)
    fields = await form_fields(request)
    body = form_body(account.ApiKeyCreate, {"project_id": fields.get("project_id", ""),
                                        "name": fields.get("name", "").strip()})
    key = await account.my_create_api_key(body, request, scope)
    return render(request, "customer/_api_key_created.html", key=key, show=show)


@router.post("/api-keys/{api_key_id}/revoke")
async def revoke_api_key(api_key_id: str, request: Request) -> Response:
    await account.my_revoke_api_key(api_key_id, request, page_scope(request))
    return redirect(request, f"{PREFIX}/api-keys")


# --- alert rules -----------------------------------------------------------------------------------------------


@router.get("/alerts")
async def alert_rules(request: Request) -> Response:
    scope, organisation, show = await _shown(request)
    rules = await account.my_alert_rules(request, scope)
    fired = (await alerts.key_fired_alerts(request, scope, page_size=50, page_token="")).data
    return render(request, "customer/alerts.html", organisation=organisation, show=show, rules=rules.data,
                  fired=fired, may_manage=may_manage(request), title="Alerts")


@router.post("/alerts")
async def create_alert(request: Request) -> Response:
    """``POST /api/v1/alert-rules``: a threshold on a metric, in usage or in percent of the quota."""
    scope = page_scope(request)
    fields = await form_fields(request)
    levels = [level.strip() for level in fields.get("levels", "").split(",") if level.strip()]
    body = form_body(account.AlertRuleCreate, {
        "kind": "threshold", "name": fields.get("name", "").strip(), "metric_code": fields.get("metric_code", ""),
        "basis": fields.get("basis") or "absolute", "levels": levels})
    await account.my_create_alert_rule(body, request, Response(), scope,
                                       idempotency_key=request.headers.get("Idempotency-Key", ""))
    return redirect(request, f"{PREFIX}/alerts")


@router.post("/alerts/{rule_id}/delete")
async def delete_alert(rule_id: str, request: Request) -> Response:
    await account.my_delete_alert_rule(rule_id, request, page_scope(request))
    return redirect(request, f"{PREFIX}/alerts")


# --- webhook endpoints and the email log -----------------------------------------------------------------------


@router.get("/webhooks")
async def webhooks(request: Request) -> Response:
    scope, organisation, show = await _shown(request)
    try:
        endpoints = (await webhook_endpoints.my_endpoints(request, scope, page_size=50, page_token="")).data
        deliveries = (await webhook_endpoints.my_deliveries(request, scope, endpoint_id="", state=None,
                                                            page_size=50, page_token="")).data
        note = ""
    except Unavailable:  # notification owns them; the page says so rather than failing
        endpoints, deliveries, note = [], [], "Webhooks cannot be shown just now; try again in a minute."
    return render(request, "customer/webhooks.html", organisation=organisation, show=show, endpoints=endpoints,
                  deliveries=deliveries, note=note, may_manage=may_manage(request) and not note, title="Webhooks")


@router.post("/webhooks")
async def create_webhook(request: Request) -> Response:
    """``POST /api/v1/webhook-endpoints``: the new endpoint with its signing secret, shown this once."""
    scope, organisation, show = await _shown(request)
    fields = await form_fields(request)
    types = [t.strip() for t in fields.get("event_types", "").split(",") if t.strip()]
    body = form_body(ws.EndpointCreate, {"url": fields.get("url", "").strip(), "event_types": types,
                                     "description": fields.get("description", "").strip()})
    endpoint = await webhook_endpoints.my_create_endpoint(body, request, scope)
    return render(request, "customer/_webhook_created.html", endpoint=endpoint)


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_webhook(endpoint_id: str, request: Request) -> Response:
    await webhook_endpoints.my_delete_endpoint(endpoint_id, request, page_scope(request))
    return redirect(request, f"{PREFIX}/webhooks")


@router.get("/emails")
async def emails(request: Request, page_token: str = "") -> Response:
    """``GET /api/v1/messages``: every email sent (or being sent) to the organisation, newest first."""
    scope, organisation, show = await _shown(request)
    try:
        page = await notifications.my_messages(request, scope, invoice_id="", kind=None, state=None, page_size=50,
                                               page_token=page_token)
        messages, next_token, note = page.data, page.next_page_token, ""
    except Unavailable:
        messages, next_token, note = [], "", "The email log cannot be shown just now; try again in a minute."
    return render(request, "customer/emails.html", organisation=organisation, show=show, messages=messages,
                  next_page_token=next_token, note=note, title="Emails")
