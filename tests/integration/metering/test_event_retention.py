"""Retention of stored events on a constructed history: months exported to files and then deleted in batches,
the rest untouched, usage totals unchanged, reruns no-ops, crashes between export and delete and in the middle of
deleting recovered, a recorded month with rows again refused."""

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
from services.metering.adapters.event_archives import EventArchives
from services.metering.adapters.event_store import EventStore
from services.metering.domain.event_batch import EventColumns
from services.metering.domain.event_retention import day_slices
from services.metering.service.event_retention import EventRetention
from tests.integration.metering.conftest import define, usage_request, whole_usage

# Before any other test's events (the session shares a database).
NOW = datetime(2001, 7, 15, 12, tzinfo=UTC)
MONTHS = [datetime(2001, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4, 5)]
# January to March invoiced, April open (and old enough), May too recent.
HORIZON = datetime(2001, 4, 1, tzinfo=UTC)


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
        await raw.execute("DELETE FROM metering.events WHERE timestamp >= '2001-01-01' AND timestamp < '2001-06-01'")


async def _event_ids(metering, project: str) -> dict[datetime, set[str]]:
    async with metering.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        rows = await raw.fetch(
            "SELECT event_id, date_trunc('month', timestamp, 'UTC') AS m FROM metering.events WHERE project_id = $1",
            project,
        )
    kept: dict[datetime, set[str]] = {}
    for row in rows:
        kept.setdefault(row["m"].astimezone(UTC), set()).add(row["event_id"])
    return kept


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
    start, end = MONTHS[0], datetime(2001, 6, 1, tzinfo=UTC)
    before = await whole_usage(metering_stub, organisation, "req", start, end)
    assert before == (str(sum(range(1, 41)) * 5), 200)

    async def horizon():
        return HORIZON

    archive = tmp_path / "archive"
    retention = EventRetention(metering.engine, horizon, enabled=True, archive_dir=str(archive), min_age_days=62)
    archives = EventArchives(metering.engine)

    # A crash between export and delete (January): the file and its record exist, every row too.
    await archives.record(await archives.export_month(MONTHS[0], archive))
    # A crash in the middle of deleting (February): the first ten days deleted.
    await archives.record(await archives.export_month(MONTHS[1], archive))
    records = await archives.records()
    await archives.check_before_deleting(records[MONTHS[1]], archive)
    for slice_start, slice_end in day_slices(MONTHS[1])[:10]:
        await archives.delete_slice(slice_start, slice_end, batch=3)
    kept = await _event_ids(metering, project)
    assert len(kept[MONTHS[0]]) == 40 and 0 < len(kept[MONTHS[1]]) < 40

    outcome = await retention.run_once(NOW)
    assert outcome.deletes_finished == MONTHS[:2]
    assert [a.month for a in outcome.archived] == [MONTHS[2]]
    kept = await _event_ids(metering, project)
    assert kept == {month: {e for e, _, _ in history[month]} for month in MONTHS[3:]}
    async with metering.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        records = await raw.fetch("SELECT * FROM metering.event_archives WHERE month_start >= '2001-01-01'")
    assert sorted(r["month_start"] for r in records) == MONTHS[:3]
    assert all(r["deleted_at"] and r["row_count"] == 40 for r in records)

    for month in MONTHS[:3]:
        path = archive / f"events_{month:%Y_%m}.csv.gz"
        manifest = json.loads((archive / f"events_{month:%Y_%m}.manifest.json").read_text())
        assert manifest["rows"] == 40 and manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with gzip.open(path, "rt", newline="") as text:
            rows = list(csv.DictReader(text))
        read_back = [(r["event_id"], Decimal(r["value"]), datetime.fromisoformat(r["timestamp"])) for r in rows]
        assert read_back == sorted(((e, Decimal(v), t) for e, v, t in history[month]), key=lambda r: (r[2], r[0]))
        assert {r["project_id"] for r in rows} == {project} and json.loads(rows[0]["dimensions"]) == {"region": "eu"}

    # Totals come from buckets and days: unchanged. Questions that need the archived events are refused.
    assert await whole_usage(metering_stub, organisation, "req", start, end) == before
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await metering_stub.QueryUsage(usage_request(organisation, "req", start, end, group_by="region"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "events before 2001-04-01 are archived" in refused.value.details()
    april = await metering_stub.QueryUsage(usage_request(organisation, "req", MONTHS[3], end, group_by="region"))
    assert sum(row.event_count for row in april.rows) == 80

    # A rerun archives nothing more; a re-sent event of a month kept is still deduplicated.
    rerun = await retention.run_once(NOW)
    assert rerun.archived == [] and rerun.deletes_finished == [] and rerun.refused == []
    assert await store.store(_columns(organisation, project, history[MONTHS[3]][:5])) == 0
    assert await whole_usage(metering_stub, organisation, "req", start, end) == before

    # A recorded month with rows again (only a manual restore can do that): left alone, reported, not archived.
    assert await store.store(_columns(organisation, project, history[MONTHS[0]][:2])) == 2
    again = await retention.run_once(NOW)
    assert again.refused == [MONTHS[0]] and again.archived == [] and again.deletes_finished == []
    assert len((await _event_ids(metering, project))[MONTHS[0]]) == 2


async def test_nothing_is_deleted_when_the_archive_does_not_match(metering, tmp_path, cleanup):
    """A recorded archive whose file changed, or a month holding more rows than it: the rows stay."""
    organisation, project = "org_retention_mismatch", f"prj_ret{secrets.token_hex(6)}"
    month = datetime(2001, 5, 1, tzinfo=UTC)
    store = EventStore(metering.engine)
    assert await store.store(_columns(organisation, project, [("a", "1", month + timedelta(days=2))])) == 1
    archives = EventArchives(metering.engine)
    archive = tmp_path / "archive"
    exported = await archives.export_month(month, archive)
    await archives.record(exported)
    record = (await archives.records())[month]
    assert await store.store(_columns(organisation, project, [("b", "1", month + timedelta(days=3))])) == 1
    with pytest.raises(RuntimeError, match="rows stored"):
        await archives.check_before_deleting(record, archive)
    exported.path.write_bytes(b"changed")
    with pytest.raises(RuntimeError, match="sha256"):
        await archives.check_before_deleting(record, archive)
    assert await archives.count_rows(month) >= 2


async def test_invoicing_answers_its_horizon(invoicing_stub) -> None:
    response = await invoicing_stub.GetInvoicingHorizon(invoicing_pb2.GetInvoicingHorizonRequest())
    if response.HasField("open_from"):
        assert response.open_from.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)
