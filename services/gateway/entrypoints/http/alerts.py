"""Alert rules and fired alerts (admin), and the quota and entitlement checks (admin, and a project's API key
holder for its own organisation). Metering owns all of it; these routes only shape its answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from billing.metering.v1 import metering_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import alert_schemas, schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute
from services.gateway.entrypoints.http.ratelimit_fields import ratelimit_headers

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 503)}
admin_router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                         responses=_ERRORS, route_class=DecimalJsonRoute)
router = APIRouter(prefix="/api/v1", tags=["quotas"], responses=_ERRORS)

Metric = Annotated[str, Query(alias="metric", description="The metric's code", examples=["api_calls"])]
Quantity = Annotated[str, Query(description="How much is about to be used (a decimal); default 1")]
Feature = Annotated[str, Query(description="Only this feature (an unknown one answers not granted)")]


def _metering(request: Request):
    return request.app.state.clients.metering


@admin_router.post("/alert-rules", status_code=status.HTTP_201_CREATED, response_model=alert_schemas.AlertRule)
async def create_alert_rule(
    body: alert_schemas.AlertRuleCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Watch an organisation's usage (threshold, spike) or projected cost. Each level fires once per period,
    evaluated as events are metered; fired alerts are emailed and sent to the organisation's webhooks."""
    reply = await clients.call(_metering(request).CreateAlertRule, body.to_pb(idempotency_key))
    if reply.created:
        await audit(request, "alert_rule.create", "alert_rule", reply.rule.id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return alert_schemas.AlertRule.from_pb(reply.rule)


@admin_router.get("/alert-rules", response_model=schemas.Page[alert_schemas.AlertRule])
async def list_alert_rules(
    request: Request,
    organisation_id: Annotated[str, Query(description="The organisation whose rules to list")],
    include_deleted: bool = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    reply = await clients.call(
        _metering(request).ListAlertRules,
        metering_pb2.ListAlertRulesRequest(organisation_id=organisation_id, include_deleted=include_deleted,
                                           page_size=page_size, page_token=page_token),
    )
    return schemas.Page[alert_schemas.AlertRule](
        data=[alert_schemas.AlertRule.from_pb(r) for r in reply.rules], next_page_token=reply.next_page_token
    )


@admin_router.get("/alert-rules/{rule_id}", response_model=alert_schemas.AlertRule)
async def get_alert_rule(rule_id: str, request: Request):
    reply = await clients.call(_metering(request).GetAlertRule, metering_pb2.GetAlertRuleRequest(rule_id=rule_id))
    return alert_schemas.AlertRule.from_pb(reply.rule)


@admin_router.delete("/alert-rules/{rule_id}", response_model=alert_schemas.AlertRule)
async def delete_alert_rule(rule_id: str, request: Request):
    """Stop a rule. What it fired stays listed; deleting it again returns it unchanged."""
    reply = await clients.call(
        _metering(request).DeleteAlertRule, metering_pb2.DeleteAlertRuleRequest(rule_id=rule_id)
    )
    await audit(request, "alert_rule.delete", "alert_rule", rule_id)
    return alert_schemas.AlertRule.from_pb(reply.rule)


async def _fired_alerts(request: Request, organisation_id: str, rule_id: str, page_size: int, page_token: str):
    reply = await clients.call(
        _metering(request).ListFiredAlerts,
        metering_pb2.ListFiredAlertsRequest(organisation_id=organisation_id, rule_id=rule_id, page_size=page_size,
                                            page_token=page_token),
    )
    return schemas.Page[alert_schemas.FiredAlert](
        data=[alert_schemas.FiredAlert.from_pb(a) for a in reply.alerts], next_page_token=reply.next_page_token
    )


@admin_router.get("/fired-alerts", response_model=schemas.Page[alert_schemas.FiredAlert])
async def admin_fired_alerts(
    request: Request,
    organisation_id: Annotated[str, Query(description="The organisation whose alerts to list")],
    rule_id: Annotated[str, Query(description="Only this rule's")] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Alerts fired, newest first: the rule, the level, the value and the event that reached it, and when."""
    return await _fired_alerts(request, organisation_id, rule_id, page_size, page_token)


async def check_quota(
    request: Request, response: Response, organisation_id: str, metric: str, quantity: str
) -> alert_schemas.QuotaStatus:
    reply = await clients.call(
        _metering(request).CheckQuota,
        metering_pb2.CheckQuotaRequest(organisation_id=organisation_id, metric_code=metric, quantity=quantity),
    )
    response.headers.update(ratelimit_headers([reply.status], datetime.now(UTC)))
    return alert_schemas.QuotaStatus.from_pb(reply.status)


async def entitlements(request: Request, organisation_id: str, feature: str) -> alert_schemas.Entitlements:
    reply = await clients.call(
        _metering(request).GetEntitlements,
        metering_pb2.GetEntitlementsRequest(organisation_id=organisation_id, feature=feature),
    )
    return alert_schemas.Entitlements.from_pb(organisation_id, reply)


@admin_router.get("/quota", response_model=alert_schemas.QuotaStatus)
async def admin_quota(
    request: Request,
    response: Response,
    organisation_id: Annotated[str, Query(description="The organisation to check")],
    metric: Metric,
    quantity: Quantity = "",
):
    """Whether the organisation may use `quantity` more of the metric now, with used, limit, remaining, the reset
    time and why."""
    return await check_quota(request, response, organisation_id, metric, quantity)


@admin_router.get("/entitlements", response_model=alert_schemas.Entitlements)
async def admin_entitlements(
    request: Request,
    organisation_id: Annotated[str, Query(description="The organisation to ask about")],
    feature: Feature = "",
):
    """What the organisation's plan grants, with its overrides applied."""
    return await entitlements(request, organisation_id, feature)


@router.get("/quota", response_model=alert_schemas.QuotaStatus)
async def quota(
    request: Request, response: Response, scope: OrgScope, metric: Metric, quantity: Quantity = ""
):
    """May the API key's organisation use `quantity` more of the metric now? Allowed or denied, with used, limit,
    remaining, the reset time and why. Answers carry `RateLimit-Policy` / `RateLimit` where a quota applies.
    Usage may lag metering by the documented bound (docs/alerts-and-quotas.md)."""
    return await check_quota(request, response, scope.organisation_id, metric, quantity)


@router.get("/entitlements", response_model=alert_schemas.Entitlements)
async def key_entitlements(request: Request, scope: OrgScope, feature: Feature = ""):
    """What the API key's organisation may do: its plan's features, with organisation overrides applied."""
    return await entitlements(request, scope.organisation_id, feature)


@router.get("/alerts", response_model=schemas.Page[alert_schemas.FiredAlert])
async def key_fired_alerts(
    request: Request, scope: OrgScope, page_size: PageSize = 0, page_token: PageToken = ""
):
    """Alerts fired for the API key's organisation, newest first."""
    return await _fired_alerts(request, scope.organisation_id, "", page_size, page_token)
