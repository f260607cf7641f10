"""POST /api/v1/pricing/quote: what a charge costs for a quantity, for operators and for API key holders alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from billing.ingest.v1 import ingest_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import pricing_schemas, schemas
from services.gateway.entrypoints.http.api_key import presented_api_key
from services.gateway.entrypoints.http.decimal_json import DecimalJsonRoute

_bearer = HTTPBearer(auto_error=False, scheme_name="AdminTokenOrProjectApiKey",
                     description="A staff credential, or a project's API key (bk_...)")

router = APIRouter(prefix="/api/v1/pricing", tags=["pricing"], route_class=DecimalJsonRoute,
                   responses={code: {"model": schemas.Error} for code in (400, 401, 403, 503)})


async def admin_or_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """``"staff"`` when ``access_control`` authenticated a staff credential, else ``"api_key"`` once ingest has
    verified the presented project key (401 for none or an unknown one, 403 for a revoked or expired one)."""
    if getattr(request.state, "principal", None) is not None:
        return "staff"
    key = presented_api_key(request, credentials)
    await clients.call(request.app.state.clients.ingest.VerifyApiKey, ingest_pb2.VerifyApiKeyRequest(secret=key))
    return "api_key"


@router.post("/quote", response_model=pricing_schemas.Quote, summary="Price a charge for a quantity",
             dependencies=[Depends(admin_or_api_key)])
async def quote(body: pricing_schemas.QuoteRequest, request: Request):
    """Price a charge definition (the shape a plan's charges have) for `quantity` units, and for a percentage
    charge the `event_amounts`: the unrounded amount with a per-tier breakdown, then the lines an invoice would
    show, each rounded half-up once to the currency's minor units. Stores nothing.

    Decimals may be strings or JSON numbers; numbers are read exactly (`0.1` is 0.1, never a binary float).
    Authenticate with the admin token or any project's API key."""
    reply = await clients.call(request.app.state.clients.invoicing.QuotePrice, body.to_pb())
    return pricing_schemas.Quote.from_pb(reply)
