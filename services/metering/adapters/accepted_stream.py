"""Reading ingest's record of accepted events (the ``BILLING_INGEST`` stream) for a window of acceptance time.

An ephemeral pull consumer starting at the window's start (deliver by start time, no acks, in memory), read up to
the window's end or the stream's last message when the read began, then deleted. The durable consumer metering
stores events with is only asked how far it has acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from billing_runtime.ids import new_ulid
from services.metering.adapters.messages import EVENT_BATCH_ACCEPTED

STREAM = "BILLING_INGEST"  # owned and created by ingest


@dataclass(frozen=True)
class AcceptedMessage:
    sequence: int
    time: datetime
    payload: bytes


class WindowAgedOut(Exception):
    """The stream no longer holds the start of the window (retention removed it)."""


class AcceptedStream:
    def __init__(self, js: JetStreamContext, durable: str, *, fetch_batch: int = 256) -> None:
        self._js = js
        self._durable = durable
        self._batch = fetch_batch

    async def read(self, start: datetime, end: datetime) -> AsyncIterator[AcceptedMessage]:
        """The messages JetStream stored in [start, end), in stream order."""
        info = await self._js.stream_info(STREAM)
        state = info.state
        last = state.last_seq
        if not last or state.messages == 0:
            return
        name = f"usage-reconciliation-{new_ulid().lower()}"
        await self._js.add_consumer(STREAM, config=ConsumerConfig(
            name=name, filter_subject=EVENT_BATCH_ACCEPTED, deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start, ack_policy=AckPolicy.NONE, inactive_threshold=300.0, mem_storage=True,
        ))
        subscription = await self._js.pull_subscribe_bind(consumer=name, stream=STREAM)
        try:
            while True:
                try:
                    messages = await subscription.fetch(self._batch, timeout=2.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    return  # nothing at or after the start (or left before the end)
                for msg in messages:
                    meta = msg.metadata
                    if meta.sequence.stream == state.first_seq > 1 and meta.timestamp > start:
                        # The oldest message left is inside the window: older ones of it may have been removed.
                        raise WindowAgedOut(
                            f"the stream's oldest message is from {meta.timestamp.isoformat()}, after the window's "
                            "start: part of the window may have aged out of the stream"
                        )
                    if meta.sequence.stream > last or meta.timestamp >= end:
                        return
                    yield AcceptedMessage(meta.sequence.stream, meta.timestamp, msg.data)
                    if meta.num_pending == 0:
                        return
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(STREAM, name)

    async def acknowledged_through(self) -> int:
        """The stream sequence up to which metering's durable consumer has settled every message."""
        info = await self._js.consumer_info(STREAM, self._durable)
        return info.ack_floor.stream_seq if info.ack_floor else 0

    async def wait_acknowledged(self, sequence: int, timeout: float, poll: float = 0.5) -> bool:
        """Whether metering's consumer settles everything up to ``sequence`` within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self.acknowledged_through() >= sequence:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll)
