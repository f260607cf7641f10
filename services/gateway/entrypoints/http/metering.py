"""/api/v1/admin metering routes: billable metrics, the metric codes events arrived for, dead letters and usage
reconciliation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from billing.metering.v1 import metering_pb2
from billing_runtime import clients
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http import metering_schemas, schemas
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, PageToken, audit, require_admin

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={status: {"model": schemas.Error} for status in (400, 401, 404, 409, 503)},
)


def _metering(request: Request):
    return request.app.state.clients.metering


@router.post("/metrics", status_code=status.HTTP_201_CREATED, response_model=metering_schemas.Metric)
async def create_metric(
    body: metering_schemas.MetricCreate, request: Request, response: Response, idempotency_key: IdempotencyKey = ""
):
    """Define a billable metric for an organisation. Events already received for its code count at once."""
    reply = await clients.call(_metering(request).CreateMetric, body.to_pb(idempotency_key))
    if reply.created:
        await audit(request, "metric.create", "metric", reply.metric.id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return metering_schemas.Metric.from_pb(reply.metric)


@router.get("/metrics", response_model=schemas.Page[metering_schemas.Metric])
async def list_metrics(
    request: Request,
    organisation_id: Annotated[str, Query(description="The organisation whose metrics to list")],
    include_archived: bool = False,
    page_size: PageSize = 0,
    page_token: str = "",
):
    """An organisation's metrics, oldest first; archived ones only when asked for."""
    reply = await clients.call(
        _metering(request).ListMetrics,
        metering_pb2.ListMetricsRequest(organisation_id=organisation_id, include_archived=include_archived,
                                        page_size=page_size, page_token=page_token),
    )
    return schemas.Page[metering_schemas.Metric](
        data=[metering_schemas.Metric.from_pb(m) for m in reply.metrics], next_page_token=reply.next_page_token
    )


# Before /metrics/{metric_id}, which would otherwise take "observed" for an id.
@router.get("/metrics/observed", response_model=list[metering_schemas.ObservedMetric])
async def observed_metrics(
    request: Request, organisation_id: Annotated[str, Query(description="The organisation whose events to report")]
):
    """Every metric code events arrived for, with counts, and whether a metric counts them. Events for a code
    no metric defines are kept, and counted once a metric for the code is created."""
    reply = await clients.call(
        _metering(request).ListObservedMetrics,
        metering_pb2.ListObservedMetricsRequest(organisation_id=organisation_id),
    )
    return [metering_schemas.ObservedMetric.from_pb(m) for m in reply.metrics]


@router.get("/metrics/{metric_id}", response_model=metering_schemas.Metric)
async def get_metric(metric_id: str, request: Request):
    reply = await clients.call(_metering(request).GetMetric, metering_pb2.GetMetricRequest(metric_id=metric_id))
    return metering_schemas.Metric.from_pb(reply.metric)


@router.post("/metrics/{metric_id}/archive", response_model=metering_schemas.Metric)
async def archive_metric(metric_id: str, request: Request):
    """Retire a metric: its code is free again and usage queries by code no longer find it. Events are kept."""
    reply = await clients.call(
        _metering(request).ArchiveMetric, metering_pb2.ArchiveMetricRequest(metric_id=metric_id)
    )
    await audit(request, "metric.archive", "metric", metric_id)
    return metering_schemas.Metric.from_pb(reply.metric)


@router.get("/dead-letters", response_model=schemas.Page[metering_schemas.DeadLetter])
async def dead_letters(request: Request, page_size: PageSize = 0, page_token: str = ""):
    """Event batches metering could not process, with the reason, newest first."""
    reply = await clients.call(
        _metering(request).ListDeadLetters,
        metering_pb2.ListDeadLettersRequest(page_size=page_size, page_token=page_token),
    )
    return schemas.Page[metering_schemas.DeadLetter](
        data=[metering_schemas.DeadLetter.from_pb(d) for d in reply.dead_letters],
        next_page_token=reply.next_page_token,
    )


@router.get("/dead-letters/{sequence}", response_model=metering_schemas.DeadLetterDetail)
async def dead_letter(sequence: Annotated[int, Path(ge=1)], request: Request):
    """One dead letter, its state, and its payload decoded (an event batch's events as JSON, bounded)."""
    reply = await clients.call(
        _metering(request).GetDeadLetter, metering_pb2.GetDeadLetterRequest(sequence=sequence)
    )
    return metering_schemas.DeadLetterDetail.from_get(reply)


@router.post("/dead-letters/{sequence}/replay", response_model=metering_schemas.DeadLetterReplay)
async def replay_dead_letter(sequence: Annotated[int, Path(ge=1)], request: Request):
    """Re-publish the letter's payload to its original subject, once its cause is fixed. Safe to repeat: events
    are deduplicated, so a replay never counts twice. A discarded letter answers 422 (failed_precondition)."""
    reply = await clients.call(
        _metering(request).ReplayDeadLetter, metering_pb2.ReplayDeadLetterRequest(sequence=sequence)
    )
    await audit(request, "dead_letter.replay", "dead_letter", str(sequence))
    return metering_schemas.DeadLetterReplay(
        dead_letter=metering_schemas.DeadLetter.from_pb(reply.dead_letter),
        replay_sequence=reply.replay_sequence, duplicate=reply.duplicate,
    )


@router.post("/dead-letters/{sequence}/discard", response_model=metering_schemas.DeadLetter)
async def discard_dead_letter(
    sequence: Annotated[int, Path(ge=1)], body: metering_schemas.DeadLetterDiscard, request: Request
):
    """Give up on a letter, saying why: it stays readable until it ages out (30 days) but is not replayable."""
    reply = await clients.call(
        _metering(request).DiscardDeadLetter,
        metering_pb2.DiscardDeadLetterRequest(sequence=sequence, reason=body.reason),
    )
    await audit(request, "dead_letter.discard", "dead_letter", str(sequence))
    return metering_schemas.DeadLetter.from_pb(reply.dead_letter)


# A run reads an hour (up to a day) of ingest's stream and waits up to a minute for metering's consumer first.
USAGE_RECONCILIATION_TIMEOUT_SECONDS = 300.0


@router.post("/usage-reconciliations", status_code=status.HTTP_201_CREATED,
             response_model=metering_schemas.UsageReconciliation)
async def run_usage_reconciliation(body: metering_schemas.UsageReconciliationCreate, request: Request):
    """Compare the events ingest accepted in the window with those metering stores (per project and hour), and
    stored usage buckets and days with a recomputation; answers (201) with the report and its discrepancies (the
    first 1,000). 400 for a window that ends before it starts, is longer than 24 hours or ends in the future.
    Metering runs every past hour by itself."""
    reply = await clients.call(
        _metering(request).RunUsageReconciliation,
        metering_pb2.RunUsageReconciliationRequest(start_time=to_timestamp(body.start_time),
                                                   end_time=to_timestamp(body.end_time)),
        timeout=USAGE_RECONCILIATION_TIMEOUT_SECONDS,
    )
    await audit(request, "usage_reconciliation.run", "usage_reconciliation", reply.reconciliation.id)
    return metering_schemas.UsageReconciliation.from_pb(reply.reconciliation)


@router.get("/usage-reconciliations", response_model=schemas.Page[metering_schemas.UsageReconciliation])
async def list_usage_reconciliations(request: Request, page_size: PageSize = 0, page_token: PageToken = ""):
    """Usage reconciliation reports, scheduled and on demand, newest first, without their discrepancies."""
    reply = await clients.call(
        _metering(request).ListUsageReconciliations,
        metering_pb2.ListUsageReconciliationsRequest(page_size=page_size, page_token=page_token),
    )
    return schemas.Page[metering_schemas.UsageReconciliation](
        data=[metering_schemas.UsageReconciliation.from_pb(r) for r in reply.reconciliations],
        next_page_token=reply.next_page_token,
    )


@router.get("/usage-reconciliations/{reconciliation_id}", response_model=metering_schemas.UsageReconciliation)
async def get_usage_reconciliation(reconciliation_id: Annotated[str, Path(max_length=64)], request: Request):
    """One report with its discrepancies (the first 1,000; discrepancy_count counts all)."""
    reply = await clients.call(
        _metering(request).GetUsageReconciliation,
        metering_pb2.GetUsageReconciliationRequest(id=reconciliation_id),
    )
    return metering_schemas.UsageReconciliation.from_pb(reply.reconciliation)
