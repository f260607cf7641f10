"""Freshness: how long from "accepted" (durable in JetStream) to visible in ``QueryUsage``, under load.

The client library sends background events at a fixed rate (half the sustainable maximum) and, every
``probe_interval`` seconds, a probe event on a ``max`` metric whose value is the probe's number. A poller asks
``QueryUsage`` for that maximum continuously; probe n is visible once the maximum reaches n. A probe's
latency is visible time minus the time its acknowledgement reached the client (negative values, when metering
was faster than the acknowledgement's trip back, count as 0).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from bench.metering_rate import usage_request
from bench.stack import COUNT_METRIC, PROBE_METRIC, Stack
from bench.stack import channel as stack_channel
from billing.metering.v1 import metering_pb2_grpc
from billing_client import EventSender, EventStatus

POLL_SECONDS = 0.025  # often enough for a figure in hundreds of ms; not a load on metering itself
TICK_SECONDS = 0.01


@dataclass
class Probe:
    number: int
    sent: float
    accepted: float | None = None
    visible: float | None = None


@dataclass
class FreshnessResult:
    target_rate: float
    achieved_rate: float
    probes: list[Probe] = field(default_factory=list)
    # How long each QueryUsage poll took (a probe counts as visible when the reply that shows it arrives).
    query_seconds: list[float] = field(default_factory=list)

    def latencies(self, since: str = "accepted") -> list[float]:
        out = []
        for probe in self.probes:
            start = probe.accepted if since == "accepted" else probe.sent
            if start is not None and probe.visible is not None:
                out.append(max(0.0, probe.visible - start))
        return sorted(out)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(share * len(values) + 0.5)))
    return values[rank - 1]


async def measure(
    stack: Stack, rate: float, seconds: float, probe_interval: float, say: Callable[[str], None]
) -> FreshnessResult:
    assert stack.tenant is not None
    result = FreshnessResult(target_rate=rate, achieved_rate=0.0)
    probes: dict[int, Probe] = {}
    maximum_seen = 0
    sending_done = asyncio.Event()

    async with stack_channel(stack.metering_address) as channel:
        stub = metering_pb2_grpc.MeteringServiceStub(channel)
        request = usage_request(stack, PROBE_METRIC)

        async def poll() -> None:
            nonlocal maximum_seen
            while not (sending_done.is_set() and all(p.visible is not None for p in probes.values())):
                asked = time.perf_counter()
                reply = await stub.QueryUsage(request, timeout=5.0)
                now = time.perf_counter()
                result.query_seconds.append(now - asked)
                value = int(Decimal(reply.rows[0].value)) if reply.rows else 0
                if value > maximum_seen:
                    for number in range(maximum_seen + 1, value + 1):
                        if number in probes and probes[number].visible is None:
                            probes[number].visible = now
                    maximum_seen = value
                await asyncio.sleep(POLL_SECONDS)

        async with EventSender(stack.ingest_address, stack.tenant.api_key) as sender:
            baseline = await _current_max(stub, request)
            poller = asyncio.create_task(poll())
            maximum_seen = baseline

            async def probe(number: int) -> None:
                entry = probes[number] = Probe(number, time.perf_counter())
                outcome = await sender.send_and_wait(PROBE_METRIC, number)
                if outcome.status is not EventStatus.ACCEPTED:
                    raise RuntimeError(f"probe {number} was {outcome.status.value}: {outcome.reason}")
                entry.accepted = time.perf_counter()

            async def load() -> None:
                loop = asyncio.get_running_loop()
                started = loop.time()
                owed = 0.0
                tick = started
                while tick - started < seconds:
                    owed += rate * TICK_SECONDS
                    for _ in range(int(owed)):
                        await sender.send(COUNT_METRIC, 1, dimensions={"region": "ap-south-1"})
                    owed -= int(owed)
                    tick += TICK_SECONDS
                    await asyncio.sleep(max(0.0, tick - loop.time()))

            async def probes_every_interval() -> None:
                tasks = []
                number = baseline
                started = time.perf_counter()
                while time.perf_counter() - started < seconds:
                    number += 1
                    tasks.append(asyncio.create_task(probe(number)))
                    await asyncio.sleep(probe_interval)
                await asyncio.gather(*tasks)

            started = time.perf_counter()
            await asyncio.gather(load(), probes_every_interval())
            await sender.flush()
            elapsed = time.perf_counter() - started
            sending_done.set()
            result.achieved_rate = sender.stats.accepted / elapsed
            say(f"  freshness: {sender.stats.accepted:,} events in {elapsed:.1f}s; waiting for the last probes")
            await asyncio.wait_for(poller, timeout=60)
    result.probes = sorted(probes.values(), key=lambda p: p.number)
    return result


async def _current_max(stub: metering_pb2_grpc.MeteringServiceStub, request) -> int:
    reply = await stub.QueryUsage(request, timeout=5.0)
    return int(Decimal(reply.rows[0].value)) if reply.rows else 0
