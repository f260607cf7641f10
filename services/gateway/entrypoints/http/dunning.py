"""Dunning (admin, under /api/v1/admin): where an unpaid invoice's reminders and retries stand, and the policy an
organisation's invoices follow. Payments owns both; these routes translate."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from billing.invoicing.v1 import invoicing_pb2
from billing.payments.v1 import payments_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import dunning_schemas as ds
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http.admin import audit, require_admin
from services.gateway.entrypoints.http.invoices import invoicing_of
from services.gateway.entrypoints.http.payments import payments_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 503)}

router = APIRouter(prefix="/api/v1/admin", tags=["payments"], dependencies=[Depends(require_admin)],
                   responses=_ERRORS)


async def known_organisation(request: Request, organisation_id: str) -> None:
    """404 for an organisation invoicing does not have: payments keeps policies by id alone, and would otherwise
    answer the default for a typo, or keep a policy nobody's invoices will ever follow."""
    await clients.call(invoicing_of(request).GetOrganisation,
                       invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))


def _body_path(field: str) -> str:
    """Payments names the policy's fields ``policy.factor``; in the body of PUT they are at the top."""
    return field.removeprefix("policy.")


@router.get("/invoices/{invoice_id}/dunning", response_model=ds.Dunning, summary="Where an invoice's dunning stands")
async def get_dunning(invoice_id: str, request: Request):
    """Its state, the attempts made, when the next step is due, and the policy it follows. 404 when the invoice
    has none: not issued yet, nothing to pay, or no due date."""
    reply = await clients.call(payments_of(request).GetDunning, payments_pb2.GetDunningRequest(invoice_id=invoice_id))
    return ds.Dunning.from_pb(reply.dunning)


@router.get("/organisations/{organisation_id}/dunning-policy", response_model=ds.OrganisationDunningPolicy,
            summary="An organisation's dunning policy")
async def get_dunning_policy(organisation_id: str, request: Request):
    """Its own policy (`own: true`), or the default it falls back to (`own: false`)."""
    await known_organisation(request, organisation_id)
    reply = await clients.call(payments_of(request).GetDunningPolicy,
                               payments_pb2.GetDunningPolicyRequest(organisation_id=organisation_id))
    return ds.OrganisationDunningPolicy.from_pb(organisation_id, reply.policy, reply.own)


@router.put("/organisations/{organisation_id}/dunning-policy", response_model=ds.OrganisationDunningPolicy,
            summary="Set an organisation's dunning policy")
async def set_dunning_policy(organisation_id: str, body: ds.DunningPolicySet, request: Request):
    """Invoices issued from now on follow it; those already in dunning keep the policy they started with. 400
    names the field payments refuses (`retry_days` not one per attempt, a `factor` outside 1 to 10 ...)."""
    await known_organisation(request, organisation_id)
    reply = await field_paths.call(
        payments_of(request).SetDunningPolicy,
        payments_pb2.SetDunningPolicyRequest(organisation_id=organisation_id, policy=body.to_pb()), _body_path)
    await audit(request, "dunning_policy.set", "organisation", organisation_id)
    return ds.OrganisationDunningPolicy.from_pb(organisation_id, reply.policy, reply.own)


@router.delete("/organisations/{organisation_id}/dunning-policy", response_model=ds.OrganisationDunningPolicy,
               summary="Remove an organisation's own dunning policy")
async def clear_dunning_policy(organisation_id: str, request: Request):
    """Its invoices issued from now on follow the default again, which this answers (`own: false`). Clearing a
    policy that is not there changes nothing."""
    await known_organisation(request, organisation_id)
    reply = await clients.call(payments_of(request).SetDunningPolicy,
                               payments_pb2.SetDunningPolicyRequest(organisation_id=organisation_id, clear=True))
    await audit(request, "dunning_policy.clear", "organisation", organisation_id)
    return ds.OrganisationDunningPolicy.from_pb(organisation_id, reply.policy, reply.own)
