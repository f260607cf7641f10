"""EventSender: usage events batched and streamed to ingest over ``StreamEvents``, each counted exactly once.

How it keeps that promise:

- every event gets its id on the client before it is queued, and keeps it through every resend;
- a batch stays in memory until ingest acknowledges it; when a stream breaks, the unacknowledged batches are
  written again, unchanged, on a new stream (ingest reports an identical batch it already stored as duplicates,
  and metering deduplicates on (project, event_id), so a resend never counts twice);
- ``send()`` waits while ``max_pending_events`` events are unacknowledged, so memory stays bounded when ingest is
  slower than the producer or unreachable;
- ``flush()`` returns once everything sent before it is acknowledged, and leaving ``async with`` flushes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc
from tenacity import RetryCallState

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing_client.batching import Batch, BatchBuffer
from billing_client.events import Value, build_event
from billing_client.outcomes import fail_waiters, rejections, resolve_waiters
from billing_client.results import (
    EventResult,
    EventSenderError,
    RejectedEvent,
    SenderClosed,
    SenderFailed,
    SenderStats,
)
from billing_client.retries import StreamBroken, is_retryable, retrying, status_of

log = logging.getLogger("billing_client")

# Quick reconnects after a server restart: gRPC's own defaults back off up to two minutes between attempts.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)


class EventSender:
    """Sends usage events to ingest's ``StreamEvents`` in batches; use as ``async with EventSender(...) as s``.

    ``target`` is ingest's gRPC address (``host:port``), ``api_key`` a project's key. Tuning:
    ``batch_size`` events (or ``max_batch_bytes``) per batch; a partial batch goes after ``linger_seconds``;
    at most ``max_in_flight_batches`` batches await acknowledgement on the stream; ``send()`` waits while
    ``max_pending_events`` are unacknowledged. A stream with no acknowledgement for ``ack_timeout_seconds`` is
    abandoned and its batches resent. Reconnects back off from ``retry_initial_seconds`` to
    ``retry_max_seconds``; after ``give_up_after_seconds`` without success (None: never) the sender fails.
    ``on_rejected`` is called (on the event loop) for each rejected event; the last ``max_rejected_kept`` are
    also kept in :attr:`rejected`. ``channel`` replaces the channel the sender would create (it is not closed).
    """

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        batch_size: int = 1000,
        linger_seconds: float = 0.05,
        max_pending_events: int = 100_000,
        max_in_flight_batches: int = 8,
        max_batch_bytes: int = 1_000_000,
        ack_timeout_seconds: float = 30.0,
        retry_initial_seconds: float = 0.05,
        retry_max_seconds: float = 5.0,
        give_up_after_seconds: float | None = 300.0,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        channel: grpc.aio.Channel | None = None,
        on_rejected: Callable[[RejectedEvent], None] | None = None,
        max_rejected_kept: int = 1000,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (a project's key, bk_...)")
        if max_pending_events < batch_size:
            raise ValueError(f"max_pending_events ({max_pending_events}) must be at least batch_size ({batch_size})")
        if max_in_flight_batches < 1:
            raise ValueError(f"max_in_flight_batches must be at least 1, got {max_in_flight_batches}")
        if linger_seconds < 0 or ack_timeout_seconds <= 0:
            raise ValueError("linger_seconds must be >= 0 and ack_timeout_seconds > 0")
        self.target = target
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._buffer = BatchBuffer(batch_size, max_batch_bytes)
        self._linger = linger_seconds
        self._max_pending = max_pending_events
        self._max_in_flight = max_in_flight_batches
        self._ack_timeout = ack_timeout_seconds
        self._retry = (retry_initial_seconds, retry_max_seconds, give_up_after_seconds)
        self._credentials = credentials
        self._channel_options = (*DEFAULT_CHANNEL_OPTIONS, *channel_options)
        self._channel = channel
        self._owns_channel = channel is None
        self._on_rejected = on_rejected
        self.rejected: deque[RejectedEvent] = deque(maxlen=max_rejected_kept)
        # Called with the number of events each acknowledgement settles (the sync facade frees its slots).
        self._settle_listeners: list[Callable[[int], None]] = []
        self._work = asyncio.Event()  # a batch is ready, a slot freed, or closing: the writer looks again
        self._settled = asyncio.Event()  # an acknowledgement or a failure: send() and flush() look again
        self._linger_handle: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._failure: SenderFailed | None = None
        self._counts = dict.fromkeys(
            ("queued", "accepted", "duplicate", "rejected", "written", "acknowledged", "resent", "streams"), 0
        )

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> EventSender:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            await self.close()
            return
        try:  # the caller's exception is the news; ours would hide it
            await self.close()
        except EventSenderError as error:
            log.warning("closing the event sender after an error: %s", error)

    def start(self) -> None:
        """Open the channel and start the background sender (``async with`` does this)."""
        if self._runner is not None:
            return
        if self._closed:
            raise SenderClosed("this event sender is closed")
        if self._channel is None:
            if self._credentials is not None:
                self._channel = grpc.aio.secure_channel(self.target, self._credentials, self._channel_options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, self._channel_options)
        self._stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="billing-client-sender")

    async def close(self, timeout: float | None = None) -> None:
        """Flush (waiting at most ``timeout`` seconds), end the stream and close the channel.

        Raises :class:`SenderFailed` if the sender had failed, and ``TimeoutError`` if events were still
        unacknowledged after ``timeout``; everything is closed either way.
        """
        if self._closed:
            return
        try:
            if self._runner is not None and self._failure is None:
                await self.flush(timeout)
        finally:
            self._closing = True
            self._closed = True
            self._work.set()
            self._cancel_linger()
            await self._stop_runner()
            if self._owns_channel and self._channel is not None:
                await self._channel.close()
        if self._failure is not None:
            raise self._failure

    async def _stop_runner(self) -> None:
        if self._runner is None:
            return
        if self._buffer.pending:  # flush failed or timed out: nothing will end the stream on its own
            self._runner.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._runner), timeout=5.0)
        except TimeoutError:
            self._runner.cancel()
        except asyncio.CancelledError:
            if not self._runner.cancelled():
                raise

    # -- sending -------------------------------------------------------------------------------------------------

    async def send(
        self,
        metric: str,
        value: Value,
        *,
        timestamp: datetime | None = None,
        dimensions: Mapping[str, str] | None = None,
        event_id: str | None = None,
        unit: str = "",
    ) -> str:
        """Queue one event and return its id; waits while ``max_pending_events`` are unacknowledged.

        ``value`` is a ``Decimal``, ``int`` or decimal string (floats raise ``TypeError``); ``timestamp`` an
        aware datetime (default: now); ``event_id`` defaults to a new ULID. Returning means queued, not stored:
        :meth:`flush` (or leaving ``async with``) waits for the acknowledgements.
        """
        event = build_event(metric, value, timestamp=timestamp, dimensions=dimensions, event_id=event_id, unit=unit)
        await self.send_event(event)
        return event.event_id

    async def send_event(self, event: ingest_pb2.Event) -> None:
        """Queue a ready-made protobuf ``Event``; it must carry its ``event_id`` (see :func:`build_event`)."""
        if not event.event_id:
            raise ValueError("event_id: a queued event needs its id, so that a resend carries the same one")
        await self._wait_for_space()
        if self._offer(event):
            await asyncio.sleep(0)  # let the writer put the sealed batch on the wire while the producer goes on

    async def send_and_wait(
        self,
        metric: str,
        value: Value,
        *,
        timestamp: datetime | None = None,
        dimensions: Mapping[str, str] | None = None,
        event_id: str | None = None,
        unit: str = "",
    ) -> EventResult:
        """Queue one event and wait for its own acknowledgement (slower: for the odd important event)."""
        event = build_event(metric, value, timestamp=timestamp, dimensions=dimensions, event_id=event_id, unit=unit)
        await self._wait_for_space()
        result: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        self._offer(event, result)
        return await result

    async def flush(self, timeout: float | None = None) -> None:
        """Send what is queued now and wait until all of it is acknowledged (``TimeoutError`` after ``timeout``)."""
        self._raise_if_failed()
        if self._runner is None:
            raise EventSenderError("the event sender is not started: use `async with EventSender(...)` or start()")
        self._seal_open_batch()
        mark = self._buffer.last_sequence
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._raise_if_failed()
                    oldest = self._buffer.oldest_unsettled()
                    if oldest is None or oldest > mark:
                        return
                    self._settled.clear()
                    await self._settled.wait()
        except TimeoutError:
            raise TimeoutError(
                f"flush: {self._buffer.pending} event(s) still unacknowledged after {timeout}s"
            ) from None

    @property
    def stats(self) -> SenderStats:
        """Counters since the sender started."""
        counts = self._counts
        return SenderStats(
            queued=counts["queued"],
            accepted=counts["accepted"],
            duplicate=counts["duplicate"],
            rejected=counts["rejected"],
            pending=self._buffer.pending,
            batches_written=counts["written"],
            batches_acknowledged=counts["acknowledged"],
            batches_resent=counts["resent"],
            reconnects=max(0, counts["streams"] - 1),
        )

    @property
    def failure(self) -> SenderFailed | None:
        """Why the sender stopped, once it has."""
        return self._failure

    # -- queueing (event-loop thread only) -------------------------------------------------------------------

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _raise_if_unusable(self) -> None:
        self._raise_if_failed()
        if self._closing:
            raise SenderClosed("this event sender is closed")
        if self._runner is None:
            raise EventSenderError("the event sender is not started: use `async with EventSender(...)` or start()")

    async def _wait_for_space(self) -> None:
        while True:
            self._raise_if_unusable()
            if self._buffer.pending < self._max_pending:
                return
            self._settled.clear()
            await self._settled.wait()

    def _offer(self, event: ingest_pb2.Event, waiter: asyncio.Future[EventResult] | None = None) -> bool:
        """Add an event to the open batch (the caller made room for it); True if that sealed a batch."""
        self._raise_if_unusable()
        sealed = self._buffer.add(event, waiter)
        self._counts["queued"] += 1
        if sealed:
            self._cancel_linger()
            self._work.set()
        if self._buffer.open_size and self._linger_handle is None:
            self._linger_handle = asyncio.get_running_loop().call_later(self._linger, self._linger_expired)
        return sealed

    def _linger_expired(self) -> None:
        self._linger_handle = None
        if self._buffer.seal():
            self._work.set()

    def _seal_open_batch(self) -> None:
        self._cancel_linger()
        if self._buffer.seal():
            self._work.set()

    def _cancel_linger(self) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None

    # -- streaming -----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Open a stream whenever batches wait, keep it until it breaks, retry with backoff, fail if hopeless."""
        try:
            while not self._closing:
                if not self._buffer.ready:
                    self._work.clear()
                    await self._work.wait()
                    continue
                initial, maximum, give_up = self._retry
                async for attempt in retrying(initial, maximum, give_up, self._before_retry):
                    with attempt:
                        await self._stream()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - anything else stops the sender, loudly, through _fail
            self._fail(error)

    def _before_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        code, details = status_of(error) if error else (grpc.StatusCode.UNKNOWN, "")
        log.warning(
            "event stream to %s broke (%s: %s); %d event(s) unacknowledged, reconnecting in %.2fs (attempt %d)",
            self.target, code.name, details, self._buffer.pending, state.upcoming_sleep, state.attempt_number,
        )

    async def _stream(self) -> None:
        """One stream: write ready batches, read acknowledgements, until it ends or breaks.

        Returns normally when the stream ended cleanly, or broke after acknowledging something (the next stream
        then starts at once, with a fresh backoff); raises when it broke without progress (the caller backs off).
        """
        self._counts["streams"] += 1
        call = self._stub.StreamEvents(metadata=self._metadata)
        in_flight: dict[int, Batch] = {}
        acknowledged_before = self._counts["acknowledged"]
        reader = asyncio.create_task(self._read_acknowledgements(call, in_flight))
        writer = asyncio.create_task(self._write_batches(call, in_flight))
        watchdog = asyncio.create_task(self._watch_acknowledgements(in_flight))
        tasks = {reader, writer, watchdog}
        try:
            while True:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda task: task is not reader):  # the reader knows the status
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                if reader in done:
                    return
        except Exception as error:
            progressed = self._counts["acknowledged"] > acknowledged_before
            # Back off (raise to tenacity) only when this stream achieved nothing while work waited; an idle
            # stream that broke, or one that broke after progress, is simply replaced when there is work.
            if not is_retryable(error) or (not progressed and self._buffer.pending):
                raise
            code, details = status_of(error)
            log.warning("event stream to %s broke (%s: %s); reconnecting", self.target, code.name, details)
        finally:
            for task in (reader, writer, watchdog):
                task.cancel()
            call.cancel()
            await asyncio.gather(reader, writer, watchdog, return_exceptions=True)
            if in_flight:
                self._buffer.requeue(in_flight.values())
                in_flight.clear()
                self._work.set()

    async def _write_batches(self, call: grpc.aio.StreamStreamCall, in_flight: dict[int, Batch]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch(in_flight)
            if batch is None:
                await call.done_writing()
                return
            in_flight[batch.sequence] = batch
            batch.writes += 1
            batch.written_at = loop.time()
            self._counts["written"] += 1
            if batch.writes > 1:
                self._counts["resent"] += 1
            try:
                await call.write(batch.request)
            except asyncio.InvalidStateError:
                return  # the call already ended: the reader gets its status, which is the real news

    async def _next_batch(self, in_flight: dict[int, Batch]) -> Batch | None:
        """The next batch to write once the window has room; None when closing with everything acknowledged."""
        while True:
            if self._closing and not self._buffer.pending:
                return None
            if self._buffer.ready and len(in_flight) < self._max_in_flight:
                return self._buffer.take()
            self._work.clear()
            await self._work.wait()

    async def _read_acknowledgements(self, call: grpc.aio.StreamStreamCall, in_flight: dict[int, Batch]) -> None:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                break
            batch = in_flight.pop(response.sequence, None)
            if batch is None:
                log.warning("acknowledgement for a batch not in flight (sequence %d); ignored", response.sequence)
                continue
            self._acknowledge(batch, response.outcome)
        if in_flight or (self._buffer.ready and not self._closing):
            raise StreamBroken(f"ingest ended the stream with {len(in_flight)} batch(es) unacknowledged")

    async def _watch_acknowledgements(self, in_flight: dict[int, Batch]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ack_timeout / 4)
            oldest = next(iter(in_flight.values()), None)  # written first, since acknowledged ones leave the dict
            if oldest is not None and loop.time() - oldest.written_at > self._ack_timeout:
                raise StreamBroken(f"no acknowledgement for batch {oldest.sequence} within {self._ack_timeout}s")

    # -- outcomes ------------------------------------------------------------------------------------------------

    def _acknowledge(self, batch: Batch, outcome: ingest_pb2.BatchOutcome) -> None:
        counts = self._counts
        counts["accepted"] += outcome.accepted_count
        counts["duplicate"] += outcome.duplicate_count
        counts["rejected"] += outcome.rejected_count
        counts["acknowledged"] += 1
        for rejected in rejections(batch, outcome):
            self.rejected.append(rejected)
            if self._on_rejected is not None:
                try:
                    self._on_rejected(rejected)
                except Exception:  # noqa: BLE001 - a caller's callback must not stop the sender
                    log.exception("on_rejected callback failed for event %s", rejected.event_id)
        resolve_waiters(batch, outcome)
        self._buffer.settle(batch)
        for listener in self._settle_listeners:
            listener(len(batch))
        self._settled.set()
        self._work.set()

    def _fail(self, error: BaseException) -> None:
        code, details = status_of(error)
        self._buffer.seal()
        self._failure = SenderFailed(code, details, self._buffer.pending, gave_up=is_retryable(error))
        log.error("%s", self._failure)
        fail_waiters(list(self._buffer.unsettled.values()), self._failure)
        self._settled.set()
        self._work.set()
