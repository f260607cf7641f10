"""Prepaid credit routes: the admin's under /api/v1/admin/organisations/{organisation_id}/credits (balance, grants,
top-ups, voiding a grant), and the organisation's own balance under /api/v1/credits."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import credit_schemas as crs
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 403, 404, 409, 422, 503)}
admin_router = APIRouter(prefix="/api/v1/admin", tags=["credits"], dependencies=[Depends(require_admin)],
                         route_class=DecimalJsonRoute, responses=_ERRORS)
router = APIRouter(prefix="/api/v1", tags=["credits (API key)"], responses=_ERRORS)
_CREDITS = "/organisations/{organisation_id}/credits"
_FIELDS = field_paths.renamed({"expire_time": "expires_at"})


def _invoicing(request: Request):
    return request.app.state.clients.invoicing


async def _statement(request: Request, organisation_id: str) -> crs.CreditStatement:
    reply = await clients.call(_invoicing(request).GetCreditBalance,
                               invoicing_pb2.GetCreditBalanceRequest(organisation_id=organisation_id))
    return crs.CreditStatement.from_pb(reply)


@admin_router.get(_CREDITS, response_model=crs.CreditStatement, summary="An organisation's prepaid credit")
async def credit_balance(organisation_id: str, request: Request):
    """The spendable balance per currency, every grant with what is left of it and its expiry, and the ledger of
    what invoices consumed (a voided invoice's consumption shows when it was given back)."""
    return await _statement(request, organisation_id)


@admin_router.post(_CREDITS + "/grants", status_code=status.HTTP_201_CREATED, response_model=crs.CreditGrant,
                   summary="Grant prepaid credit")
async def grant_credit(
    organisation_id: str, body: crs.CreditGrantCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = "",
):
    """Credit in the organisation's invoicing currency, spent on its invoices' totals after tax (lower priority
    first, then the earliest expiry, then the oldest). Retrying with the same `Idempotency-Key` (or the same
    `credit_note` source_id) returns the first grant (`Idempotent-Replayed: true`)."""
    reply = await field_paths.call(_invoicing(request).GrantCredit, body.to_pb(organisation_id, idempotency_key),
                                   _FIELDS)
    if reply.created:
        await audit(request, "credit.grant", "credit_grant", reply.grant.id,
                    after={"organisation_id": organisation_id, "amount_minor": reply.grant.amount_minor,
                           "currency": reply.grant.currency, "source": body.source})
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return crs.CreditGrant.from_pb(reply.grant)


@admin_router.post(_CREDITS + "/top-ups", status_code=status.HTTP_201_CREATED, response_model=crs.CreditTopUp,
                   summary="Top up prepaid credit")
async def top_up_credit(
    organisation_id: str, body: crs.CreditTopUpCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = "",
):
    """Issues a credit purchase invoice for the amount (paid like any invoice, through the provider); the credit
    becomes available when it is paid, once."""
    reply = await field_paths.call(_invoicing(request).TopUpCredit, body.to_pb(organisation_id, idempotency_key),
                                   _FIELDS)
    if reply.created:
        await audit(request, "credit.top_up", "credit_grant", reply.grant.id,
                    after={"organisation_id": organisation_id, "amount_minor": reply.grant.amount_minor,
                           "invoice_id": reply.invoice.id})
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return crs.CreditTopUp(grant=crs.CreditGrant.from_pb(reply.grant), invoice=crs.ins.Invoice.from_pb(reply.invoice))


@admin_router.post(_CREDITS + "/grants/{grant_id}/void", response_model=crs.CreditGrant,
                   summary="Void a prepaid credit grant")
async def void_grant(organisation_id: str, grant_id: str, body: crs.CreditGrantVoid, request: Request):
    """What is left of the grant is withdrawn; what invoices consumed stays consumed. Voiding again returns it."""
    reply = await clients.call(
        _invoicing(request).VoidCreditGrant,
        invoicing_pb2.VoidCreditGrantRequest(organisation_id=organisation_id, grant_id=grant_id, reason=body.reason),
    )
    await audit(request, "credit.void", "credit_grant", grant_id, reason=body.reason,
                after={"organisation_id": organisation_id, "status": "voided"})
    return crs.CreditGrant.from_pb(reply.grant)


@router.get("/credits", response_model=crs.CreditStatement, summary="Your organisation's prepaid credit")
async def my_credit_balance(request: Request, scope: OrgScope):
    """The balance, grants and consumption ledger of the caller's organisation."""
    return await _statement(request, scope.organisation_id)
