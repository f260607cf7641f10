"""SyncEventSender: the same sender for programs without asyncio, its event loop in a background thread.

``send()`` builds and checks the event in the caller's thread (so a bad value raises right there), then hands it
to the loop thread. Backpressure is a semaphore of ``max_pending_events`` slots: ``send()`` blocks while that
many events are unacknowledged, and each acknowledgement frees its events' slots. The sender is flushed and
closed at interpreter exit if the program did not close it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Coroutine, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from billing.ingest.v1 import ingest_pb2
from billing_client.events import Value, build_event
from billing_client.results import EventResult, RejectedEvent, SenderClosed, SenderFailed, SenderStats
from billing_client.sender import EventSender

log = logging.getLogger("billing_client")
T = TypeVar("T")


class SyncEventSender:
    """Blocking facade over :class:`EventSender`; takes the same arguments. Use as ``with SyncEventSender(...)``.

    Thread-safe: several threads may call :meth:`send` at once. ``close_timeout`` bounds the flush at exit.
    """

    def __init__(self, target: str, api_key: str, *, close_timeout: float = 30.0, **options: Any) -> None:
        self._close_timeout = close_timeout
        self._loop = asyncio.new_event_loop()
        # A daemon thread: the interpreter does not wait for it before running atexit, where we flush.
        self._thread = threading.Thread(target=self._loop.run_forever, name="billing-client", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._staged: list[ingest_pb2.Event] = []
        self._closed = False
        try:
            self._sender = self._call(self._start(target, api_key, options))
        except BaseException:
            self._stop_loop()
            raise
        self._slots = threading.Semaphore(self._sender._max_pending)
        self._sender._settle_listeners.append(self._slots.release)
        atexit.register(self._close_at_exit)

    async def _start(self, target: str, api_key: str, options: dict[str, Any]) -> EventSender:
        sender = EventSender(target, api_key, **options)
        sender.start()
        return sender

    def __enter__(self) -> SyncEventSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except (SenderFailed, TimeoutError) as error:
            log.warning("closing the event sender after an error: %s", error)

    # -- sending -------------------------------------------------------------------------------------------------

    def send(
        self,
        metric: str,
        value: Value,
        *,
        timestamp: datetime | None = None,
        dimensions: Mapping[str, str] | None = None,
        event_id: str | None = None,
        unit: str = "",
    ) -> str:
        """Queue one event and return its id; blocks while ``max_pending_events`` are unacknowledged."""
        event = build_event(metric, value, timestamp=timestamp, dimensions=dimensions, event_id=event_id, unit=unit)
        self.send_event(event)
        return event.event_id

    def send_event(self, event: ingest_pb2.Event) -> None:
        """Queue a ready-made protobuf ``Event`` carrying its ``event_id``."""
        if not event.event_id:
            raise ValueError("event_id: a queued event needs its id, so that a resend carries the same one")
        self._take_slot()
        with self._lock:
            self._staged.append(event)
            first = len(self._staged) == 1
        if first:  # one wake-up of the loop per handful of events, not one per event
            self._loop.call_soon_threadsafe(self._hand_over)

    def send_and_wait(self, metric: str, value: Value, **fields: Any) -> EventResult:
        """Queue one event and block until its own acknowledgement (keywords as for :meth:`send`)."""
        event = build_event(metric, value, **fields)
        self._take_slot()
        return self._call(self._offer_and_wait(event))

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything sent so far is acknowledged (``TimeoutError`` after ``timeout``)."""
        self._raise_if_unusable()
        self._call(self._flush(timeout))

    def close(self, timeout: float | None = None) -> None:
        """Flush, end the stream and stop the background thread; raises like :meth:`EventSender.close`."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        try:
            self._call(self._close(timeout))
        finally:
            self._stop_loop()

    @property
    def stats(self) -> SenderStats:
        """Counters since the sender started."""
        return self._sender.stats

    @property
    def rejected(self) -> list[RejectedEvent]:
        """The most recent rejected events with their reasons."""
        return list(self._sender.rejected)

    # -- internals -----------------------------------------------------------------------------------------------

    def _raise_if_unusable(self) -> None:
        if self._sender.failure is not None:
            raise self._sender.failure
        if self._closed:
            raise SenderClosed("this event sender is closed")

    def _take_slot(self) -> None:
        # Wake now and then to notice a sender that failed while we waited for room.
        while not self._slots.acquire(timeout=0.2):
            self._raise_if_unusable()
        try:
            self._raise_if_unusable()
        except BaseException:
            self._slots.release()
            raise

    async def _offer_and_wait(self, event: ingest_pb2.Event) -> EventResult:
        self._hand_over()  # keep the order of events sent before this one
        result: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        try:
            self._sender._offer(event, result)
        except BaseException:
            self._slots.release()
            raise
        return await result

    def _hand_over(self) -> None:
        """On the loop: move the staged events into the sender (their slots were taken by send)."""
        with self._lock:
            events, self._staged = self._staged, []
        for event in events:
            try:
                self._sender._offer(event)
            except (SenderFailed, SenderClosed):
                self._slots.release()

    async def _flush(self, timeout: float | None) -> None:
        self._hand_over()
        await self._sender.flush(timeout)

    async def _close(self, timeout: float | None) -> None:
        self._hand_over()
        await self._sender.close(timeout)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def _close_at_exit(self) -> None:
        try:
            self.close(self._close_timeout)
        except Exception as error:  # noqa: BLE001 - at exit there is no caller left to raise to
            log.error("event sender could not flush at exit: %s", error)

