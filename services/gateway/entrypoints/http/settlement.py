"""Settlement, invoicing's side of collection (admin, under /api/v1/admin): an invoice's status history, the
payments events recorded against it, and the review list of payments and refunds that did not fit their
invoice. Invoicing owns them; these routes translate."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime import clients
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http import settlement_schemas as ss
from services.gateway.entrypoints.http.admin import PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.invoices import invoicing_of

# Who resolved a review item, as invoicing keeps it: the admin token is one shared operator until admin users
# exist, and then this becomes the user's id.
RESOLVED_BY = "admin"
_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 503)}
_STATES = {"open": invoicing_pb2.REVIEW_ITEM_STATE_OPEN, "resolved": invoicing_pb2.REVIEW_ITEM_STATE_RESOLVED,
           "all": invoicing_pb2.REVIEW_ITEM_STATE_UNSPECIFIED}

router = APIRouter(prefix="/api/v1/admin", tags=["invoices"], dependencies=[Depends(require_admin)],
                   responses=_ERRORS)


@router.get("/invoices/{invoice_id}/status-changes", response_model=list[ss.InvoiceStatusChange],
            summary="An invoice's status history")
async def invoice_status_changes(invoice_id: str, request: Request):
    """Every change of the invoice's status, oldest first, with its time, why in words, and what caused it (a
    payments event, an invoice run, a reissue or a void). 404 for an unknown invoice."""
    reply = await clients.call(invoicing_of(request).ListInvoiceStatusChanges,
                               invoicing_pb2.ListInvoiceStatusChangesRequest(invoice_id=invoice_id))
    return [ss.InvoiceStatusChange.from_pb(c) for c in reply.status_changes]


@router.get("/invoices/{invoice_id}/settlements", response_model=list[ss.Settlement],
            summary="The payments events recorded against an invoice")
async def invoice_settlements(invoice_id: str, request: Request):
    """Captures, refunds, refund failures, overdue and uncollectible notices, oldest first, each saying whether it
    counted towards the invoice's amounts (`applied`). 404 for an unknown invoice."""
    reply = await clients.call(invoicing_of(request).ListInvoiceSettlements,
                               invoicing_pb2.ListInvoiceSettlementsRequest(invoice_id=invoice_id))
    return [ss.Settlement.from_pb(s) for s in reply.settlements]


@router.get("/review-items", response_model=schemas.Page[ss.ReviewItem],
            summary="Payments and refunds that did not fit their invoice")
async def list_review_items(
    request: Request,
    state: Annotated[Literal["open", "resolved", "all"], Query(description="Which ones; default open")] = "open",
    organisation_id: Annotated[str, Query(description="Only this organisation's")] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """What settlement could not apply on its own, newest first: a payment for a void or unknown invoice, one in
    another currency, an over-payment or over-refund (applied; `amount` is the excess), an unreadable event."""
    reply = await clients.call(invoicing_of(request).ListReviewItems, invoicing_pb2.ListReviewItemsRequest(
        state=_STATES[state], organisation_id=organisation_id, page_size=page_size, page_token=page_token))
    return schemas.Page[ss.ReviewItem](data=[ss.ReviewItem.from_pb(i) for i in reply.review_items],
                                       next_page_token=reply.next_page_token)


@router.post("/review-items/{review_item_id}/resolve", response_model=ss.ReviewItem,
             summary="Close a review item, saying what was done")
async def resolve_review_item(review_item_id: str, body: ss.ReviewItemResolve, request: Request):
    """Resolving a resolved item returns it unchanged (the first resolution stays). 400 naming `resolution` when
    it is empty or too long; 404 for an unknown id."""
    reply = await clients.call(invoicing_of(request).ResolveReviewItem, invoicing_pb2.ResolveReviewItemRequest(
        review_item_id=review_item_id, resolution=body.resolution, resolved_by=RESOLVED_BY))
    await audit(request, "review_item.resolve", "review_item", review_item_id)
    return ss.ReviewItem.from_pb(reply.review_item)
