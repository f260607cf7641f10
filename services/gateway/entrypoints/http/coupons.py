"""/api/v1/admin coupon routes: coupons, and applying them to organisations (invoicing's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from billing_runtime.errors import NotFound
from services.gateway.entrypoints.http import coupon_schemas as cps
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, audit, require_admin
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["coupons"],
    dependencies=[Depends(require_admin)],
    route_class=DecimalJsonRoute,
    responses={code: {"model": schemas.Error} for code in (400, 401, 404, 409, 422, 503)},
)
_COUPON_FIELDS = field_paths.renamed({"expire_time": "expires_at"})
_ORGANISATION_COUPONS = "/organisations/{organisation_id}/coupons"


def _invoicing(request: Request):
    return request.app.state.clients.invoicing


@router.post("/coupons", status_code=status.HTTP_201_CREATED, response_model=cps.Coupon,
             summary="Create a coupon")
async def create_coupon(
    body: cps.CouponCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """A percentage (`percent_off`) or a fixed amount (`amount_off` with its `currency`) off an organisation's
    invoices before tax, `once`, `repeating` for `duration_periods` invoices, or `forever`; optionally for some plans
    only (`plan_codes`), a number of organisations (`max_redemptions`) and until `expires_at`. Bad terms answer 400
    naming the field; a code already taken is 409. Retrying with the same `Idempotency-Key` returns the first coupon
    (`Idempotent-Replayed: true`)."""
    reply = await field_paths.call(_invoicing(request).CreateCoupon, body.to_pb(idempotency_key), _COUPON_FIELDS)
    if reply.created:
        await audit(request, "coupon.create", "coupon", reply.coupon.id,
                    after={"code": reply.coupon.code, "percent_off": reply.coupon.percent_off,
                           "amount_off": reply.coupon.amount_off, "currency": reply.coupon.currency})
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return cps.Coupon.from_pb(reply.coupon)


@router.get("/coupons", response_model=schemas.Page[cps.Coupon], summary="List coupons")
async def list_coupons(
    request: Request,
    code: Annotated[str, Query(description="Only the coupon with this code (a page of one, or none)")] = "",
    page_size: PageSize = 0,
    page_token: str = "",
):
    """Coupons, archived ones too, oldest first."""
    if code:
        try:
            reply = await clients.call(_invoicing(request).GetCoupon, invoicing_pb2.GetCouponRequest(code=code))
        except NotFound:
            return schemas.Page[cps.Coupon](data=[], next_page_token="")
        return schemas.Page[cps.Coupon](data=[cps.Coupon.from_pb(reply.coupon)], next_page_token="")
    reply = await clients.call(
        _invoicing(request).ListCoupons, invoicing_pb2.ListCouponsRequest(page_size=page_size, page_token=page_token)
    )
    return schemas.Page[cps.Coupon](data=[cps.Coupon.from_pb(c) for c in reply.coupons],
                                    next_page_token=reply.next_page_token)


@router.get("/coupons/{coupon_id}", response_model=cps.Coupon, summary="Get a coupon")
async def get_coupon(coupon_id: str, request: Request):
    reply = await clients.call(_invoicing(request).GetCoupon, invoicing_pb2.GetCouponRequest(coupon_id=coupon_id))
    return cps.Coupon.from_pb(reply.coupon)


@router.post("/coupons/{coupon_id}/archive", response_model=cps.Coupon, summary="Archive a coupon")
async def archive_coupon(coupon_id: str, request: Request):
    """It can no longer be applied; organisations that have it keep it for its duration. Archiving again returns
    it unchanged."""
    reply = await clients.call(_invoicing(request).ArchiveCoupon,
                               invoicing_pb2.ArchiveCouponRequest(coupon_id=coupon_id))
    await audit(request, "coupon.archive", "coupon", coupon_id)
    return cps.Coupon.from_pb(reply.coupon)


@router.post(_ORGANISATION_COUPONS, status_code=status.HTTP_201_CREATED, response_model=cps.CouponRedemption,
             summary="Apply a coupon to an organisation")
async def apply_coupon(
    organisation_id: str, body: cps.CouponApply, request: Request, response: Response,
    idempotency_key: IdempotencyKey = "",
):
    """The organisation's invoices from `start_period_key` (default: its current billing period) on are discounted
    for the coupon's duration, with a discount line before tax. 404 for an unknown organisation or code; 422 when
    the coupon is archived, expired, at its redemption limit, an amount in another currency than the
    organisation's, or for plans the organisation is not on; 409 when the organisation already has it."""
    reply = await clients.call(
        _invoicing(request).ApplyCoupon,
        invoicing_pb2.ApplyCouponRequest(organisation_id=organisation_id, coupon_code=body.coupon_code,
                                         start_period_key=body.start_period_key, idempotency_key=idempotency_key),
    )
    redemption = reply.coupon_redemption
    if reply.created:
        await audit(request, "coupon.apply", "coupon_redemption", redemption.id,
                    after={"organisation_id": organisation_id, "coupon_code": redemption.coupon.code,
                           "start_period_key": redemption.start_period_key})
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return cps.CouponRedemption.from_pb(redemption)


@router.get(_ORGANISATION_COUPONS, response_model=schemas.Page[cps.CouponRedemption],
            summary="An organisation's coupons")
async def list_organisation_coupons(organisation_id: str, request: Request):
    """Every coupon the organisation has had (removed and used-up ones too), oldest applied first, with the
    billing periods each was used for (one page)."""
    reply = await clients.call(
        _invoicing(request).ListOrganisationCoupons,
        invoicing_pb2.ListOrganisationCouponsRequest(organisation_id=organisation_id),
    )
    return schemas.Page[cps.CouponRedemption](
        data=[cps.CouponRedemption.from_pb(r) for r in reply.coupon_redemptions], next_page_token="")


@router.delete(_ORGANISATION_COUPONS + "/{coupon_redemption_id}", response_model=cps.CouponRedemption,
               summary="Remove a coupon from an organisation")
async def remove_coupon(organisation_id: str, coupon_redemption_id: str, request: Request):
    """Invoices stored from now on are not discounted by it; issued invoices keep their discount. Removing it again
    returns it unchanged."""
    reply = await clients.call(
        _invoicing(request).RemoveCoupon,
        invoicing_pb2.RemoveCouponRequest(organisation_id=organisation_id, coupon_redemption_id=coupon_redemption_id),
    )
    await audit(request, "coupon.remove", "coupon_redemption", coupon_redemption_id,
                after={"organisation_id": organisation_id, "state": "removed"})
    return cps.CouponRedemption.from_pb(reply.coupon_redemption)
