"""Reconciliation (admin, under /api/v1/admin): compare our payments and refunds with the provider's over a
window, and work through the discrepancies found. Payments owns the runs; these routes translate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from billing.payments.v1 import payments_pb2
from billing_runtime import clients
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http import reconciliation_schemas as rs
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.admin import PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.payments import payments_of

# A run reads every payment and refund of the window from the provider, a page at a time, before it answers:
# longer than a lookup, and longer than rendering a PDF. Past this the gateway answers 503 and the run is left as
# payments has it (see GET /reconciliation-runs).
RECONCILIATION_TIMEOUT_SECONDS = 120.0
_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 422, 503)}

router = APIRouter(prefix="/api/v1/admin", tags=["payments"], dependencies=[Depends(require_admin)],
                   responses=_ERRORS)


@router.post("/reconciliation-runs", status_code=status.HTTP_201_CREATED,
             response_model=rs.ReconciliationRunWithDiscrepancies,
             summary="Compare our payments and refunds with the provider's over a window")
async def run_reconciliation(body: rs.ReconciliationRunCreate, request: Request):
    """Runs to the end before answering (201) with the run and every discrepancy it found: a payment or refund
    one side has and the other does not, or one whose amount, currency or status differ. A run whose provider
    could not be read is `failed` with the reason in `error`. A window may be run again: a discrepancy still open
    is found again, not doubled. 400 for a window that ends before it starts, is longer than 31 days or ends in
    the future; 422 when online payments are not configured. Payments runs the previous UTC day by itself every
    day."""
    reply = await clients.call(
        payments_of(request).RunReconciliation,
        payments_pb2.RunReconciliationRequest(start_time=to_timestamp(body.start_time),
                                              end_time=to_timestamp(body.end_time)),
        timeout=RECONCILIATION_TIMEOUT_SECONDS,
    )
    await audit(request, "reconciliation.run", "reconciliation_run", reply.run.id)
    return rs.ReconciliationRunWithDiscrepancies.from_reply(reply)


@router.get("/reconciliation-runs", response_model=schemas.Page[rs.ReconciliationRun],
            summary="List reconciliation runs")
async def list_reconciliation_runs(request: Request, page_size: PageSize = 0, page_token: PageToken = ""):
    """Runs newest first, manual and scheduled, with their counts (get one for its discrepancies)."""
    reply = await clients.call(payments_of(request).ListReconciliationRuns,
                               payments_pb2.ListReconciliationRunsRequest(page_size=page_size, page_token=page_token))
    return schemas.Page[rs.ReconciliationRun](data=[rs.ReconciliationRun.from_pb(r) for r in reply.runs],
                                              next_page_token=reply.next_page_token)


@router.get("/reconciliation-runs/{run_id}", response_model=rs.ReconciliationRunWithDiscrepancies,
            summary="Get a reconciliation run with its discrepancies")
async def get_reconciliation_run(run_id: str, request: Request):
    """The run and what it found, resolved discrepancies included."""
    reply = await clients.call(payments_of(request).GetReconciliationRun,
                               payments_pb2.GetReconciliationRunRequest(run_id=run_id))
    return rs.ReconciliationRunWithDiscrepancies.from_reply(reply)


@router.get("/discrepancies", response_model=schemas.Page[rs.Discrepancy], summary="List discrepancies")
async def list_discrepancies(
    request: Request,
    include_resolved: Annotated[bool, Query(description="Resolved ones too; default only open ones")] = False,
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Discrepancies of every run, newest first: what still needs an operator unless `include_resolved`."""
    reply = await clients.call(payments_of(request).ListDiscrepancies, payments_pb2.ListDiscrepanciesRequest(
        include_resolved=include_resolved, page_size=page_size, page_token=page_token))
    return schemas.Page[rs.Discrepancy](data=[rs.Discrepancy.from_pb(d) for d in reply.discrepancies],
                                        next_page_token=reply.next_page_token)


@router.post("/discrepancies/{discrepancy_id}/resolve", response_model=rs.Discrepancy,
             summary="Close a discrepancy, saying what was done")
async def resolve_discrepancy(discrepancy_id: str, body: rs.DiscrepancyResolve, request: Request):
    """Resolving a resolved discrepancy returns it unchanged. 400 naming `resolution` when it is empty or longer
    than 500 characters."""
    reply = await clients.call(payments_of(request).ResolveDiscrepancy, payments_pb2.ResolveDiscrepancyRequest(
        discrepancy_id=discrepancy_id, resolution=body.resolution))
    await audit(request, "discrepancy.resolve", "discrepancy", discrepancy_id)
    return rs.Discrepancy.from_pb(reply.discrepancy)
