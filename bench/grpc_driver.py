"""One driver for both gRPC figures: pre-serialised batches written on one ``StreamEvents`` stream, a window of
batches in flight, each acknowledgement read as it comes. Identical for the bare server and for ingest, so the
ratio between the two compares the servers, not the clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from billing.ingest.v1 import ingest_pb2

METHOD = "/billing.ingest.v1.IngestService/StreamEvents"
CHANNEL_OPTIONS = (("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20))


@dataclass(frozen=True)
class DriveResult:
    events: int
    seconds: float
    accepted: int
    duplicate: int
    rejected: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def drive(
    target: str, api_key: str, payloads: Sequence[bytes], batch_events: Sequence[int], window: int = 8
) -> DriveResult:
    """Write every payload on one stream with at most ``window`` unacknowledged; time first write to last ack."""
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        # No (de)serialisers: the requests are bytes already, and the replies are parsed here, cheaply.
        start_call = channel.stream_stream(METHOD, request_serializer=None, response_deserializer=None)
        await channel.channel_ready()
        call = start_call(metadata=(("authorization", f"Bearer {api_key}"),))
        slots = asyncio.Semaphore(window)
        totals = [0, 0, 0]

        async def write() -> None:
            for payload in payloads:
                await slots.acquire()
                await call.write(payload)
            await call.done_writing()

        async def read() -> None:
            for _ in payloads:
                reply = await call.read()
                if reply is grpc.aio.EOF:
                    raise RuntimeError("the server ended the stream before acknowledging every batch")
                outcome = ingest_pb2.StreamEventsResponse.FromString(reply).outcome
                totals[0] += outcome.accepted_count
                totals[1] += outcome.duplicate_count
                totals[2] += outcome.rejected_count
                slots.release()

        started = time.perf_counter()
        await asyncio.gather(write(), read())
        seconds = time.perf_counter() - started
        await call.code()
    return DriveResult(sum(batch_events), seconds, *totals)
