"""Invoicing's client of the metering service: the ``UsageSource`` its period close reads usage through.

It lives here, in the caller, and speaks only metering's published contract (``billing.metering.v1``): metering's
package is never imported, so the two services can change their insides independently. Its types are invoicing's
own (``Decimal``, aware ``datetime``), so the use cases never see protobuf.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import NotFound
from billing_runtime.timestamps import to_timestamp
from services.invoicing.service.billing_inputs import UsageTotal, UsageTotalQuery

MAX_QUERIES_PER_CALL = 10_000
EVENT_PAGE_SIZE = 10_000
_AGGREGATION_NAMES = {
    metering_pb2.AGGREGATION_SUM: "sum",
    metering_pb2.AGGREGATION_COUNT: "count",
    metering_pb2.AGGREGATION_MAX: "max",
    metering_pb2.AGGREGATION_MIN: "min",
    metering_pb2.AGGREGATION_UNIQUE_COUNT: "unique_count",
    metering_pb2.AGGREGATION_LATEST: "latest",
    metering_pb2.AGGREGATION_WEIGHTED_SUM: "weighted_sum",
}


class MeteringUsage:
    """Reads usage from the metering service (invoicing's ``UsageSource``): totals for many (organisation, metric,
    period) at once, and the individual event values a per-event charge needs."""

    def __init__(self, address: str, *, timeout: float = 60.0) -> None:
        self._channel = clients.channel(address)
        self._stub = metering_pb2_grpc.MeteringServiceStub(self._channel)
        self._timeout = timeout

    async def usage_totals(
        self, queries: Sequence[UsageTotalQuery], *, chunk_size: int = MAX_QUERIES_PER_CALL
    ) -> list[UsageTotal]:
        """One total per query, in the same order; calls of at most ``chunk_size`` (<= 10,000) queries.

        Raises InvalidArgument for a bad query; its field is indexed within the call's chunk
        (``queries[3].end_time``), so with more than one chunk add the chunk's offset."""
        if not 1 <= chunk_size <= MAX_QUERIES_PER_CALL:
            raise ValueError(f"chunk_size must be between 1 and {MAX_QUERIES_PER_CALL}")
        totals: list[UsageTotal] = []
        # A run asks about the same few period boundaries for every organisation: convert each once.
        stamps: dict[datetime, Timestamp] = {}
        for offset in range(0, len(queries), chunk_size):
            request = metering_pb2.GetUsageTotalsRequest(
                queries=[
                    metering_pb2.UsageTotalQuery(
                        organisation_id=q.organisation_id,
                        metric_code=q.metric_code,
                        start_time=stamps.get(q.start) or stamps.setdefault(q.start, to_timestamp(q.start)),
                        end_time=stamps.get(q.end) or stamps.setdefault(q.end, to_timestamp(q.end)),
                    )
                    for q in queries[offset : offset + chunk_size]
                ]
            )
            response = await clients.call(self._stub.GetUsageTotals, request, timeout=self._timeout)
            totals.extend(
                UsageTotal(
                    organisation_id=t.organisation_id,
                    metric_code=t.metric_code,
                    metric_found=t.metric_found,
                    metric_id=t.metric_id,
                    aggregation=_AGGREGATION_NAMES.get(t.aggregation, ""),
                    value=Decimal(t.value),
                    event_count=t.event_count,
                )
                for t in response.totals
            )
        return totals

    async def event_values(
        self, organisation_id: str, metric_code: str, start: datetime, end: datetime
    ) -> list[Decimal]:
        """The values of the events the organisation's active metric counts in [start, end) (its filters
        applied), in (timestamp, event_id) order; [] when there is no such metric."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware datetimes")
        values: list[Decimal] = []
        token = ""
        while True:
            request = metering_pb2.ListEventValuesRequest(
                organisation_id=organisation_id,
                metric_code=metric_code,
                start_time=to_timestamp(start),
                end_time=to_timestamp(end),
                page_size=EVENT_PAGE_SIZE,
                page_token=token,
            )
            response = await clients.call(self._stub.ListEventValues, request, timeout=self._timeout)
            values.extend(Decimal(value) for value in response.values)
            token = response.next_page_token
            if not token:
                return values

    async def daily_usage(
        self, organisation_id: str, metric_code: str, start: datetime, end: datetime, time_zone: str
    ) -> dict[date, Decimal]:
        """The organisation's active metric's usage per local day of ``time_zone`` over [start, end) (QueryUsage,
        window DAY, every project), keyed by the day. Days without usage are absent; so is every day when no
        active metric has the code (it was archived since the totals were read)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware datetimes")
        request = metering_pb2.QueryUsageRequest(
            organisation_id=organisation_id,
            metric_code=metric_code,
            start_time=to_timestamp(start),
            end_time=to_timestamp(end),
            window=metering_pb2.USAGE_WINDOW_DAY,
            time_zone=time_zone,
        )
        try:
            response = await clients.call(self._stub.QueryUsage, request, timeout=self._timeout)
        except NotFound:
            return {}
        zone = ZoneInfo(time_zone)
        days: dict[date, Decimal] = {}
        for row in response.rows:
            day = row.start_time.ToDatetime(tzinfo=UTC).astimezone(zone).date()
            days[day] = days.get(day, Decimal(0)) + Decimal(row.value)
        return days

    async def close(self) -> None:
        await self._channel.close()
