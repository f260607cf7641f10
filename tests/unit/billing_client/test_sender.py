"""EventSender's logic (window, backpressure, resends, failures, flush) against a scripted stand-in for one call.

The stand-in replaces only the gRPC call object, so these tests run without sockets; what the real ingest does
with the batches is tested in tests/integration/client.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from billing.ingest.v1 import ingest_pb2
from billing_client import EventSender, EventStatus, SenderFailed


class ScriptedCall:
    """One StreamEvents call: records what the sender writes; the test decides what comes back."""

    def __init__(self) -> None:
        self.written: list[ingest_pb2.StreamEventsRequest] = []
        self.replies: asyncio.Queue[object] = asyncio.Queue()
        self.half_closed = False
        self.cancelled = False

    async def write(self, request: ingest_pb2.StreamEventsRequest) -> None:
        self.written.append(request)

    async def read(self) -> object:
        reply = await self.replies.get()
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def done_writing(self) -> None:
        self.half_closed = True
        self.replies.put_nowait(grpc.aio.EOF)

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def ack(self, request: ingest_pb2.StreamEventsRequest, *results: ingest_pb2.EventResult) -> None:
        duplicates = sum(1 for r in results if r.status == ingest_pb2.EVENT_STATUS_DUPLICATE)
        rejected = sum(1 for r in results if r.status == ingest_pb2.EVENT_STATUS_REJECTED)
        outcome = ingest_pb2.BatchOutcome(
            accepted_count=len(request.events) - duplicates - rejected,
            duplicate_count=duplicates,
            rejected_count=rejected,
            results=results,
        )
        self.replies.put_nowait(ingest_pb2.StreamEventsResponse(sequence=request.sequence, outcome=outcome))

    def fail(self, code: grpc.StatusCode, details: str = "") -> None:
        self.replies.put_nowait(grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details))


class ScriptedChannel:
    """Enough of a channel for IngestServiceStub; every StreamEvents call is a new ScriptedCall."""

    def __init__(self) -> None:
        self.calls: list[ScriptedCall] = []
        self.metadata: list[object] = []

    def stream_stream(self, *args, **kwargs):
        def start(metadata=None, **_):
            self.metadata.append(metadata)
            self.calls.append(ScriptedCall())
            return self.calls[-1]

        return start

    def unary_unary(self, *args, **kwargs):
        return None


async def settle() -> None:
    """Let every ready task run until nothing changes (a fixed number of loop turns; nothing is timed)."""
    for _ in range(100):
        await asyncio.sleep(0)


async def calls_made(channel: ScriptedChannel, count: int) -> None:
    """Wait until the sender has opened ``count`` calls (between attempts it sleeps its tiny backoff)."""
    for _ in range(5_000):
        if len(channel.calls) >= count:
            break
        await asyncio.sleep(0.001)
    await settle()
    assert len(channel.calls) >= count


_started: list[EventSender] = []


def make_sender(channel: ScriptedChannel, **options) -> EventSender:
    values = {"batch_size": 2, "linger_seconds": 60.0, "retry_initial_seconds": 0.001, "retry_max_seconds": 0.001}
    sender = EventSender("fake:1", "bk_test", channel=channel, **{**values, **options})  # type: ignore[arg-type]
    sender.start()
    _started.append(sender)
    return sender


@pytest.fixture(autouse=True)
async def stop_senders():
    """Tests leave senders mid-conversation on purpose; their background tasks end with the test."""
    yield
    while _started:
        runner = _started.pop()._runner
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)


async def test_the_key_travels_as_bearer_metadata_and_batches_carry_sequence_numbers():
    channel = ScriptedChannel()
    sender = make_sender(channel)
    for n in range(4):
        await sender.send("api.requests", n, event_id=f"e{n}")
    await settle()
    assert channel.metadata == [(("authorization", "Bearer bk_test"),)]
    call = channel.calls[0]
    written = [(r.sequence, [e.event_id for e in r.events]) for r in call.written]
    assert written == [(1, ["e0", "e1"]), (2, ["e2", "e3"])]


async def test_no_more_than_the_window_is_written_before_acknowledgements():
    channel = ScriptedChannel()
    sender = make_sender(channel, max_in_flight_batches=2)
    for n in range(10):
        await sender.send("api.requests", 1, event_id=f"e{n}")
    await settle()
    call = channel.calls[0]
    assert [r.sequence for r in call.written] == [1, 2]
    call.ack(call.written[1])  # acknowledgements may come in completion order
    await settle()
    assert [r.sequence for r in call.written] == [1, 2, 3]


async def test_send_waits_while_max_pending_events_are_unacknowledged():
    channel = ScriptedChannel()
    sender = make_sender(channel, max_pending_events=4)
    queued = 0

    async def produce() -> None:
        nonlocal queued
        for n in range(10):
            await sender.send("api.requests", 1, event_id=f"e{n}")
            queued += 1

    producer = asyncio.create_task(produce())
    await settle()
    assert queued == 4 and sender.stats.pending == 4 and not producer.done()
    call = channel.calls[0]
    call.ack(call.written[0])
    await settle()
    assert queued == 6 and sender.stats.pending == 4
    acknowledged = 1
    while not producer.done():
        for request in call.written[acknowledged:]:
            call.ack(request)
        acknowledged = len(call.written)
        await settle()
    assert queued == 10


async def test_a_broken_stream_is_reopened_and_unacknowledged_batches_resent_unchanged():
    channel = ScriptedChannel()
    sender = make_sender(channel)
    for n in range(6):
        await sender.send("api.requests", 1, event_id=f"e{n}")
    await settle()
    first = channel.calls[0]
    first.ack(first.written[1])
    first.fail(grpc.StatusCode.UNAVAILABLE, "connection reset")
    await settle()
    assert first.cancelled and len(channel.calls) == 2
    second = channel.calls[1]
    assert [(r.sequence, [e.event_id for e in r.events]) for r in second.written] == [
        (1, ["e0", "e1"]),
        (3, ["e4", "e5"]),
    ]
    flushed = asyncio.create_task(sender.flush())
    await settle()
    assert not flushed.done()
    for request in second.written:
        request_results = [ingest_pb2.EventResult(index=i, status=ingest_pb2.EVENT_STATUS_DUPLICATE) for i in (0, 1)]
        second.ack(request, *(request_results if request.sequence == 1 else ()))
    await flushed
    stats = sender.stats
    assert (stats.accepted, stats.duplicate, stats.pending) == (4, 2, 0)
    assert (stats.batches_written, stats.batches_resent, stats.reconnects) == (5, 2, 1)


async def test_a_stream_that_keeps_failing_without_progress_backs_off_and_then_succeeds():
    channel = ScriptedChannel()
    sender = make_sender(channel)
    await sender.send("api.requests", 1, event_id="a")
    await sender.send("api.requests", 1, event_id="b")
    for attempt in range(3):
        await calls_made(channel, attempt + 1)
        channel.calls[attempt].fail(grpc.StatusCode.UNAVAILABLE, "server restarting")
    await calls_made(channel, 4)
    last = channel.calls[3]
    last.ack(last.written[0])
    await sender.flush()
    assert sender.stats.reconnects == 3 and sender.stats.accepted == 2


async def test_a_refused_key_fails_the_sender_and_every_waiter():
    channel = ScriptedChannel()
    sender = make_sender(channel)
    waiting = asyncio.create_task(sender.send_and_wait("api.requests", 1))
    await sender.send("api.requests", 1)
    await settle()
    channel.calls[0].fail(grpc.StatusCode.UNAUTHENTICATED, "API key is malformed or unknown")
    await settle()
    with pytest.raises(SenderFailed) as failed:
        await waiting
    assert failed.value.code == grpc.StatusCode.UNAUTHENTICATED and failed.value.unacknowledged == 2
    assert "malformed" in str(failed.value)
    with pytest.raises(SenderFailed):
        await sender.send("api.requests", 1)
    assert len(channel.calls) == 1  # not retried


async def test_each_waiter_gets_its_own_events_result():
    channel = ScriptedChannel()
    sender = make_sender(channel, batch_size=3)
    results = [asyncio.create_task(sender.send_and_wait("api.requests", 1, event_id=f"w{n}")) for n in range(3)]
    await settle()
    call = channel.calls[0]
    call.ack(
        call.written[0],
        ingest_pb2.EventResult(index=1, event_id="w1", status=ingest_pb2.EVENT_STATUS_DUPLICATE),
        ingest_pb2.EventResult(index=2, event_id="w2", status=ingest_pb2.EVENT_STATUS_REJECTED, reason="bad",
                               field="value"),
    )
    first, second, third = [await result for result in results]
    assert (first.event_id, first.status) == ("w0", EventStatus.ACCEPTED)
    assert (second.event_id, second.status) == ("w1", EventStatus.DUPLICATE)
    assert (third.status, third.reason, third.field) == (EventStatus.REJECTED, "bad", "value")
    assert [(r.event_id, r.field, r.sequence, r.index) for r in sender.rejected] == [("w2", "value", 1, 2)]


async def test_flush_waits_for_what_was_sent_before_it_only():
    channel = ScriptedChannel()
    sender = make_sender(channel)
    await sender.send("api.requests", 1, event_id="before")
    flushed = asyncio.create_task(sender.flush())
    await settle()
    call = channel.calls[0]
    assert [e.event_id for e in call.written[0].events] == ["before"]  # flush sent the partial batch
    await sender.send("api.requests", 1, event_id="after-1")
    await sender.send("api.requests", 1, event_id="after-2")
    await settle()
    call.ack(call.written[0])
    await flushed
    assert sender.stats.pending == 2


async def test_close_flushes_then_half_closes_the_stream():
    channel = ScriptedChannel()
    sender = make_sender(channel)
    await sender.send("api.requests", 1)
    closing = asyncio.create_task(sender.close())
    await settle()
    call = channel.calls[0]
    assert not closing.done() and not call.half_closed
    call.ack(call.written[0])
    await closing
    assert call.half_closed and sender.stats.pending == 0
