"""The event log: accepted events written to JetStream, many events per message.

A batch goes out as one ``EventBatchAccepted`` message when it fits the server's max payload, else split into
as few messages as fit. Each message's ``Nats-Msg-Id`` is a digest of the project and the event ids in it, so
resending the same batch within the stream's duplicate window is stored once (and reported as duplicate), and
the split is deterministic, so a resent batch digests the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from prometheus_client import Counter, Histogram

from billing.ingest.v1 import events_pb2
from billing_runtime.errors import Unavailable
from billing_runtime.logging import get_logger
from billing_runtime.tracing import producer_span
from services.ingest.service.events import IncomingEvent

log = get_logger(__name__)

EVENT_BATCH_ACCEPTED = "billing.ingest.v1.event_batch.accepted"
# Room left in a message for the protocol's headers (Nats-Msg-Id, traceparent).
_HEADER_ALLOWANCE = 1024
# Room for the envelope fields (ids, accept time) appended to a forwarded batch.
_ENVELOPE_ALLOWANCE = 256

MESSAGES = Counter("ingest_event_messages_total", "Event batch messages written to JetStream, by result.", ["result"])
APPEND_SECONDS = Histogram(
    "ingest_event_append_seconds",
    "Time for JetStream to acknowledge one event batch message.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class JetStreamEventLog:
    """Appends accepted events to the ``BILLING_INGEST`` stream and waits for JetStream's acknowledgement."""

    def __init__(self, nats: NATS, js: JetStreamContext, *, timeout_seconds: float = 5.0) -> None:
        self._nats = nats
        self._js = js
        self._timeout = timeout_seconds

    async def append(
        self, organisation_id: str, project_id: str, events: Sequence[IncomingEvent]
    ) -> list[tuple[int, int, bool]]:
        accept_time = datetime.now(UTC)
        payloads = self._split(organisation_id, project_id, events, accept_time)
        duplicates = await asyncio.gather(*(self._publish(payload, msg_id) for _, _, payload, msg_id in payloads))
        return [(start, end, duplicate) for (start, end, _, _), duplicate in zip(payloads, duplicates, strict=True)]

    def fits(self, encoded_size: int) -> bool:
        return encoded_size + _ENVELOPE_ALLOWANCE <= self._nats.max_payload - _HEADER_ALLOWANCE

    async def append_encoded(self, organisation_id: str, project_id: str, encoded: bytes, joined_ids: bytes) -> bool:
        # The request's bytes followed by the envelope's fields parse as one EventBatchAccepted: protobuf merges
        # concatenated messages, and events are field 2 in both (the request's sequence is client_sequence).
        msg_id = _digest(project_id, joined_ids)
        envelope = events_pb2.EventBatchAccepted(
            batch_id=msg_id, organisation_id=organisation_id, project_id=project_id
        )
        envelope.accept_time.GetCurrentTime()
        return await self._publish(encoded + envelope.SerializeToString(), msg_id)

    def _split(
        self, organisation_id: str, project_id: str, events: Sequence[IncomingEvent], accept_time: datetime
    ) -> list[tuple[int, int, bytes, str]]:
        limit = self._nats.max_payload - _HEADER_ALLOWANCE
        parts = 1
        while True:
            size = math.ceil(len(events) / parts)
            chunks = []
            for start in range(0, len(events), size):
                chunk = events[start : start + size]
                msg_id = _message_id(project_id, chunk)
                message = events_pb2.EventBatchAccepted(
                    batch_id=msg_id, organisation_id=organisation_id, project_id=project_id
                )
                message.accept_time.FromDatetime(accept_time)
                message.events.extend(chunk)  # type: ignore[arg-type]
                chunks.append((start, start + len(chunk), message.SerializeToString(), msg_id))
            largest = max(len(payload) for _, _, payload, _ in chunks)
            if largest <= limit:
                return chunks
            if size == 1:
                raise ValueError(f"one event is {largest} bytes, more than the {limit} bytes a message may carry")
            # Aim straight at a split that fits, with a margin for uneven event sizes.
            parts = max(parts + 1, math.ceil(parts * largest / limit * 1.1))

    async def _publish(self, payload: bytes, msg_id: str) -> bool:
        headers = {"Nats-Msg-Id": msg_id}
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            # A child of the IngestEvents call's span; its traceparent goes with the message to metering.
            with producer_span(EVENT_BATCH_ACCEPTED, headers):
                ack = await self._js.publish(EVENT_BATCH_ACCEPTED, payload, timeout=self._timeout, headers=headers)
        except (NatsError, ConnectionError, OSError) as error:  # timeout, no stream, disconnected ...
            MESSAGES.labels("failed").inc()
            log.warning("event batch not made durable", error=repr(error), msg_id=msg_id)
            raise Unavailable("events could not be made durable; retry the batch with the same event ids") from error
        APPEND_SECONDS.observe(loop.time() - started)
        duplicate = bool(ack.duplicate)
        MESSAGES.labels("duplicate" if duplicate else "stored").inc()
        return duplicate


def _message_id(project_id: str, events: Sequence[IncomingEvent]) -> str:
    return _digest(project_id, "\x00".join([event.event_id for event in events]).encode())


def _digest(project_id: str, joined_ids: bytes) -> str:
    """The message id of a batch: its project and event ids, so a resend matches whichever path it took."""
    digest = hashlib.sha256(project_id.encode())
    digest.update(b"\x00")
    digest.update(joined_ids)
    return digest.hexdigest()[:32]
