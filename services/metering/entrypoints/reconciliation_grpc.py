"""The usage reconciliation RPCs of MeteringService (a mixin MeteringServicer inherits)."""

from __future__ import annotations

from billing.metering.v1 import metering_pb2
from billing_runtime.errors import Unavailable
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.metering.domain.usage_reconciliation import Report
from services.metering.service.usage_reconciliation import UsageReconciliation


def reconciliation_to_pb(report: Report) -> metering_pb2.UsageReconciliation:
    totals = report.totals
    return metering_pb2.UsageReconciliation(
        id=report.id,
        trigger=report.trigger.value,
        start_time=to_timestamp(report.window.start),
        end_time=to_timestamp(report.window.end),
        status=report.status.value,
        started_time=to_timestamp(report.started_at),
        finished_time=to_timestamp(report.finished_at) if report.finished_at else None,
        messages_read=totals.messages,
        accepted_events=totals.accepted,
        stored_events=totals.stored,
        missing_events=totals.missing,
        aggregate_mismatches=totals.aggregate_mismatches,
        discrepancy_count=totals.discrepancies,
        error=report.error,
        discrepancies=[
            metering_pb2.UsageDiscrepancy(
                kind=d.kind.value, organisation_id=d.organisation_id, project_id=d.project_id, metric=d.metric,
                period_start=to_timestamp(d.period_start), expected=d.expected, found=d.found, detail=d.detail,
            )
            for d in report.discrepancies
        ],
    )


class ReconciliationRpcs:
    _usage_reconciliation: UsageReconciliation | None = None

    def attach_reconciliation(self, reconciliation: UsageReconciliation) -> None:
        self._usage_reconciliation = reconciliation

    def _reconciliation(self) -> UsageReconciliation:
        if self._usage_reconciliation is None:
            raise Unavailable("usage reconciliation is not wired in this process yet")
        return self._usage_reconciliation

    async def RunUsageReconciliation(self, request, context):  # noqa: N802 - gRPC method names
        report = await self._reconciliation().run_on_demand(
            from_timestamp(request.start_time, "start_time") if request.HasField("start_time") else None,
            from_timestamp(request.end_time, "end_time") if request.HasField("end_time") else None,
        )
        return metering_pb2.RunUsageReconciliationResponse(reconciliation=reconciliation_to_pb(report))

    async def GetUsageReconciliation(self, request, context):  # noqa: N802
        report = await self._reconciliation().get(request.id)
        return metering_pb2.GetUsageReconciliationResponse(reconciliation=reconciliation_to_pb(report))

    async def ListUsageReconciliations(self, request, context):  # noqa: N802
        reports, token = await self._reconciliation().list(request.page_size, request.page_token)
        return metering_pb2.ListUsageReconciliationsResponse(
            reconciliations=[reconciliation_to_pb(r) for r in reports], next_page_token=token
        )
