"""End to end: usage events from the client library and REST, through ingest and JetStream, into metering,
while metering is killed (SIGKILL) and restarted several times. Every distinct event counts exactly once."""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_client import EventSender
from billing_runtime.timestamps import to_timestamp
from devstack.mesh import Mesh

pytestmark = pytest.mark.e2e


def admin(mesh: Mesh) -> httpx.Client:
    return httpx.Client(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {mesh.admin_token}"}, timeout=10)


def tenant(mesh: Mesh) -> tuple[str, str, str]:
    """A new organisation with a project and a key, and two metrics over "units": a sum and a count."""
    with admin(mesh) as client:
        organisation = client.post(
            "/api/v1/admin/organisations",
            json={
                "name": f"Faulty {secrets.token_hex(3)}", "billing_email": "ops@faulty.example",
                "billing_currency": "INR", "country": "IN", "state_code": "29", "timezone": "Asia/Kolkata",
            },
        )
        assert organisation.status_code == 201, organisation.text
        organisation_id = organisation.json()["id"]
        project = client.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "api"})
        key = client.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]}).json()["secret"]
        for code, aggregation in (("units", "sum"), ("units_seen", "count")):
            created = client.post(
                "/api/v1/admin/metrics",
                json={"organisation_id": organisation_id, "code": code, "name": code, "aggregation": aggregation},
            )
            assert created.status_code == 201, created.text
    return organisation_id, project.json()["id"], key


async def usage(mesh: Mesh, organisation_id: str, code: str, start: datetime) -> tuple[Decimal, int]:
    async with mesh.channel("metering") as channel:
        reply = await metering_pb2_grpc.MeteringServiceStub(channel).QueryUsage(
            metering_pb2.QueryUsageRequest(
                organisation_id=organisation_id, metric_code=code, start_time=to_timestamp(start),
                end_time=to_timestamp(datetime.now(UTC) + timedelta(minutes=5)),
            ),
            timeout=10,
        )
    return sum((Decimal(r.value) for r in reply.rows), Decimal(0)), sum(r.event_count for r in reply.rows)


class Chaos:
    """SIGKILLs metering every so often and starts it again, in a thread beside the senders."""

    def __init__(self, mesh: Mesh, kills: int, every_seconds: float) -> None:
        self.mesh, self.kills, self.every = mesh, kills, every_seconds
        self.done = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(self.kills):
            time.sleep(self.every)
            self.mesh.kill("metering")
            time.sleep(0.3)  # events keep arriving (ingest answers) while metering is down
            self.mesh.start_service("metering")
            self.done += 1

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=120)


async def test_metering_killed_repeatedly_still_counts_every_distinct_event_once(mesh: Mesh):
    organisation_id, _, key = tenant(mesh)
    start = datetime.now(UTC) - timedelta(hours=1)
    rng = random.Random(20261121)
    distinct = {f"evt-{i:06d}": Decimal(rng.randint(1, 99_999)) / 1000 for i in range(30_000)}
    ids = list(distinct)
    # Half again as many sends as events: every id once, then 15,000 resends of ids already sent.
    plan = ids + [rng.choice(ids) for _ in range(15_000)]
    rng.shuffle(plan)
    when = datetime.now(UTC) - timedelta(minutes=10)

    with Chaos(mesh, kills=3, every_seconds=1.5) as chaos:
        async with EventSender(mesh.address("ingest"), key, batch_size=500, linger_seconds=0.02) as sender:
            for event_id in plan:
                await sender.send("units", distinct[event_id], event_id=event_id, timestamp=when)
                await sender.send("units_seen", 1, event_id=f"seen-{event_id}", timestamp=when)
                if rng.random() < 0.002:
                    await asyncio.sleep(0.05)  # spread the load over the kills
        # Some repeats through REST too: an event id is one event whichever door it came through.
        rest = [{"eventId": i, "metricName": "units", "metricValue": str(distinct[i]), "timestamp": when.isoformat()}
                for i in rng.sample(ids, 500)]
        async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30) as client:
            reply = await client.post("/api/v1/events", json=rest, headers={"Authorization": f"Bearer {key}"})
        assert reply.status_code == 202, reply.text
        assert reply.json()["rejected"] == 0
    assert chaos.done == 3, "metering was not killed as often as planned"

    expected_sum, expected_count = sum(distinct.values(), Decimal(0)), len(distinct)
    deadline = time.monotonic() + 60
    while True:
        totals = await usage(mesh, organisation_id, "units", start)
        seen = await usage(mesh, organisation_id, "units_seen", start)
        if (totals == (expected_sum, expected_count) and seen[0] == expected_count) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert totals == (expected_sum, expected_count)  # to the last decimal: Decimal, never float
    assert seen == (Decimal(expected_count), expected_count)
    assert mesh.unexpected_exits() == []
