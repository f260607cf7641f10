"""Per-project event rates at ingest end to end: the plan's ``ingest_rate_limit`` read from the real invoicing,
the count shared through PostgreSQL by two ingest processes, refusals that write nothing, paced streams."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import grpc
import pytest

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from services.ingest.__main__ import DEFINITION as INGEST
from tests.conftest import mesh_channel, running_service
from tests.integration.helpers import expect_rpc_error, stored_events
from tests.integration.quota_tenant import auth, events, tenant

pytestmark = pytest.mark.usefixtures("metering")


async def test_the_rate_is_shared_by_every_replica_and_a_refused_batch_writes_nothing(
        ingest, ingest_stub, invoicing, invoicing_stub, metering_stub, database_url, nats_url, metering_port):
    _, project, key = await tenant(invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_SOFT",
                                   "1000000", ingest_rate_limit={"events_per_second": 1, "burst": 20})
    now = datetime.now(UTC)
    async with running_service(INGEST, database_url, nats_url, invoicing_address=invoicing.address,
                               metering_address=f"127.0.0.1:{metering_port}") as second, \
            mesh_channel(second.address) as channel:
        other = ingest_pb2_grpc.IngestServiceStub(channel)
        first = await ingest_stub.IngestEvents(events("a", 12, now), metadata=auth(key))
        assert first.outcome.accepted_count == 12
        then = await other.IngestEvents(events("b", 8, now), metadata=auth(key))
        assert then.outcome.accepted_count == 8  # the burst of 20, across both replicas

        for stub in (ingest_stub, other):  # the 21st is refused whichever replica answers
            error = await expect_rpc_error(stub.IngestEvents(events("c", 1, now), metadata=auth(key)),
                                           grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert error.details().startswith(f"rate limit: project {project.id} may send 1 events/s")
            assert dict(error.trailing_metadata())["retry-after"] == "1"

        await asyncio.sleep(1.1)  # one event's worth later
        assert (await other.IngestEvents(events("d", 1, now), metadata=auth(key))).outcome.accepted_count == 1
    stored = {event.event_id for event in await stored_events(ingest, project.id)}
    assert {f"a{i}" for i in range(12)} | {f"b{i}" for i in range(8)} | {"d0"} == stored


async def test_a_stream_is_paced_to_the_rate_rather_than_refused(ingest, ingest_stub, invoicing, invoicing_stub,
                                                                 metering_stub):
    _, project, key = await tenant(invoicing, invoicing_stub, ingest_stub, metering_stub, "QUOTA_CAP_SOFT",
                                   "1000000", ingest_rate_limit={"events_per_second": 10, "burst": 10})
    now = datetime.now(UTC)
    requests = [ingest_pb2.StreamEventsRequest(sequence=n, events=events(f"s{n}-", 5, now).events)
                for n in (1, 2, 3, 4)]
    started = time.monotonic()
    replies = [reply async for reply in ingest_stub.StreamEvents(iter(requests), metadata=auth(key))]
    assert sorted((r.sequence, r.outcome.accepted_count) for r in replies) == [(n, 5) for n in (1, 2, 3, 4)]
    assert time.monotonic() - started >= 0.9  # 10 events past the burst at 10 a second
    assert len(await stored_events(ingest, project.id)) == 20
