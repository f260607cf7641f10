"""Quota enforcement at ingest end to end: ingest asks the real metering, which reads the real invoicing's plan
in force and the usage it metered from the events ingest wrote to JetStream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from billing.ingest.v1 import ingest_pb2
from billing.metering.v1 import metering_pb2 as pb
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.ingest.domain.quota import QUOTA_EXCEEDED
from tests.integration.helpers import expect_rpc_error, stored_events
from tests.integration.metering.conftest import eventually
from tests.integration.quota_tenant import CODE, auth, events, tenant

pytestmark = pytest.mark.usefixtures("metering")

ACCEPTED = ingest_pb2.EVENT_STATUS_ACCEPTED
REJECTED = ingest_pb2.EVENT_STATUS_REJECTED


async def used(metering_stub, organisation_id: str, when: datetime, total: int) -> pb.QuotaStatus:
    """Wait until metering's quota answer for the period containing ``when`` shows ``total`` used."""
    request = pb.CheckQuotaRequest(organisation_id=organisation_id, metric_code=CODE, quantity="0",
                                   time=to_timestamp(when))
    return await eventually(lambda: _status(metering_stub, request), lambda s: s.used == str(total))


async def _status(metering_stub, request: pb.CheckQuotaRequest) -> pb.QuotaStatus:
    return (await metering_stub.CheckQuota(request)).status


async def settled(ingest) -> None:
    """Let ingest's cached answers expire, so the next batch sees what metering now reports."""
    import asyncio

    await asyncio.sleep(ingest.settings.quota_cache_seconds + 0.1)


async def test_over_a_hard_cap_events_are_refused_and_the_next_period_accepts_again(
        ingest, ingest_stub, invoicing, invoicing_stub, metering_stub):
    organisation, project, key = await tenant(
        invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_HARD", "5", enforce_quotas_at_ingest=True)
    current = from_timestamp((await metering_stub.CheckQuota(pb.CheckQuotaRequest(
        organisation_id=organisation, metric_code=CODE, quantity="0"))).status.period_start)
    previous = current - timedelta(hours=12)  # the last day of the previous billing period
    now = datetime.now(UTC)

    filled = await ingest_stub.IngestEvents(events("old", 5, previous), metadata=auth(key))
    assert filled.outcome.accepted_count == 5  # exactly at the limit
    await used(metering_stub, organisation, previous, 5)
    await settled(ingest)

    call = ingest_stub.IngestEvents(events("late", 2, previous), metadata=auth(key))
    error = await expect_rpc_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert error.details().startswith(QUOTA_EXCEEDED)
    assert f"hard cap of 5 {CODE} per billing period" in error.details()
    trailing = dict(error.trailing_metadata())
    assert trailing["retry-after"] == "0"  # that period is over: waiting will not help

    call = ingest_stub.IngestEvents(
        ingest_pb2.IngestEventsRequest(events=[*events("new", 3, now).events, *events("later", 1, previous).events]),
        metadata=auth(key),
    )
    mixed = await call
    assert (mixed.outcome.accepted_count, mixed.outcome.rejected_count) == (3, 1)
    [refused] = mixed.outcome.results
    assert (refused.index, refused.status, refused.field) == (3, REJECTED, "metric")
    assert refused.reason.startswith(QUOTA_EXCEEDED)
    trailing = dict(await call.trailing_metadata())
    window = int((from_timestamp((await metering_stub.CheckQuota(pb.CheckQuotaRequest(
        organisation_id=organisation, metric_code=CODE, quantity="0"))).status.reset_time) - current).total_seconds())
    assert trailing["ratelimit-policy"] == f'"{CODE}";q=5;w={window}'
    assert trailing["ratelimit"].startswith(f'"{CODE}";r=2;t=')
    stored = {e.event_id for e in await stored_events(ingest, project.id)}
    assert {"new0", "new1", "new2"} <= stored and not {"late0", "late1", "later0"} & stored

    # The current period up to its cap, then over it: a retry-after of the time left in the period.
    await used(metering_stub, organisation, now, 3)
    await settled(ingest)
    up_to = await ingest_stub.IngestEvents(events("more", 3, now), metadata=auth(key))
    assert (up_to.outcome.accepted_count, up_to.outcome.rejected_count) == (2, 1)
    error = await expect_rpc_error(ingest_stub.IngestEvents(events("over", 1, now), metadata=auth(key)),
                                   grpc.StatusCode.RESOURCE_EXHAUSTED)
    retry_after = int(dict(error.trailing_metadata())["retry-after"])
    reset = from_timestamp((await metering_stub.CheckQuota(pb.CheckQuotaRequest(
        organisation_id=organisation, metric_code=CODE, quantity="0"))).status.reset_time)
    assert abs(retry_after - (reset - datetime.now(UTC)).total_seconds()) < 60


async def test_the_stream_stays_open_and_reports_refused_events(
        ingest, ingest_stub, invoicing, invoicing_stub, metering_stub):
    _, _, key = await tenant(
        invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_HARD", "3", enforce_quotas_at_ingest=True)
    now = datetime.now(UTC)
    requests = [ingest_pb2.StreamEventsRequest(sequence=n, events=events(f"s{n}-", 2, now).events) for n in (1, 2, 3)]
    replies = [reply async for reply in ingest_stub.StreamEvents(iter(requests), metadata=auth(key))]
    totals = sorted((r.sequence, r.outcome.accepted_count, r.outcome.rejected_count) for r in replies)
    assert sum(accepted for _, accepted, _ in totals) == 3
    assert sum(rejected for _, _, rejected in totals) == 3
    assert all(r.reason.startswith(QUOTA_EXCEEDED) for reply in replies for r in reply.outcome.results)


async def test_a_soft_cap_accepts_everything_and_reports_the_quota(
        ingest, ingest_stub, invoicing, invoicing_stub, metering_stub):
    _, _, key = await tenant(
        invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_SOFT", "2", enforce_quotas_at_ingest=True)
    call = ingest_stub.IngestEvents(events("soft", 5, datetime.now(UTC)), metadata=auth(key))
    reply = await call
    assert (reply.outcome.accepted_count, reply.outcome.rejected_count) == (5, 0)
    assert dict(await call.trailing_metadata())["ratelimit"].startswith(f'"{CODE}";r=0;t=')


async def test_a_plan_that_does_not_enforce_at_ingest_accepts_over_its_hard_cap(
        ingest, ingest_stub, invoicing, invoicing_stub, metering_stub):
    _, _, key = await tenant(invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_HARD", "2")
    reply = await ingest_stub.IngestEvents(events("free", 5, datetime.now(UTC)), metadata=auth(key))
    assert (reply.outcome.accepted_count, reply.outcome.rejected_count) == (5, 0)


async def test_a_gauge_is_never_refused_at_ingest_while_metering_reports_its_value_hours(
        ingest, ingest_stub, invoicing, invoicing_stub, metering_stub):
    """A hard cap on a weighted_sum metric: an event's effect on value-hours depends on how long its value is held,
    which ingest cannot know, so ingest accepts every event; metering's CheckQuota still answers (usage so far)."""
    organisation, _, key = await tenant(invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_HARD", "1",
                                        aggregation=pb.AGGREGATION_WEIGHTED_SUM, enforce_quotas_at_ingest=True)

    def gauge(prefix: str, when: datetime) -> ingest_pb2.IngestEventsRequest:
        return ingest_pb2.IngestEventsRequest(events=[
            ingest_pb2.Event(event_id=f"{prefix}{i}", metric=CODE, value="500", timestamp=to_timestamp(when))
            for i in range(3)
        ])

    first = await ingest_stub.IngestEvents(gauge("disk", datetime.now(UTC) - timedelta(hours=1)), metadata=auth(key))
    assert (first.outcome.accepted_count, first.outcome.rejected_count) == (3, 0)
    request = pb.CheckQuotaRequest(organisation_id=organisation, metric_code=CODE, quantity="0")
    over = await eventually(lambda: _status(metering_stub, request), lambda s: s.used not in ("", "0"))
    # 500 held for the part of the last hour inside this billing period: over the cap of 1 GB-hour.
    assert (over.allowed, over.reason) == (False, pb.QUOTA_REASON_OVER_HARD_CAP)
    await settled(ingest)
    more = await ingest_stub.IngestEvents(gauge("more", datetime.now(UTC)), metadata=auth(key))
    assert (more.outcome.accepted_count, more.outcome.rejected_count) == (3, 0)
