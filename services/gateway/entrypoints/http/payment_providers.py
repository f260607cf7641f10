"""Which provider an organisation's invoices are collected through (admin, under /api/v1/admin). Payments owns
the choice (its own table, by organisation id); these routes translate."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from billing.payments.v1 import events_pb2, payments_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import audit, require_admin
from services.gateway.entrypoints.http.dunning import known_organisation
from services.gateway.entrypoints.http.payment_schemas import PROVIDERS
from services.gateway.entrypoints.http.payments import payments_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 422, 503)}

router = APIRouter(prefix="/api/v1/admin", tags=["payments"], dependencies=[Depends(require_admin)],
                   responses=_ERRORS)

OnlineProvider = Literal["razorpay", "stripe"]


class PaymentProviderSet(schemas.Request):
    provider: OnlineProvider = Field(examples=["stripe"])


class OrganisationPaymentProvider(BaseModel):
    organisation_id: str
    provider: OnlineProvider | None = Field(description="Where its invoices issued from now on are collected")
    own: bool = Field(description="False: the organisation has not chosen, and this is the deployment's default")
    available: list[OnlineProvider] = Field(default_factory=list,
                                            description="The providers this deployment has keys for")


def _names(numbers) -> list[str]:  # noqa: ANN001 - a repeated Provider field
    return [name for name in (PROVIDERS.name(n) for n in numbers) if name in ("razorpay", "stripe")]


@router.get("/organisations/{organisation_id}/payment-provider", response_model=OrganisationPaymentProvider,
            summary="The provider an organisation's invoices are collected through")
async def get_payment_provider(organisation_id: str, request: Request):
    """Its own choice (`own: true`) or the default (`own: false`), and the providers configured here."""
    await known_organisation(request, organisation_id)
    reply = await clients.call(payments_of(request).GetPaymentProvider,
                               payments_pb2.GetPaymentProviderRequest(organisation_id=organisation_id))
    return OrganisationPaymentProvider(organisation_id=organisation_id, provider=PROVIDERS.name(reply.provider),
                                       own=reply.own, available=_names(reply.available))


@router.put("/organisations/{organisation_id}/payment-provider", response_model=OrganisationPaymentProvider,
            summary="Choose the provider for an organisation's invoices")
async def set_payment_provider(organisation_id: str, body: PaymentProviderSet, request: Request):
    """Invoices issued from now on are collected through it (a Stripe PaymentIntent or a Razorpay order); those
    already issued keep theirs. 422 when the provider is not configured on this deployment."""
    await known_organisation(request, organisation_id)
    reply = await clients.call(payments_of(request).SetPaymentProvider, payments_pb2.SetPaymentProviderRequest(
        organisation_id=organisation_id, provider=events_pb2.Provider.Value(f"PROVIDER_{body.provider.upper()}")))
    await audit(request, "payment_provider.set", "organisation", organisation_id)
    return OrganisationPaymentProvider(organisation_id=organisation_id, provider=PROVIDERS.name(reply.provider),
                                       own=reply.own)


@router.delete("/organisations/{organisation_id}/payment-provider", response_model=OrganisationPaymentProvider,
               summary="Forget an organisation's choice of provider")
async def clear_payment_provider(organisation_id: str, request: Request):
    """Its invoices issued from now on go to the default provider again, which this answers (`own: false`)."""
    await known_organisation(request, organisation_id)
    reply = await clients.call(payments_of(request).SetPaymentProvider,
                               payments_pb2.SetPaymentProviderRequest(organisation_id=organisation_id, clear=True))
    await audit(request, "payment_provider.clear", "organisation", organisation_id)
    return OrganisationPaymentProvider(organisation_id=organisation_id, provider=PROVIDERS.name(reply.provider),
                                       own=reply.own)
