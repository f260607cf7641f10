"""/api/v1/admin catalog routes: plans and their versions, subscriptions and exchange rates (invoicing's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.errors import NotFound
from services.gateway.entrypoints.http import catalog_schemas as cs
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, audit, require_admin
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute

router = APIRouter(
    prefix="/api/v1/admin",
    dependencies=[Depends(require_admin)],
    route_class=DecimalJsonRoute,
    responses={code: {"model": schemas.Error} for code in (400, 401, 404, 409, 422, 503)},
)
_EXCHANGE_RATE_FIELDS = field_paths.renamed({"effective_time": "effective_at"})


def _invoicing(request: Request):
    return request.app.state.clients.invoicing


def _replayed(response: Response, created: bool) -> None:
    if not created:
        response.headers["Idempotent-Replayed"] = "true"


# --- plans ---------------------------------------------------------------------------------------------------


@router.post("/plans", status_code=status.HTTP_201_CREATED, response_model=cs.Plan, tags=["plans"],
             summary="Create a plan with its first version")
async def create_plan(
    body: cs.PlanCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Create a plan: a code, a name and its terms (currency, base fee, a charge per metric, quotas, GST).

    Prices are decimal strings (or JSON numbers, read exactly). Bad terms answer 400 naming the field, e.g.
    `terms.charges[0].charge.tiers[1].up_to` for overlapping tiers; nothing is stored. A plan code already
    taken is 409. Retrying with the same `Idempotency-Key` returns the first plan (`Idempotent-Replayed: true`).
    """
    reply = await field_paths.call(_invoicing(request).CreatePlan, body.to_pb(idempotency_key), field_paths.in_terms)
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "plan.create", "plan", reply.plan.id)
    return cs.Plan.from_pb(reply.plan)


@router.get("/plans", response_model=schemas.Page[cs.Plan], tags=["plans"], summary="List plans")
async def list_plans(
    request: Request,
    code: Annotated[str, Query(description="Only the plan with this code (a page of one, or none)")] = "",
    page_size: PageSize = 0,
    page_token: str = "",
):
    """Plans with their latest version, oldest first."""
    if code:
        try:
            reply = await clients.call(_invoicing(request).GetPlan, invoicing_pb2.GetPlanRequest(code=code))
        except NotFound:
            return schemas.Page[cs.Plan](data=[], next_page_token="")
        return schemas.Page[cs.Plan](data=[cs.Plan.from_pb(reply.plan)], next_page_token="")
    reply = await clients.call(
        _invoicing(request).ListPlans, invoicing_pb2.ListPlansRequest(page_size=page_size, page_token=page_token)
    )
    return schemas.Page[cs.Plan](data=[cs.Plan.from_pb(p) for p in reply.plans],
                                 next_page_token=reply.next_page_token)


@router.get("/plans/{plan_id}", response_model=cs.Plan, tags=["plans"], summary="Get a plan")
async def get_plan(plan_id: str, request: Request):
    """A plan with its latest version."""
    reply = await clients.call(_invoicing(request).GetPlan, invoicing_pb2.GetPlanRequest(plan_id=plan_id))
    return cs.Plan.from_pb(reply.plan)


@router.post("/plans/{plan_id}/versions", status_code=status.HTTP_201_CREATED, response_model=cs.PlanVersion,
             tags=["plans"], summary="Edit a plan: its new terms become a new version")
async def create_plan_version(
    plan_id: str, body: cs.PlanVersionCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = "",
):
    """New terms for a plan, as its next version. Subscriptions stay on the version they have until moved with
    `change-plan`; new subscriptions by `plan_code` get this version."""
    reply = await field_paths.call(_invoicing(request).CreatePlanVersion, body.to_pb(plan_id, idempotency_key),
                                   field_paths.in_terms)
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "plan_version.create", "plan_version", reply.plan_version.id, reason=body.reason,
                    after={"plan_id": plan_id, "version": reply.plan_version.version})
    return cs.PlanVersion.from_pb(reply.plan_version)


@router.get("/plans/{plan_id}/versions", response_model=schemas.Page[cs.PlanVersion], tags=["plans"],
            summary="List a plan's versions")
async def list_plan_versions(plan_id: str, request: Request):
    """Every version of a plan, oldest first (one page)."""
    reply = await clients.call(
        _invoicing(request).ListPlanVersions, invoicing_pb2.ListPlanVersionsRequest(plan_id=plan_id)
    )
    return schemas.Page[cs.PlanVersion](data=[cs.PlanVersion.from_pb(v) for v in reply.plan_versions],
                                        next_page_token="")


@router.get("/plan-versions/{plan_version_id}", response_model=cs.PlanVersion, tags=["plans"],
            summary="Get a plan version")
async def get_plan_version(plan_version_id: str, request: Request):
    reply = await clients.call(
        _invoicing(request).GetPlanVersion, invoicing_pb2.GetPlanVersionRequest(plan_version_id=plan_version_id)
    )
    return cs.PlanVersion.from_pb(reply.plan_version)


# --- subscriptions -------------------------------------------------------------------------------------------


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, response_model=cs.Subscription,
             tags=["subscriptions"], summary="Put an organisation on a plan")
async def create_subscription(
    body: cs.SubscriptionCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Subscribe an organisation to a plan version (or a plan's latest version by `plan_code`) from a date in the
    organisation's time zone. One active subscription per organisation; a start before the organisation existed
    is 400 naming `start_date`."""
    reply = await clients.call(_invoicing(request).CreateSubscription, body.to_pb(idempotency_key))
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "subscription.create", "subscription", reply.subscription.id)
    return cs.Subscription.from_pb(reply.subscription)


@router.get("/subscriptions", response_model=schemas.Page[cs.Subscription], tags=["subscriptions"],
            summary="List subscriptions")
async def list_subscriptions(
    request: Request,
    organisation_id: Annotated[str, Query(description="Only this organisation's; empty for all")] = "",
    page_size: PageSize = 0,
    page_token: str = "",
):
    """Subscriptions with their phases, oldest first."""
    reply = await clients.call(
        _invoicing(request).ListSubscriptions,
        invoicing_pb2.ListSubscriptionsRequest(organisation_id=organisation_id, page_size=page_size,
                                               page_token=page_token),
    )
    return schemas.Page[cs.Subscription](data=[cs.Subscription.from_pb(s) for s in reply.subscriptions],
                                         next_page_token=reply.next_page_token)


@router.get("/subscriptions/{subscription_id}", response_model=cs.Subscription, tags=["subscriptions"],
            summary="Get a subscription")
async def get_subscription(subscription_id: str, request: Request):
    reply = await clients.call(
        _invoicing(request).GetSubscription, invoicing_pb2.GetSubscriptionRequest(subscription_id=subscription_id)
    )
    return cs.Subscription.from_pb(reply.subscription)


@router.post("/subscriptions/{subscription_id}/change-plan", response_model=cs.Subscription,
             tags=["subscriptions"], summary="Move a subscription to another plan version")
async def change_subscription_plan(
    subscription_id: str, body: cs.SubscriptionChangePlan, request: Request, response: Response
):
    """From the start of `effective_date` in the organisation's zone: the base fee is prorated by days, and usage
    on each side of the change is priced on the plan in force. Repeating the same change changes nothing
    (`Idempotent-Replayed: true`)."""
    reply = await clients.call(_invoicing(request).ChangeSubscriptionPlan, body.to_pb(subscription_id))
    _replayed(response, reply.changed)
    if reply.changed:
        await audit(request, "subscription.change_plan", "subscription", subscription_id)
    return cs.Subscription.from_pb(reply.subscription)


@router.post("/subscriptions/{subscription_id}/cancel", response_model=cs.Subscription, tags=["subscriptions"],
             summary="Cancel a subscription")
async def cancel_subscription(
    subscription_id: str, request: Request,
    body: Annotated[cs.SubscriptionCancel | None, Body(examples=[{"at_period_end": True}])] = None,
):
    """At the end of the current billing period (the default), or now with `{"at_period_end": false}`.
    Cancelling again returns the subscription unchanged."""
    at_period_end = True if body is None else body.at_period_end
    reply = await clients.call(
        _invoicing(request).CancelSubscription,
        invoicing_pb2.CancelSubscriptionRequest(subscription_id=subscription_id, at_period_end=at_period_end),
    )
    await audit(request, "subscription.cancel", "subscription", subscription_id)
    return cs.Subscription.from_pb(reply.subscription)


# --- exchange rates ------------------------------------------------------------------------------------------


@router.post("/exchange-rates", status_code=status.HTTP_201_CREATED, response_model=cs.ExchangeRate,
             tags=["exchange rates"], summary="Record an exchange rate")
async def create_exchange_rate(body: cs.ExchangeRateCreate, request: Request, response: Response):
    """1 `base_currency` = `rate` `quote_currency`, from `effective_at`. The same pair and time again with the
    same rate returns the stored rate (`Idempotent-Replayed: true`); with another rate it is 409."""
    reply = await field_paths.call(_invoicing(request).CreateExchangeRate, body.to_pb(), _EXCHANGE_RATE_FIELDS)
    _replayed(response, reply.created)
    if reply.created:
        await audit(request, "exchange_rate.create", "exchange_rate", reply.exchange_rate.id)
    return cs.ExchangeRate.from_pb(reply.exchange_rate)


@router.get("/exchange-rates", response_model=schemas.Page[cs.ExchangeRate], tags=["exchange rates"],
            summary="List exchange rates")
async def list_exchange_rates(
    request: Request,
    base_currency: Annotated[str, Query(description="Only this pair's rates (with quote_currency)")] = "",
    quote_currency: str = "",
):
    """Rates, newest effective first (one page)."""
    reply = await clients.call(
        _invoicing(request).ListExchangeRates,
        invoicing_pb2.ListExchangeRatesRequest(base_currency=base_currency, quote_currency=quote_currency),
    )
    return schemas.Page[cs.ExchangeRate](data=[cs.ExchangeRate.from_pb(r) for r in reply.exchange_rates],
                                         next_page_token="")


# --- entitlement overrides -----------------------------------------------------------------------------------

_OVERRIDES = "/organisations/{organisation_id}/entitlement-overrides"


@router.get(_OVERRIDES, response_model=cs.EntitlementOverrides, tags=["entitlements"],
            summary="An organisation's entitlement overrides")
async def list_entitlement_overrides(organisation_id: str, request: Request):
    """Features granted to the organisation over its plan's, by feature. 404 for an unknown organisation."""
    reply = await clients.call(
        _invoicing(request).ListEntitlementOverrides,
        invoicing_pb2.ListEntitlementOverridesRequest(organisation_id=organisation_id),
    )
    return cs.EntitlementOverrides.from_pb(organisation_id, reply.entitlement_overrides)


@router.put(_OVERRIDES + "/{feature}", response_model=cs.EntitlementOverrides, tags=["entitlements"],
            summary="Grant an organisation a feature value over its plan's")
async def set_entitlement_override(organisation_id: str, feature: str, body: cs.EntitlementOverrideSet,
                                   request: Request):
    """`{"value": true}`, `{"value": {"number": "25"}}` (or `{"value": 25}`) or `{"value": "priority"}`: the
    organisation gets this value whatever its plan says, also for a feature its plan lacks. Setting the same
    value again changes nothing. Answers every override of the organisation. A feature key not of the format, or
    a value out of bounds, is 400 naming `feature` or `value`."""
    message = invoicing_pb2.SetEntitlementOverrideRequest(
        organisation_id=organisation_id, feature=feature, value=cs.entitlement_value_to_pb(body.value)
    )
    reply = await clients.call(_invoicing(request).SetEntitlementOverride, message)
    await audit(request, "entitlement_override.set", "organisation", organisation_id)
    return cs.EntitlementOverrides.from_pb(organisation_id, reply.entitlement_overrides)


@router.delete(_OVERRIDES + "/{feature}", response_model=cs.EntitlementOverrides, tags=["entitlements"],
               summary="Remove an organisation's entitlement override")
async def delete_entitlement_override(organisation_id: str, feature: str, request: Request):
    """The plan's value applies again. Removing an override that is not there changes nothing. Answers the
    overrides that remain."""
    reply = await clients.call(
        _invoicing(request).DeleteEntitlementOverride,
        invoicing_pb2.DeleteEntitlementOverrideRequest(organisation_id=organisation_id, feature=feature),
    )
    await audit(request, "entitlement_override.delete", "organisation", organisation_id)
    return cs.EntitlementOverrides.from_pb(organisation_id, reply.entitlement_overrides)
