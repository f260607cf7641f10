"""Quota checks: CheckQuota latency at a fixed offered rate, beside a bare gRPC unary call at the same rate.

On a fresh stack: the bench's organisation (through the admin API, as every part makes it) on a plan with a hard
quota on ``bench.requests``, and some usage metered, so checks answer from a real plan and real usage. Then,
at the same offered rate (open loop: call n is started at start + n / rate, whatever earlier calls are doing)
and for the same duration, from one client process (this one) over one channel:

1. ``grpc.health.v1.Health/Check`` against a bare ``grpc.aio`` server in its own process
   (:mod:`bench.bare_health`: no interceptors, nothing else running in it): what a Python unary call costs here;
2. the same Check against metering's server (its interceptors and background work included);
3. ``CheckQuota`` against metering.

The gateway, notification, payments and ingest are stopped for these runs (a check involves none of them), so
their background rounds do not compete for the machine's cores. On a machine with two cores or more, the client
(this process) runs on one core and both servers on another (``sched_setaffinity``), so the client's own work
(about as much CPU a call as the server's, in Python) does not queue in front of the server it measures; each
run also reports the server's CPU time per call (from ``/proc``), the cost a call adds whatever the scheduling.

Latency is from the moment a call is started to its answer, in the client. The issue's target: CheckQuota p99
under 2 ms at 2,000 checks a second.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.freshness import percentile
from bench.stack import COUNT_METRIC, create_tenant, fresh_stack
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_client import EventSender
from devstack.ports import free_port, wait_for_tcp

TARGET_P99 = 0.002
QUOTA_LIMIT = "1000000"
WARMUP_CALLS = 500
IDLE_SERVICES = ("gateway", "notification", "payments", "ingest")


@dataclass
class Paced:
    """One open-loop run: latencies (seconds, sorted) of the calls answered, and what went wrong."""

    name: str
    rate: float
    offered: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    late_starts: int = 0  # calls started more than 1 ms after their due time: the client fell behind
    server_cpu_us: float | None = None  # the server process's CPU time per call offered, in microseconds

    def ms(self, share: float) -> str:
        return f"{percentile(self.latencies, share) * 1000:.2f} ms" if self.latencies else "n/a"


@dataclass
class QuotaFigures:
    rate: float
    duration: float
    runs: list[Paced] = field(default_factory=list)
    sample: str = ""
    problems: list[str] = field(default_factory=list)
    pinned: str = ""


async def paced(name: str, call: Callable[[], object], rate: float, duration: float) -> Paced:
    """Start ``call()`` at ``rate`` a second for ``duration`` seconds (open loop) and time each answer."""
    result = Paced(name, rate)
    total = int(rate * duration)
    result.offered = total
    tasks: list[asyncio.Task[None]] = []

    async def one() -> None:
        started = time.perf_counter()
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            result.errors += 1
            result.first_error = result.first_error or f"{error.code().name}: {error.details()}"
            return
        result.latencies.append(time.perf_counter() - started)

    gc.collect()
    gc.disable()  # a collection in the client would show up as server latency
    try:
        start = time.perf_counter()
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.001:
                result.late_starts += 1
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    result.latencies.sort()
    return result


async def _prepare(stack, say: Callable[[str], None]) -> tuple[str, int]:
    """A plan with a hard quota on the bench's metric, the tenant subscribed to it, and usage metered."""
    assert stack.tenant is not None and stack.mesh is not None
    organisation_id = stack.tenant.organisation_id
    terms = json_format.ParseDict({
        "currency": "INR", "base_fee": "0",
        "charges": [{"metric_code": COUNT_METRIC, "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.1"}}],
        "quotas": [{"metric_code": COUNT_METRIC, "limit": QUOTA_LIMIT, "cap": "QUOTA_CAP_HARD",
                    "grace_percent": "10", "grace_hours": 24}],
        "enforce_quotas_at_ingest": False,
    }, invoicing_pb2.PlanTerms())
    async with stack.mesh.channel("invoicing") as channel:
        invoicing = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        plan = (await invoicing.CreatePlan(invoicing_pb2.CreatePlanRequest(
            code=f"bench-quota-{secrets.token_hex(3)}", name="Bench quota", terms=terms))).plan
        await invoicing.CreateSubscription(invoicing_pb2.CreateSubscriptionRequest(
            organisation_id=organisation_id, plan_version_id=plan.latest_version.id))
    events = 1_000
    async with EventSender(stack.ingest_address, stack.tenant.api_key) as sender:
        for _ in range(events):
            await sender.send(COUNT_METRIC, 1)
    say(f"quota: plan {plan.code} with a hard quota of {QUOTA_LIMIT} {COUNT_METRIC}; {events} events sent")
    return organisation_id, events


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of a process so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(client_pid: int, server_pids: list[int]) -> str:
    """The client on the first core, the servers (every thread) on the second; what was done, in words."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return ""
    os.sched_setaffinity(client_pid, {cores[0]})
    for pid in server_pids:
        for thread in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(thread), {cores[1]})
    return f"client pinned to core {cores[0]}, the servers to core {cores[1]}"


async def _measure(figures: QuotaFigures, stack, bare: subprocess.Popen, bare_address: str,
                   say: Callable[[str], None]) -> None:
    organisation_id, events = await _prepare(stack, say)
    request = metering_pb2.CheckQuotaRequest(organisation_id=organisation_id, metric_code=COUNT_METRIC, quantity="1")
    health = health_pb2.HealthCheckRequest()
    # The paced runs send requests serialised once and take answers as bytes: the client's own CPU (about 0.3 ms
    # a call in Python) competes with the servers on this machine, so it does no more than it must.
    request_bytes, health_bytes = request.SerializeToString(), health.SerializeToString()
    async with (
        grpc.aio.insecure_channel(stack.metering_address) as metering_channel,
        grpc.aio.insecure_channel(bare_address) as bare_channel,
    ):
        metering = metering_pb2_grpc.MeteringServiceStub(metering_channel)
        # The mesh credential per call, not through a client interceptor: the client's CPU is the bench's noise.
        credential = stack.mesh.operator.metadata()
        metering_health = health_pb2_grpc.HealthStub(metering_channel)
        bare_health = health_pb2_grpc.HealthStub(bare_channel)

        def raw(channel: grpc.aio.Channel, method: str) -> Callable[[bytes], object]:
            return channel.unary_unary(method, request_serializer=None, response_deserializer=None)

        check_raw = raw(metering_channel, "/billing.metering.v1.MeteringService/CheckQuota")
        metering_health_raw = raw(metering_channel, "/grpc.health.v1.Health/Check")
        bare_health_raw = raw(bare_channel, "/grpc.health.v1.Health/Check")
        deadline = time.monotonic() + 60
        while True:  # until the events are metered: the checks then read real usage
            status = (await metering.CheckQuota(request, metadata=credential)).status
            if int(status.used) >= events or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        figures.sample = json_format.MessageToJson(status, indent=None)
        # Only metering (and invoicing, which it asked once) take part in a check: the other services' background
        # rounds would only compete for this machine's two cores.
        for name in IDLE_SERVICES:
            stack.mesh.stop_service(name)
        say(f"quota: stopped {', '.join(IDLE_SERVICES)} for the measured runs")
        metering_pid = stack.mesh.pid("metering")
        figures.pinned = pin(os.getpid(), [bare.pid, metering_pid])
        if figures.pinned:
            say(f"quota: {figures.pinned}")
        for _ in range(WARMUP_CALLS):
            await bare_health.Check(health)
            await metering_health.Check(health)
            await metering.CheckQuota(request, metadata=credential)
        runs = [
            ("bare gRPC unary (health Check, bare server)", lambda: bare_health_raw(health_bytes), bare.pid),
            ("gRPC unary (health Check, metering's server)", lambda: metering_health_raw(health_bytes), metering_pid),
            ("CheckQuota", lambda: check_raw(request_bytes, metadata=credential), metering_pid),
        ]
        for name, call, server_pid in runs:
            say(f"quota: {name} at {figures.rate:,.0f}/s for {figures.duration:.0f} s")
            before = cpu_seconds(server_pid)
            run = await paced(name, call, figures.rate, figures.duration)
            run.server_cpu_us = (cpu_seconds(server_pid) - before) / max(run.offered, 1) * 1e6
            figures.runs.append(run)
            say(f"  p50 {run.ms(0.5)}, p99 {run.ms(0.99)}, max {run.ms(1.0)}, errors {run.errors}, "
                f"late starts {run.late_starts}, server CPU {run.server_cpu_us:.0f} µs a call")
            if run.errors:
                figures.problems.append(f"{name}: {run.errors} of {run.offered} calls failed ({run.first_error})")


def run(rate: float, duration: float, say: Callable[[str], None]) -> QuotaFigures:
    figures = QuotaFigures(rate=rate, duration=duration)
    env = {"invoicing": {"INVOICING_SCHEDULER_ENABLED": "false"}}
    with fresh_stack(lambda m: say(f"  {m}"), service_env=env) as stack:
        say("quota: creating the bench's organisation, project, key and metrics")
        create_tenant(stack, lambda m: say(f"  {m}"))
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.bare_health", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
        try:
            if not wait_for_tcp("127.0.0.1", port, 30):
                raise RuntimeError("the bare gRPC server did not start")
            asyncio.run(_measure(figures, stack, bare, f"127.0.0.1:{port}", say))
        finally:
            bare.terminate()
            bare.wait(timeout=10)
    return figures


def rows(figures: QuotaFigures) -> list[tuple[str, str, str, str, str]]:
    bare = next((r for r in figures.runs if r.name.startswith("bare")), None)
    table = []
    for result in figures.runs:
        for label, share in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
            ours = result.ms(share)
            limit = bare.ms(share) if bare is not None and result is not bare else ""
            target = f"< {TARGET_P99 * 1000:.0f} ms" if result.name == "CheckQuota" and label == "p99" else ""
            table.append((f"{result.name} {label}, {figures.rate:,.0f}/s", ours, limit, "", target))
        if result.server_cpu_us is not None:
            limit = f"{bare.server_cpu_us:.0f} µs" if bare is not None and bare.server_cpu_us and result is not bare \
                else ""
            table.append((f"{result.name} server CPU a call", f"{result.server_cpu_us:.0f} µs", limit, "", ""))
    return table


def notes(figures: QuotaFigures) -> list[str]:
    lines = [
        f"quota: open loop at {figures.rate:,.0f} calls/s for {figures.duration:.0f} s per run, one client process, "
        "one channel per server; latency from call start to answer in the client",
    ]
    if figures.pinned:
        lines.append(f"quota: {figures.pinned}")
    for result in figures.runs:
        if result.late_starts:
            lines.append(f"{result.name}: {result.late_starts} of {result.offered} calls started over 1 ms late "
                         "(the client fell behind its schedule)")
    if figures.sample:
        lines.append(f"a CheckQuota answer: {figures.sample}")
    return lines + [f"PROBLEM: {problem}" for problem in figures.problems]
