"""The customer's own account on the customer's API (``/api/v1``, the caller's organisation only): the plans it
may move to and a plan change, priced before it is made (its proration) and then made; the API keys of its
projects; its alert rules. The dashboard's plan, API key and alert pages call these functions.

Reads take ``org_read`` (a member, or a project's key). Changes take ``org_manage`` (an owner) and a person:
a project's API key cannot change the plan, mint or revoke keys, or change what alerts the people of the
organisation, whatever the table lets it open (a leaked ingest key must not widen itself). Every change is in
the audit log with the person as its actor, as the admin API's twin records it for staff.

The work is the admin routes' own: the same invoicing use case (``ChangeSubscriptionPlan``, and
``GetProjectedInvoice`` pricing the period as if changed), ingest's keys, metering's rules; these routes only
narrow them to the caller's organisation (another organisation's key, project or rule is 404, as a made-up one)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from billing.ingest.v1 import ingest_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing.metering.v1 import metering_pb2
from billing_runtime import clients
from billing_runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http import alert_schemas, schemas
from services.gateway.entrypoints.http import catalog_schemas as cs
from services.gateway.entrypoints.http import invoice_schemas as ins
from services.gateway.entrypoints.http.admin import IdempotencyKey, audit
from services.gateway.entrypoints.http.api_key import OrgScope, Scope
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.http.schemas import Request as Body

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 422, 503)}
router = APIRouter(prefix="/api/v1", tags=["your account"], responses=_ERRORS, route_class=DecimalJsonRoute)

# One page of each: an organisation has a handful of projects and keys; the catalogue a few plans.
MAX_PLANS = 100
MAX_PROJECTS = 100
MAX_KEYS_PER_PROJECT = 100


def a_person(scope: Scope, what: str) -> None:
    """Changes to the account are a person's (an owner's), never a project key's."""
    if scope.project is not None:
        raise PermissionDenied(f"a project's API key cannot {what}; sign in as an owner of the organisation")


def _invoicing(request: Request):
    return request.app.state.clients.invoicing


# --- plans ---------------------------------------------------------------------------------------------------


class PlanChoice(BaseModel):
    """The organisation's subscription and the plan version in force, and the plans it may move to."""

    subscription: cs.Subscription | None = Field(description="The active subscription; null when there is none")
    current: cs.PlanVersion | None = Field(description="The plan version in force now")
    plans: list[cs.Plan] = Field(description="The listed plans of the catalogue (`terms.listed`) priced in the "
                                             "organisation's billing currency, with their latest versions")


class PlanChange(Body):
    plan_code: str = Field(min_length=1, max_length=64, description="The plan to move to (its latest version)",
                           examples=["enterprise"])
    effective_date: date | None = Field(None, description="The change takes effect at the start of this day in "
                                                          "the organisation's time zone; default today")


class PlanChangePreview(BaseModel):
    """The current period priced as it stands and as it would be after the change: the base fees prorated by
    days on each side of the change, usage priced on the plan in force when it happened."""

    plan_code: str
    plan_name: str
    effective_date: date | None
    current: ins.Invoice = Field(description="The period so far, as it stands (projected)")
    changed: ins.Invoice = Field(description="The period so far, as if the change had been made (projected)")
    difference: str | None = Field(description="changed.total less current.total, in the invoice's currency",
                                   examples=["-480.00"])


async def _subscription(request: Request, organisation_id: str) -> invoicing_pb2.Subscription | None:
    reply = await clients.call(_invoicing(request).ListSubscriptions, invoicing_pb2.ListSubscriptionsRequest(
        organisation_id=organisation_id, page_size=100))
    active = [s for s in reply.subscriptions if s.state == invoicing_pb2.SUBSCRIPTION_STATE_ACTIVE]
    return active[-1] if active else None


async def _active(request: Request, organisation_id: str) -> invoicing_pb2.Subscription:
    subscription = await _subscription(request, organisation_id)
    if subscription is None:
        raise FailedPrecondition("the organisation has no active subscription to change")
    return subscription


@router.get("/plans", response_model=PlanChoice, summary="Your plan, and the plans you may move to")
async def my_plans(request: Request, scope: OrgScope):
    """The subscription, the plan version in force (prices, quotas, entitlements) and the plans it may move
    to: the catalogue's listed plans (`terms.listed`, an operator's choice) in its billing currency."""
    subscription = await _subscription(request, scope.organisation_id)
    current = None
    if subscription is not None and subscription.plan_version_id:
        current = cs.PlanVersion.from_pb((await clients.call(
            _invoicing(request).GetPlanVersion,
            invoicing_pb2.GetPlanVersionRequest(plan_version_id=subscription.plan_version_id))).plan_version)
    plans = [cs.Plan.from_pb(p) for p in (await _offered(request, scope.organisation_id)).values()]
    return PlanChoice(subscription=cs.Subscription.from_pb(subscription) if subscription else None,
                      current=current, plans=plans)


async def _offered(request: Request, organisation_id: str) -> dict[str, invoicing_pb2.Plan]:
    """The plans an organisation's people may see and move to, by code: listed, in its billing currency."""
    organisation = (await clients.call(_invoicing(request).GetOrganisation, invoicing_pb2.GetOrganisationRequest(
        organisation_id=organisation_id))).organisation
    found = await clients.call(_invoicing(request).ListPlans, invoicing_pb2.ListPlansRequest(page_size=MAX_PLANS))
    return {p.code: p for p in found.plans if p.HasField("latest_version") and p.latest_version.terms.listed
            and p.latest_version.terms.currency == organisation.billing_currency}


async def _offered_plan(request: Request, scope: Scope, plan_code: str) -> invoicing_pb2.Plan:
    """The plan if the organisation may move to it; another plan is not found, exactly as a made-up one."""
    plan = (await _offered(request, scope.organisation_id)).get(plan_code)
    if plan is None:
        raise NotFound(f"plan {plan_code} not found", field="plan_code")
    return plan


@router.get("/subscription/change-plan/preview", response_model=PlanChangePreview,
            summary="Price a plan change before making it")
async def my_plan_change_preview(body: Annotated[PlanChange, Query()], request: Request, scope: OrgScope):
    """The period so far as it stands and as if the change were made (nothing is stored): the proration of the
    base fees and the usage priced on each side. Refused as the change itself would be (400 naming
    `effective_date` or `plan_version_id`, 422 for a canceled subscription)."""
    plan = await _offered_plan(request, scope, body.plan_code)
    subscription = await _active(request, scope.organisation_id)
    effective = body.effective_date.isoformat() if body.effective_date else ""
    current = await clients.call(_invoicing(request).GetProjectedInvoice, invoicing_pb2.GetProjectedInvoiceRequest(
        organisation_id=scope.organisation_id))
    changed = await clients.call(_invoicing(request).GetProjectedInvoice, invoicing_pb2.GetProjectedInvoiceRequest(
        organisation_id=scope.organisation_id, plan_change=invoicing_pb2.ProjectedPlanChange(
            subscription_id=subscription.id, plan_code=body.plan_code, effective_date=effective)))
    before, after = ins.Invoice.from_pb(current.invoice), ins.Invoice.from_pb(changed.invoice)
    difference = minor_to_text(changed.invoice.total_minor - current.invoice.total_minor, after.currency)
    return PlanChangePreview(plan_code=body.plan_code, plan_name=plan.name, effective_date=body.effective_date,
                             current=before, changed=after, difference=difference)


@router.post("/subscription/change-plan", response_model=cs.Subscription, summary="Move to another plan")
async def my_change_plan(body: PlanChange, request: Request, response: Response, scope: OrgScope):
    """The admin's change (`POST /api/v1/admin/subscriptions/{id}/change-plan`) on the organisation's active
    subscription: from the start of `effective_date` (today) in its time zone, base fees prorated by days.
    Repeating it changes nothing (`Idempotent-Replayed: true`). Only to a listed plan (another is 404, as a
    made-up code). An owner's, signed in; audited `subscription.change_plan`."""
    a_person(scope, "change the plan")
    await _offered_plan(request, scope, body.plan_code)
    subscription = await _active(request, scope.organisation_id)
    reply = await clients.call(_invoicing(request).ChangeSubscriptionPlan, cs.SubscriptionChangePlan(
        plan_code=body.plan_code, effective_date=body.effective_date).to_pb(subscription.id))
    if reply.changed:
        await audit(request, "subscription.change_plan", "subscription", subscription.id, actor=scope.actor,
                    before={"plan_version_id": subscription.plan_version_id},
                    after={"plan_version_id": reply.subscription.plan_version_id})
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return cs.Subscription.from_pb(reply.subscription)


# --- API keys --------------------------------------------------------------------------------------------------


class ProjectKeys(BaseModel):
    project: schemas.Project
    api_keys: list[schemas.ApiKey] = Field(description="Newest last, never their secrets")


class ApiKeyCreate(Body):
    project_id: str = Field(max_length=64)
    name: str = Field("", max_length=100, examples=["backend"])
    expires_at: datetime | None = Field(None, description="Optional; must be in the future")


async def _projects(request: Request, organisation_id: str) -> list[ingest_pb2.Project]:
    reply = await clients.call(request.app.state.clients.ingest.ListProjects, ingest_pb2.ListProjectsRequest(
        organisation_id=organisation_id, page_size=MAX_PROJECTS))
    return list(reply.projects)


async def _keys(request: Request, project_id: str) -> list[ingest_pb2.ApiKey]:
    reply = await clients.call(request.app.state.clients.ingest.ListApiKeys, ingest_pb2.ListApiKeysRequest(
        project_id=project_id, page_size=MAX_KEYS_PER_PROJECT))
    return list(reply.api_keys)


@router.get("/api-keys", response_model=list[ProjectKeys], summary="The API keys of your organisation's projects")
async def my_api_keys(request: Request, scope: OrgScope):
    """Each project of the organisation with its keys: name, prefix, state, dates; never a secret."""
    return [ProjectKeys(project=schemas.Project.from_pb(p), api_keys=[schemas.ApiKey.from_pb(k)
                                                                      for k in await _keys(request, p.id)])
            for p in await _projects(request, scope.organisation_id)]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=schemas.ApiKeyWithSecret,
             summary="Mint an API key for one of your projects")
async def my_create_api_key(body: ApiKeyCreate, request: Request, scope: OrgScope):
    """The `secret` is in this answer only (ingest keeps a hash). 404 for another organisation's project. An
    owner's, signed in; audited `api_key.create`."""
    a_person(scope, "mint API keys")
    if body.project_id not in {p.id for p in await _projects(request, scope.organisation_id)}:
        raise NotFound(f"project {body.project_id} not found", field="project_id")
    message = ingest_pb2.CreateApiKeyRequest(project_id=body.project_id, name=body.name)
    if body.expires_at is not None:
        message.expire_time.CopyFrom(to_timestamp(body.expires_at))
    reply = await clients.call(request.app.state.clients.ingest.CreateApiKey, message)
    await audit(request, "api_key.create", "api_key", reply.api_key.id, actor=scope.actor)
    key = schemas.ApiKey.from_pb(reply.api_key)
    return schemas.ApiKeyWithSecret(**key.model_dump(), secret=reply.secret)


@router.post("/api-keys/{api_key_id}/revoke", response_model=schemas.ApiKey,
             summary="Revoke one of your projects' API keys")
async def my_revoke_api_key(api_key_id: str, request: Request, scope: OrgScope):
    """At once; revoking a revoked key returns it unchanged. 404 for another organisation's key. An owner's,
    signed in; audited `api_key.revoke`."""
    owned = {k.id for p in await _projects(request, scope.organisation_id) for k in await _keys(request, p.id)}
    if api_key_id not in owned:  # another organisation's key is not found for anyone, as a made-up one
        raise NotFound(f"API key {api_key_id} not found", field="api_key_id")
    a_person(scope, "revoke API keys")
    reply = await clients.call(request.app.state.clients.ingest.RevokeApiKey,
                               ingest_pb2.RevokeApiKeyRequest(api_key_id=api_key_id))
    await audit(request, "api_key.revoke", "api_key", api_key_id, actor=scope.actor)
    return schemas.ApiKey.from_pb(reply.api_key)


# --- alert rules -----------------------------------------------------------------------------------------------


class AlertRuleCreate(alert_schemas.AlertRuleCreate):
    organisation_id: str = Field("", description="Leave out: always your organisation")


def _metering(request: Request):
    return request.app.state.clients.metering


async def own_rule(request: Request, scope: Scope, rule_id: str) -> metering_pb2.AlertRule:
    try:
        rule = (await clients.call(_metering(request).GetAlertRule,
                                   metering_pb2.GetAlertRuleRequest(rule_id=rule_id))).rule
    except NotFound:
        rule = None
    if rule is None or rule.organisation_id != scope.organisation_id:
        raise NotFound(f"alert rule {rule_id} not found", field="rule_id")
    return rule


@router.get("/alert-rules", response_model=schemas.Page[alert_schemas.AlertRule],
            summary="Your organisation's alert rules")
async def my_alert_rules(request: Request, scope: OrgScope, page_token: str = ""):
    reply = await clients.call(_metering(request).ListAlertRules, metering_pb2.ListAlertRulesRequest(
        organisation_id=scope.organisation_id, page_size=100, page_token=page_token))
    return schemas.Page[alert_schemas.AlertRule](data=[alert_schemas.AlertRule.from_pb(r) for r in reply.rules],
                                                 next_page_token=reply.next_page_token)


@router.post("/alert-rules", status_code=status.HTTP_201_CREATED, response_model=alert_schemas.AlertRule,
             summary="Watch your organisation's usage or cost")
async def my_create_alert_rule(body: AlertRuleCreate, request: Request, response: Response, scope: OrgScope,
                               idempotency_key: IdempotencyKey = ""):
    """As the admin's rule, for the caller's organisation. An owner's, signed in; audited `alert_rule.create`."""
    a_person(scope, "change alert rules")
    if body.organisation_id not in ("", scope.organisation_id):
        raise NotFound(f"organisation {body.organisation_id} not found", field="organisation_id")
    mine = body.model_copy(update={"organisation_id": scope.organisation_id})
    reply = await clients.call(_metering(request).CreateAlertRule, mine.to_pb(idempotency_key))
    if reply.created:
        await audit(request, "alert_rule.create", "alert_rule", reply.rule.id, actor=scope.actor)
    else:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return alert_schemas.AlertRule.from_pb(reply.rule)


@router.delete("/alert-rules/{rule_id}", response_model=alert_schemas.AlertRule,
               summary="Stop one of your organisation's alert rules")
async def my_delete_alert_rule(rule_id: str, request: Request, scope: OrgScope):
    """What it fired stays listed. 404 for another organisation's rule. An owner's; audited `alert_rule.delete`."""
    await own_rule(request, scope, rule_id)  # another organisation's: not found for anyone, as a made-up one
    a_person(scope, "change alert rules")
    reply = await clients.call(_metering(request).DeleteAlertRule,
                               metering_pb2.DeleteAlertRuleRequest(rule_id=rule_id))
    await audit(request, "alert_rule.delete", "alert_rule", rule_id, actor=scope.actor)
    return alert_schemas.AlertRule.from_pb(reply.rule)
