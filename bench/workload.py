"""The events the benchmark sends, built before any clock starts so that building them is never what is measured.

Batches are serialised ``StreamEventsRequest`` bytes; the same bytes go to the bare gRPC server and to ingest.
A share of each batch repeats ids of the batch before it: ingest accepts them (they are new to that batch and
that message), and metering must drop them, which is what its deduplication figure measures.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

from billing.ingest.v1 import ingest_pb2
from billing_runtime.ids import new_ulid

METRIC = "bench.requests"
REGIONS = ("ap-south-1", "eu-west-1", "us-east-1")


@dataclass
class Workload:
    """Pre-built batches plus the rows they stand for (for the bare insert baseline)."""

    payloads: list[bytes] = field(default_factory=list)  # serialised StreamEventsRequest, one per batch
    batch_events: list[int] = field(default_factory=list)
    # One row per event sent (duplicates included), column by column, as metering stores them.
    event_ids: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    timestamps_us: list[int] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)  # as JSON text
    dimension_maps: list[dict[str, str]] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.event_ids)

    @property
    def distinct(self) -> int:
        return len(set(self.event_ids))


def build_workload(events: int, batch_size: int, duplicate_share: float, seed: int = 7) -> Workload:
    """``events`` events in batches of ``batch_size``; from the second batch on, ``duplicate_share`` of each
    batch repeats ids of the previous batch (same values: a retry, as a client would send it).

    Ids are a ULID of this run followed by a counter: distinct, time-ordered like a client's, and cheap to make,
    so a million events build in seconds.
    """
    rng = random.Random(seed)
    workload = Workload()
    prefix = new_ulid()
    now_us = time.time_ns() // 1_000
    shapes = [
        ({"region": region, "customer": f"c{customer}"}, json.dumps({"region": region, "customer": f"c{customer}"},
                                                                    separators=(",", ":")))
        for customer in range(100)
        for region in REGIONS
    ]
    values = [str(v) for v in range(1, 6)]
    previous: list[tuple[ingest_pb2.Event, int, int]] = []
    made = 0
    sequence = 0
    while workload.events < events:
        size = min(batch_size, events - workload.events)
        repeats = rng.sample(previous, min(len(previous), int(size * duplicate_share))) if previous else []
        fresh: list[tuple[ingest_pb2.Event, int, int]] = []
        for _ in range(size - len(repeats)):
            shape = made % len(shapes)
            dimensions = shapes[shape][0]
            stamp_us = now_us - rng.randrange(60_000_000)  # within the last minute
            event = ingest_pb2.Event(
                event_id=f"{prefix}-{made:08d}", metric=METRIC, value=values[made % 5], dimensions=dimensions
            )
            event.timestamp.seconds, nanos = divmod(stamp_us, 1_000_000)
            event.timestamp.nanos = nanos * 1_000
            fresh.append((event, stamp_us, shape))
            made += 1
        batch = repeats + fresh
        rng.shuffle(batch)
        sequence += 1
        request = ingest_pb2.StreamEventsRequest(sequence=sequence, events=[event for event, _, _ in batch])
        workload.payloads.append(request.SerializeToString())
        workload.batch_events.append(len(batch))
        for event, stamp_us, shape in batch:
            workload.event_ids.append(event.event_id)
            workload.values.append(event.value)
            workload.timestamps_us.append(stamp_us)
            workload.dimension_maps.append(shapes[shape][0])
            workload.dimensions.append(shapes[shape][1])
        previous = fresh
    return workload


def rest_bodies(events: int, batch_size: int) -> tuple[list[bytes], int]:
    """JSON bodies for ``POST /api/v1/events`` (the existing clients' shape), distinct ids; returns (bodies, n)."""
    bodies = []
    now = time.time()
    sent = 0
    while sent < events:
        size = min(batch_size, events - sent)
        batch = [
            {
                "metricName": METRIC,
                "metricValue": 1 + (sent + i) % 5,
                "timestamp": _iso(now - (i % 60)),
                "metadata": {"region": REGIONS[(sent + i) % 3], "customer": f"c{(sent + i) % 100}"},
                "idempotencyKey": new_ulid(),
            }
            for i in range(size)
        ]
        bodies.append(json.dumps({"events": batch}, separators=(",", ":")).encode())
        sent += size
    return bodies, sent


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
