"""Usage reconciliation against real PostgreSQL and NATS: accepted batches published to BILLING_INGEST as ingest
does, stored by metering's consumer; a clean history reconciles with no discrepancy, and after one stored event is
deleted and one bucket corrupted in SQL, a run reports exactly those (and the day the corrupted bucket rolls into).

Other tests share the stream and the database, so assertions look at this test's organisation only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from billing.metering.v1 import metering_pb2
from billing_runtime.timestamps import to_timestamp
from tests.integration.metering.conftest import E, batch, eventually, project_id, publish

pytestmark = pytest.mark.usefixtures("metering")

H1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
H2 = H1 + timedelta(hours=1)


def ours(report: metering_pb2.UsageReconciliation, organisation: str) -> list[tuple[str, str, str, str, str]]:
    return sorted(
        (d.kind, d.project_id, d.period_start.ToDatetime(UTC).isoformat(), d.expected, d.found)
        for d in report.discrepancies
        if d.organisation_id == organisation
    )


async def run(stub, start: datetime) -> metering_pb2.UsageReconciliation:
    response = await stub.RunUsageReconciliation(metering_pb2.RunUsageReconciliationRequest(
        start_time=to_timestamp(start), end_time=to_timestamp(datetime.now(UTC))))
    return response.reconciliation


async def test_reconciliation_finds_exactly_a_lost_event_and_a_corrupted_bucket(
    metering_stub, jetstream, organisation_id, database_url
) -> None:
    project = project_id()
    start = datetime.now(UTC) - timedelta(seconds=1)
    first = [E(f"a{n}", str(n), H1 + timedelta(minutes=5 + 10 * n)) for n in range(5)]  # 10:05 .. 10:45
    second = [E(f"b{n}", "2.5", H2 + timedelta(minutes=10 + n)) for n in range(3)]  # 11:10 .. 11:12
    await publish(jetstream, batch(organisation_id, project, first))
    await publish(jetstream, batch(organisation_id, project, second))
    await publish(jetstream, batch(organisation_id, project, first))  # a resend: the same events again
    db = await asyncpg.connect(database_url)
    try:
        await eventually(
            lambda: db.fetchval("SELECT count(*) FROM metering.events WHERE project_id = $1", project),
            lambda n: n == 8,
        )
        clean = await run(metering_stub, start)
        assert clean.status in ("clean", "discrepancies"), clean.error
        assert ours(clean, organisation_id) == []
        assert clean.accepted_events >= 8 and clean.messages_read >= 3

        # a2 (10:25) is lost; the 11:00 bucket's sum is corrupted.
        await db.execute("DELETE FROM metering.events WHERE project_id = $1 AND event_id = 'a2'", project)
        await db.execute(
            "UPDATE metering.usage_buckets SET value_sum = value_sum + 1 WHERE project_id = $1 AND bucket_start = $2",
            project, H2,
        )
        found = await run(metering_stub, start)
    finally:
        await db.close()
    assert found.status == "discrepancies"
    assert ours(found, organisation_id) == sorted([
        # a1 and a2 in 10:15; the recomputation (expected) has a1 only.
        ("bucket_mismatch", project, (H1 + timedelta(minutes=15)).isoformat(), "count=1 sum=1 min=1 max=1",
         "count=2 sum=3 min=1 max=2"),
        ("bucket_mismatch", project, H2.isoformat(), "count=3 sum=7.5 min=2.5 max=2.5",
         "count=3 sum=8.5 min=2.5 max=2.5"),
        # The day against its buckets: the corrupted one rolls up into it.
        ("day_mismatch", project, datetime(2026, 3, 1, tzinfo=UTC).isoformat(), "count=8 sum=18.5 min=0 max=4",
         "count=8 sum=17.5 min=0 max=4"),
        ("missing_events", project, H1.isoformat(), "5", "4"),
    ])
    assert found.missing_events >= 1 and found.aggregate_mismatches >= 3
    missing = next(
        d for d in found.discrepancies if d.organisation_id == organisation_id and d.kind == "missing_events"
    )
    assert missing.detail == "missing e.g. a2"

    # Newest first (a scheduled run may have slipped in between), without their discrepancy rows.
    listed = await metering_stub.ListUsageReconciliations(metering_pb2.ListUsageReconciliationsRequest(page_size=10))
    ids = [r.id for r in listed.reconciliations]
    assert ids.index(found.id) < ids.index(clean.id)
    assert not any(r.discrepancies for r in listed.reconciliations)
    again = await metering_stub.GetUsageReconciliation(metering_pb2.GetUsageReconciliationRequest(id=found.id))
    assert ours(again.reconciliation, organisation_id) == ours(found, organisation_id)


async def test_a_scheduled_window_runs_once_across_replicas(jetstream, database_url) -> None:
    """Two replicas' checks at the same moment: each window of the look-back is run by exactly one; a later check
    runs nothing again."""
    from billing_runtime.database import create_engine
    from services.metering.adapters.accepted_stream import AcceptedStream
    from services.metering.adapters.usage_reconciliation import ReconciliationRepository
    from services.metering.config import MeteringSettings
    from services.metering.service.usage_reconciliation import UsageReconciliation

    now = datetime(2025, 1, 7, 3, 20, tzinfo=UTC)  # an hour long before the stream's messages: nothing to read
    settings = MeteringSettings(database_url=database_url, usage_reconciliation_lookback_hours=2,
                                usage_reconciliation_wait_seconds=0)
    engine = create_engine(database_url, application_name="reconciliation-test")
    try:
        replicas = [
            UsageReconciliation(ReconciliationRepository(engine), AcceptedStream(jetstream, "metering-events"),
                                settings, clock=lambda: now)
            for _ in range(2)
        ]
        first, second = await asyncio.gather(*(r.run_scheduled() for r in replicas))
        assert len(first) + len(second) == 2 and not set(first) & set(second)
        assert await replicas[0].run_scheduled() == []
        reports = [await replicas[0].get(report_id) for report_id in [*first, *second]]
    finally:
        await engine.dispose()
    assert sorted((r.window.start.hour, r.status.value, r.trigger.value) for r in reports) == [
        (1, "clean", "scheduled"), (2, "clean", "scheduled")]
