"""Metering tests produce events the way ingest does: EventBatchAccepted messages published to JetStream."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from nats.js import JetStreamContext

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime import messaging
from billing_runtime.timestamps import to_timestamp
from tests.integration.helpers import organisation_request

SUBJECT = "billing.ingest.v1.event_batch.accepted"
T = TypeVar("T")


@pytest.fixture(scope="session")
async def jetstream(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await messaging.connect(nats_url, name="metering-tests")
    js = nc.jetstream()
    await messaging.ensure_stream(js, "BILLING_INGEST", ["billing.ingest.v1.>"])  # as the ingest service does
    yield js
    await nc.close()


@pytest.fixture
async def organisation_id(invoicing_stub: invoicing_pb2_grpc.InvoicingServiceStub) -> str:
    response = await invoicing_stub.CreateOrganisation(organisation_request())
    return response.organisation.id


def project_id() -> str:
    return f"prj_test{secrets.token_hex(8)}"


@dataclass
class E:
    """An event to publish: short to write in tests."""

    event_id: str
    value: str
    timestamp: datetime
    metric: str = "api.calls"
    dimensions: dict[str, str] = field(default_factory=dict)

    def to_pb(self) -> ingest_pb2.Event:
        return ingest_pb2.Event(
            event_id=self.event_id,
            metric=self.metric,
            value=self.value,
            timestamp=to_timestamp(self.timestamp),
            dimensions=self.dimensions,
        )


def batch(organisation: str, project: str, events: Iterable[E]) -> bytes:
    return events_pb2.EventBatchAccepted(
        batch_id=f"bat_{secrets.token_hex(6)}",
        organisation_id=organisation,
        project_id=project,
        events=[event.to_pb() for event in events],
    ).SerializeToString()


async def publish(js: JetStreamContext, payload: bytes) -> int:
    """Publish like ingest does (but without Nats-Msg-Id, so a re-publish is a second message); its sequence."""
    ack = await js.publish(SUBJECT, payload, timeout=5)
    return ack.seq


async def eventually(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Poll ``probe`` until ``accept`` holds, and return the value; fail with the last value after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.05)


async def define(
    stub: metering_pb2_grpc.MeteringServiceStub, organisation: str, code: str, aggregation: int, **fields: Any
) -> metering_pb2.Metric:
    request = metering_pb2.CreateMetricRequest(
        organisation_id=organisation, code=code, name=fields.pop("name", code), aggregation=aggregation, **fields
    )
    return (await stub.CreateMetric(request)).metric


def usage_request(organisation: str, code: str, start: datetime, end: datetime, **fields: Any):
    return metering_pb2.QueryUsageRequest(
        organisation_id=organisation,
        metric_code=code,
        start_time=to_timestamp(start),
        end_time=to_timestamp(end),
        **fields,
    )


async def whole_usage(
    stub: metering_pb2_grpc.MeteringServiceStub, organisation: str, code: str, start: datetime, end: datetime,
    **fields: Any,
) -> tuple[str, int]:
    """(value, event_count) of the whole range; ("", 0) when nothing counted yet."""
    response = await stub.QueryUsage(usage_request(organisation, code, start, end, **fields))
    if not response.rows:
        return "", 0
    assert len(response.rows) == 1
    return response.rows[0].value, response.rows[0].event_count


def days_from_buckets_sql() -> str:
    """The SELECT with which migration 0003 backfills usage_days from the buckets: what the day rows the consumer
    keeps must equal."""
    path = Path(__file__).parents[3] / "services/metering/migrations/versions/0003_usage_days.py"
    spec = importlib.util.spec_from_file_location("metering_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DAYS_FROM_BUCKETS
