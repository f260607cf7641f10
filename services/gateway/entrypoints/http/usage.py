"""Usage queries: GET /api/v1/admin/usage for operators, GET /api/v1/usage for a project's key holder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request

from billing.metering.v1 import metering_pb2
from billing_runtime import clients
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http import metering_schemas, schemas
from services.gateway.entrypoints.http.admin import require_admin
from services.gateway.entrypoints.http.api_key import OrgScope

DEFAULT_RANGE = timedelta(days=30)
QUERY_PARAMETER = {"start_time": "from", "end_time": "to", "metric_code": "metric"}

router = APIRouter(prefix="/api/v1", responses={
    status: {"model": schemas.Error} for status in (400, 401, 403, 404, 503)
})


@dataclass
class UsageParams:
    """The query string of both usage routes."""

    metric: Annotated[str, Query(description="The metric's code (an active metric)")] = ""
    metric_id: Annotated[str, Query(description="Or the metric's id (met_...), archived ones too")] = ""
    start: Annotated[datetime | None, Query(
        alias="from", description="Start, inclusive. Without an offset it is read in time_zone. Default: "
        "30 days before `to`")] = None
    end: Annotated[datetime | None, Query(alias="to", description="End, exclusive. Default: now")] = None
    window: Annotated[metering_schemas.WindowName, Query(description="Size of each row's window")] = "whole"
    time_zone: Annotated[str, Query(description="IANA zone in which windows start, e.g. Asia/Kolkata")] = "UTC"
    group_by: Annotated[str, Query(description="A metadata key to group by")] = ""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"{name!r} is not an IANA time zone such as Asia/Kolkata or UTC",
                              field="time_zone") from None


async def query_usage(
    request: Request, organisation_id: str, project_id: str, params: UsageParams
) -> metering_schemas.Usage:
    """Ask metering for the usage and shape its answer; the range defaults to the last 30 days."""
    zone = _zone(params.time_zone or "UTC")
    end = params.end or datetime.now(UTC)
    end = end if end.tzinfo else end.replace(tzinfo=zone)
    start = params.start or end - DEFAULT_RANGE
    start = start if start.tzinfo else start.replace(tzinfo=zone)
    try:
        reply = await clients.call(
            request.app.state.clients.metering.QueryUsage,
            metering_pb2.QueryUsageRequest(
                organisation_id=organisation_id, project_id=project_id, metric_code=params.metric,
                metric_id=params.metric_id, start_time=to_timestamp(start), end_time=to_timestamp(end),
                window=metering_schemas.WINDOWS[params.window], time_zone=params.time_zone,
                group_by=params.group_by,
            ),
            timeout=30.0,
        )
    except InvalidArgument as error:  # metering names its protobuf fields; the caller sent query parameters
        field = QUERY_PARAMETER.get(error.field or "", error.field)
        message = error.message
        for proto_name, parameter in QUERY_PARAMETER.items():
            message = message.replace(proto_name, f"'{parameter}'")
        raise InvalidArgument(message, field=field) from None
    return metering_schemas.Usage(
        metric=metering_schemas.Metric.from_pb(reply.metric), organisation_id=organisation_id,
        project_id=project_id, start=start, end=end, window=params.window, time_zone=params.time_zone,
        group_by=params.group_by, rows=[metering_schemas.UsageRow.from_pb(row) for row in reply.rows],
    )


@router.get("/admin/usage", response_model=metering_schemas.Usage, tags=["admin"],
            dependencies=[Depends(require_admin)])
async def admin_usage(
    request: Request,
    params: Annotated[UsageParams, Depends()],
    organisation_id: Annotated[str, Query(description="The organisation whose usage to add up")],
    project_id: Annotated[str, Query(description="Only this project's events; empty for all")] = "",
):
    """Usage of a metric for an organisation (or one of its projects), in windows, optionally grouped."""
    return await query_usage(request, organisation_id, project_id, params)


@router.get("/usage", response_model=metering_schemas.Usage, tags=["events"])
async def project_usage(
    request: Request,
    params: Annotated[UsageParams, Depends()],
    scope: OrgScope,
):
    """Usage of a metric for the API key's own project, or, for an organisation user, their organisation's
    (every project)."""
    project_id = scope.project.id if scope.project is not None else ""
    return await query_usage(request, scope.organisation_id, project_id, params)
