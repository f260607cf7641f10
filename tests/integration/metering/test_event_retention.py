"""Retention of stored events on a constructed history: months archived to files and dropped, the rest untouched,
usage totals unchanged, reruns no-ops, a crash between export and drop recovered."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2
from billing.metering.v1 import metering_pb2 as A
from services.metering.adapters.event_partitions import EventPartitions
from services.metering.adapters.event_store import EventStore
from services.metering.domain.event_batch import EventColumns
from services.metering.service.event_retention import EventRetention
from tests.integration.metering.conftest import define, usage_request, whole_usage

NOW = datetime(2001, 6, 15, 12, tzinfo=UTC)  # before any other test's events (the session shares a database) and every partition created around now
MONTHS = [datetime(2001, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4)]
HORIZON = datetime(2001, 3, 1, tzinfo=UTC)  # January and February invoiced, March open


def _columns(organisation: str, project: str, events: list[tuple[str, str, datetime]]) -> EventColumns:
    columns = EventColumns()
    for event_id, value, timestamp in events:
        columns.organisation_ids.append(organisation)
        columns.project_ids.append(project)
        columns.event_ids.append(event_id)
        columns.metrics.append("req")
        columns.values.append(value)
        columns.timestamps_us.append(int(timestamp.timestamp() * 1_000_000))
        columns.dimensions.append('{"region": "eu"}')
    return columns


@pytest.fixture
async def cleanup(metering):
    yield
    async with metering.engine.begin() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        # Other tests of the session share the database: no archived months left behind.
        await raw.execute("DELETE FROM metering.event_archives WHERE month_start >= '2001-01-01'")


async def test_retention_on_a_constructed_history(metering, metering_stub, organisation_id, tmp_path, cleanup):
    organisation, project = organisation_id, f"prj_ret{secrets.token_hex(6)}"
    await define(metering_stub, organisation, "req", A.AGGREGATION_SUM)
    history = {
        month: [(f"ev_{month.month}_{i}", str(i), month + timedelta(days=i % 27, minutes=i)) for i in range(1, 41)]
        for month in MONTHS
    }
    store = EventStore(metering.engine)
    for events in history.values():
        assert await store.store(_columns(organisation, project, events)) == 40
    start, end = MONTHS[0], datetime(2001, 5, 1, tzinfo=UTC)
    before = await whole_usage(metering_stub, organisation, "req", start, end)
    assert before == (str(sum(range(1, 41)) * 4), 160)

    horizon_calls = []

    async def horizon():
        horizon_calls.append(1)
        return HORIZON

    archive = tmp_path / "archive"
    retention = EventRetention(metering.engine, horizon, enabled=True, archive_dir=str(archive), min_age_days=62)
    partitions = EventPartitions(metering.engine)

    # A crash between export and drop: the file and its record exist, the partition too.
    await partitions.ensure_months([MONTHS[0]])  # moves January's rows out of DEFAULT
    with pytest.raises(RuntimeError, match="simulated crash"):
        await partitions.archive_month(MONTHS[0], archive, crash_before_drop=True)
    assert MONTHS[0] in await partitions.existing_months()

    outcome = await retention.run_once(NOW)
    assert [a.month for a in outcome.archived] == MONTHS[:2]
    existing = await partitions.existing_months()
    assert MONTHS[0] not in existing and MONTHS[1] not in existing
    async with metering.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        keys = await raw.fetch("SELECT event_id FROM metering.event_keys WHERE project_id = $1", project)
        kept = await raw.fetch(
            "SELECT event_id, date_trunc('month', timestamp, 'UTC') AS m FROM metering.events WHERE project_id = $1",
            project,
        )
        records = await raw.fetch("SELECT * FROM metering.event_archives WHERE month_start >= '2001-01-01'")
    assert {r["event_id"] for r in keys} == {e for m in MONTHS[2:] for e, _, _ in history[m]}
    assert {r["event_id"] for r in kept} == {e for m in MONTHS[2:] for e, _, _ in history[m]}
    assert all(r["dropped_at"] and r["keys_trimmed_at"] and r["row_count"] == 40 for r in records)

    for month in MONTHS[:2]:
        path = archive / f"events_{month:%Y_%m}.csv.gz"
        manifest = json.loads((archive / f"events_{month:%Y_%m}.manifest.json").read_text())
        assert manifest["rows"] == 40 and manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with gzip.open(path, "rt", newline="") as text:
            rows = list(csv.DictReader(text))
        assert sorted((r["event_id"], Decimal(r["value"]), datetime.fromisoformat(r["timestamp"])) for r in rows) \
            == sorted((e, Decimal(v), t) for e, v, t in history[month])
        assert {r["project_id"] for r in rows} == {project} and json.loads(rows[0]["dimensions"]) == {"region": "eu"}

    # Totals come from buckets and days: unchanged. Questions that need the archived events are refused.
    assert await whole_usage(metering_stub, organisation, "req", start, end) == before
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await metering_stub.QueryUsage(usage_request(organisation, "req", start, end, group_by="region"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "events before 2001-03-01 are archived" in refused.value.details()
    march = await metering_stub.QueryUsage(usage_request(organisation, "req", MONTHS[2], end, group_by="region"))
    assert sum(row.event_count for row in march.rows) == 80

    # A rerun archives nothing more; a re-sent event of a month kept is still deduplicated.
    assert (await retention.run_once(NOW)).archived == []
    assert await store.store(_columns(organisation, project, history[MONTHS[3]][:5])) == 0
    assert await whole_usage(metering_stub, organisation, "req", start, end) == before


async def test_invoicing_answers_its_horizon(invoicing_stub) -> None:
    response = await invoicing_stub.GetInvoicingHorizon(invoicing_pb2.GetInvoicingHorizonRequest())
    if response.HasField("open_from"):
        assert response.open_from.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)
