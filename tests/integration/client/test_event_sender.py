"""The client library against the real ingest service, with events landing in real JetStream."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

import grpc
import pytest

from billing.ingest.v1 import ingest_pb2
from billing_client import (
    EventSender,
    EventStatus,
    SenderClosed,
    SenderFailed,
    SyncEventSender,
    build_event,
)
from tests.integration.client.conftest import stored_event_ids


async def eventually(condition, what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold (state reached through the network, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_every_event_reaches_jetstream_exactly_once(ingest, tenant):
    async with EventSender(ingest.address, tenant.api_key, batch_size=250, linger_seconds=0.01) as sender:
        ids = [
            await sender.send("api.requests", i % 7, dimensions={"region": "ap-south-1"}) for i in range(3_000)
        ]
        ids.append(await sender.send("storage.gb", Decimal("0.125"), unit="GB"))
        ids.append(await sender.send("tokens", "42"))
    assert len(set(ids)) == len(ids)
    stats = sender.stats
    assert (stats.accepted, stats.duplicate, stats.rejected, stats.pending) == (len(ids), 0, 0, 0)
    assert stats.batches_acknowledged == stats.batches_written >= 3_002 // 250
    stored = await stored_event_ids(ingest.js, tenant.project_id)
    assert set(stored) == set(ids)
    assert set(stored.values()) == {1}


async def test_a_partial_batch_goes_after_the_linger_time_without_a_flush(ingest, tenant):
    async with EventSender(ingest.address, tenant.api_key, batch_size=1000, linger_seconds=0.02) as sender:
        await sender.send("api.requests", 1)
        await eventually(lambda: sender.stats.accepted == 1, "the lingering batch to be acknowledged")


async def test_rejected_events_are_reported_with_reason_and_field(ingest, tenant):
    seen = []
    async with EventSender(ingest.address, tenant.api_key, on_rejected=seen.append) as sender:
        good = await sender.send("api.requests", 1)
        bad_metric = await sender.send("Not A Metric", 1)
        result = await sender.send_and_wait("api.requests", "1e999999999")
    assert result.status is EventStatus.REJECTED and result.field == "value"
    assert sender.stats.accepted == 1 and sender.stats.rejected == 2
    assert [(r.event_id, r.field) for r in sender.rejected] == [(bad_metric, "metric"), (result.event_id, "value")]
    assert seen == list(sender.rejected)
    assert all(r.reason for r in seen)
    assert set(await stored_event_ids(ingest.js, tenant.project_id)) == {good}


async def test_a_batch_resent_identically_is_reported_as_duplicates_and_stored_once(ingest, ingest_stub, tenant):
    # As if an earlier stream stored this batch and broke before its acknowledgement arrived.
    events = [build_event("api.requests", 1, event_id=f"resent-{i}") for i in range(100)]
    first = await ingest_stub.IngestEvents(
        ingest_pb2.IngestEventsRequest(events=events), metadata=(("authorization", f"Bearer {tenant.api_key}"),)
    )
    assert first.outcome.accepted_count == 100
    async with EventSender(ingest.address, tenant.api_key, batch_size=100) as sender:
        for event in events:
            await sender.send_event(event)
    assert (sender.stats.accepted, sender.stats.duplicate) == (0, 100)
    stored = await stored_event_ids(ingest.js, tenant.project_id)
    assert len(stored) == 100 and set(stored.values()) == {1}


async def test_a_bad_key_stops_the_sender_with_a_clear_error(ingest):
    sender = EventSender(ingest.address, "bk_AAAAAAAA_" + "C" * 32)
    sender.start()
    await sender.send("api.requests", 1)
    with pytest.raises(SenderFailed) as failed:
        await sender.flush()
    assert failed.value.code == grpc.StatusCode.UNAUTHENTICATED and not failed.value.gave_up
    assert failed.value.unacknowledged == 1
    with pytest.raises(SenderFailed):
        await sender.send("api.requests", 1)
    with pytest.raises(SenderFailed):
        await sender.close()


async def test_a_server_restart_mid_stream_loses_and_doubles_nothing(own_ingest, ingest, tenant):
    # A small window keeps the volume modest (the session's metering consumer reads this stream too) while the
    # producer still keeps batches in flight whenever the server goes away.
    sender = EventSender(
        own_ingest.address, tenant.api_key, batch_size=200, linger_seconds=0.005, max_pending_events=2_000
    )
    sender.start()
    ids: list[str] = []
    producing = True

    async def produce() -> None:
        while producing and len(ids) < 40_000:
            ids.append(await sender.send("api.requests", 1, event_id=f"restart-{len(ids):06d}"))

    producer = asyncio.create_task(produce())
    for restart in range(3):
        # Stop while the producer keeps the stream busy: batches are in flight, some stored, some not.
        await eventually(lambda: sender.stats.accepted >= (restart + 1) * 2_000, "progress")  # noqa: B023
        await own_ingest.stop()
        await own_ingest.start()
    await eventually(lambda: sender.stats.accepted >= 8_000, "progress after the last restart")
    producing = False
    await producer
    await sender.close(timeout=30)

    stats = sender.stats
    assert stats.reconnects >= 3 and stats.batches_resent >= 1
    assert stats.pending == 0 and stats.rejected == 0
    # Batches that were stored but whose acknowledgement was lost come back as duplicates: never both.
    assert stats.accepted + stats.duplicate == len(ids) == stats.queued
    stored = await stored_event_ids(ingest.js, tenant.project_id)
    assert len(stored) == len(ids) and set(stored) == set(ids)
    assert set(stored.values()) == {1}


async def test_send_waits_while_the_pending_window_is_full(own_ingest, ingest, tenant):
    await own_ingest.stop()
    sender = EventSender(
        own_ingest.address,
        tenant.api_key,
        batch_size=50,
        linger_seconds=0.001,
        max_pending_events=200,
        retry_max_seconds=0.2,
    )
    sender.start()
    sent = 0

    async def produce() -> None:
        nonlocal sent
        for i in range(1_000):
            await sender.send("api.requests", 1, event_id=f"bp-{i}")
            sent += 1

    producer = asyncio.create_task(produce())
    await eventually(lambda: sent == 200, "the window to fill")
    for _ in range(20):  # the producer stays parked while ingest is away; memory does not grow
        await asyncio.sleep(0.01)
        assert sent == 200 and sender.stats.pending == 200 and not producer.done()
    await own_ingest.start()
    await producer
    await sender.close(timeout=30)
    assert sender.stats.accepted == 1_000
    assert len(await stored_event_ids(ingest.js, tenant.project_id)) == 1_000


async def test_the_sync_sender_delivers_from_plain_threads(ingest, tenant):
    def send_from_threads() -> tuple[list[str], object]:
        with SyncEventSender(ingest.address, tenant.api_key, batch_size=100, max_pending_events=500) as sender:
            ids = [sender.send("api.requests", i) for i in range(1_500)]
            result = sender.send_and_wait("api.requests", 1)
            ids.append(result.event_id)
        return ids, sender.stats

    # The sender blocks its caller; the in-process ingest needs this loop, so the caller is another thread.
    ids, stats = await asyncio.to_thread(send_from_threads)
    assert stats.accepted == 1_501 and stats.pending == 0
    stored = await stored_event_ids(ingest.js, tenant.project_id)
    assert set(stored) == set(ids) and set(stored.values()) == {1}


async def test_floats_are_refused_and_a_closed_sender_takes_nothing(ingest, tenant):
    async with EventSender(ingest.address, tenant.api_key) as sender:
        with pytest.raises(TypeError, match="float"):
            await sender.send("api.requests", 0.1)  # type: ignore[arg-type]
        assert sender.stats.queued == 0
    with pytest.raises(SenderClosed):
        await sender.send("api.requests", 1)


async def test_the_sync_sender_flushes_at_interpreter_exit(ingest, tenant):
    script = (
        "import sys\n"
        "from billing_client import SyncEventSender\n"
        "sender = SyncEventSender(sys.argv[1], sys.argv[2], batch_size=1000, linger_seconds=60)\n"
        "for i in range(250):\n"
        "    sender.send('api.requests', 1, event_id=f'atexit-{i}')\n"
        "print(sender.stats.accepted)  # nothing acknowledged yet: the batch lingers\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, ingest.address, tenant.api_key,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, err.decode()
    assert out.decode().strip() == "0"
    stored = await stored_event_ids(ingest.js, tenant.project_id)
    assert set(stored) == {f"atexit-{i}" for i in range(250)}
