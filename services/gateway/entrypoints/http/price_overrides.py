"""/api/v1/admin price override routes: an organisation's own prices on a plan, versioned (invoicing's)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import catalog_schemas as cs
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, audit, require_admin
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["price overrides"],
    dependencies=[Depends(require_admin)],
    route_class=DecimalJsonRoute,
    responses={code: {"model": schemas.Error} for code in (400, 401, 404, 409, 422, 503)},
)
_OVERRIDES = "/organisations/{organisation_id}/price-overrides"


def _invoicing(request: Request):
    return request.app.state.clients.invoicing


def _summary(override: cs.PriceOverride) -> dict[str, Any]:
    """What the audit entry keeps of a version: which, from when, and its prices."""
    return override.model_dump(mode="json", include={"id", "plan_code", "version", "effective_at", "currency",
                                                      "base_fee", "charges", "cleared"})


@router.get(_OVERRIDES, response_model=schemas.Page[cs.PriceOverride],
            summary="Every version of an organisation's price overrides")
async def list_price_overrides(
    organisation_id: str, request: Request,
    plan_code: Annotated[str, Query(description="Only this plan's versions")] = "",
):
    """By plan code and version, oldest first: each version is in force from its `effective_at` until the next
    one's; a `cleared` version means the plan's own prices. 404 for an unknown organisation or plan."""
    reply = await clients.call(
        _invoicing(request).ListPriceOverrides,
        invoicing_pb2.ListPriceOverridesRequest(organisation_id=organisation_id, plan_code=plan_code),
    )
    return schemas.Page[cs.PriceOverride](data=[cs.PriceOverride.from_pb(o) for o in reply.price_overrides],
                                          next_page_token="")


@router.put(_OVERRIDES + "/{plan_code}", response_model=cs.PriceOverride,
            summary="Give an organisation its own prices on a plan (a new version)")
async def set_price_override(organisation_id: str, plan_code: str, body: cs.PriceOverrideSet, request: Request,
                             response: Response, idempotency_key: IdempotencyKey = ""):
    """The base fee and/or, per metric the plan charges, a whole price model (checked as a plan's charge is), in
    the plan's currency, from the start of `effective_date` (today by default) in the organisation's zone. Each
    change is a new version; older ones are kept. Invoices price each part of a period with the version in force
    then, and their lines say "price agreed for this organisation (override vN)". 400 naming the field for a bad
    price (`charges[0].charge.tiers[1].up_to`), a metric the plan does not charge, another currency, or an
    `effective_date` inside an invoiced period; nothing is stored. Repeating the version in force, or retrying
    with the same `Idempotency-Key`, makes nothing new (`Idempotent-Replayed: true`)."""
    reply = await clients.call(_invoicing(request).SetPriceOverride,
                               body.to_pb(organisation_id, plan_code, idempotency_key))
    override = cs.PriceOverride.from_pb(reply.price_override)
    if reply.created:
        await audit(request, "price_override.set", "organisation", organisation_id, after=_summary(override))
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return override


@router.delete(_OVERRIDES + "/{plan_code}", response_model=cs.PriceOverride | None,
               summary="Clear an organisation's price override on a plan (a new version)")
async def clear_price_override(
    organisation_id: str, plan_code: str, request: Request, response: Response,
    effective_date: Annotated[date | None, Query(description="From the start of this day in the organisation's "
                                                             "zone; default today")] = None,
    idempotency_key: IdempotencyKey = "",
):
    """The plan's own prices again from `effective_date`: a version without prices (older ones are kept).
    Clearing what has no override, or is cleared already, changes nothing (`Idempotent-Replayed: true`; the
    latest version, or null)."""
    reply = await clients.call(
        _invoicing(request).DeletePriceOverride,
        invoicing_pb2.DeletePriceOverrideRequest(
            organisation_id=organisation_id, plan_code=plan_code, idempotency_key=idempotency_key,
            effective_date=effective_date.isoformat() if effective_date else "",
        ),
    )
    if reply.created:
        await audit(request, "price_override.clear", "organisation", organisation_id,
                    after=_summary(cs.PriceOverride.from_pb(reply.price_override)))
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return cs.PriceOverride.from_pb(reply.price_override) if reply.HasField("price_override") else None
