"""``python -m bench.chaos`` (``make chaos``): usage events sent while the platform is broken on purpose, then
counted: every distinct event must be counted exactly once (0 lost, 0 doubled).

On a fresh stack (PostgreSQL, NATS and every service in a temporary directory, as ``make bench`` builds it) a
new organisation, project, key and ``sum`` metric receive ``--events`` sends, ``--duplicates`` of them resends of
ids already sent (same id, value and timestamp: a client retrying). Most go through the client library
(``EventSender`` over gRPC ``StreamEvents``), a share as JSON through the gateway's ``POST /api/v1/events``
(retried with the same ids until answered). Meanwhile the chaos schedule, one step at a given share of the sends:
metering SIGKILLed three times, ingest SIGKILLed once, NATS restarted once and PostgreSQL restarted once (each
stopped and started on the same data directory and port); killed services are started again, and a service that
exits on its own is restarted as ``make run`` does (devstack's Supervisor; counted as an error). The sender never
gets more than one step ahead of the schedule, so every step happens with events in flight.

At the end it waits until metering has counted everything it is going to, and prints sent, accepted (the clients'
acknowledgements, resends included), distinct, counted (metering's event count and sum over the metric), lost and
doubled; the exit status is non-zero unless both are 0 and the sum is exact.

``--soak 30m`` instead holds a steady rate (``--rate``; by default half the sustainable load, measured first for
10 s) with no chaos, and prints every ``--report-every`` seconds each service's resident memory, the error counts
and metering's lag; at the end the RSS drift of each service from its first report (target: within 10 %).
"""

from __future__ import annotations

import os

# Before gRPC is imported: its fork handlers, on by default, make a child forked while this process's gRPC threads
# are busy crash (SIGSEGV in an "event_engine" thread, before exec) about one time in four when subprocess must
# fork() rather than vfork(), which it must to drop root for PostgreSQL. Restarting PostgreSQL here, under load,
# is exactly that. The children exec at once, so the handlers have nothing to do for them.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import argparse
import asyncio
import random
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
import httpx

from bench.stack import channel as stack_channel
from billing.ingest.v1 import ingest_pb2
from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_client import EventSender
from billing_runtime.ids import new_ulid
from billing_runtime.timestamps import to_timestamp
from devstack.supervision import RestartPolicy, Supervisor

METRIC = "chaos.units"
# The schedule: (share of the sends after which the step starts, step). Metering three times, ingest, NATS and
# PostgreSQL once each, spread over the run so each lands on a different part of the load.
SCHEDULE: tuple[tuple[float, str], ...] = (
    (0.10, "kill metering"),
    (0.22, "kill ingest"),
    (0.34, "kill metering"),
    (0.46, "restart nats"),
    (0.58, "kill metering"),
    (0.70, "restart postgres"),
)
REST_SHARE = 0.05  # of the sends, through the gateway's REST API
REST_BATCH = 500

_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[chaos {time.perf_counter() - _T0:6.1f}s] {message}", flush=True)


@dataclass
class Report:
    sent: int = 0  # events handed to a sender (resends of an id included, retries of a REST batch not)
    accepted: int = 0  # acknowledged as accepted by ingest (an id resent in a later batch is accepted again)
    acknowledged_duplicates: int = 0  # acknowledged as a duplicate (an identical batch or a repeat within one)
    rejected: int = 0
    distinct: int = 0
    expected_sum: Decimal = Decimal(0)
    counted: int = 0
    counted_sum: Decimal = Decimal(0)
    steps: list[str] = field(default_factory=list)
    restarts_by_supervisor: int = 0
    rest_retries: int = 0
    reconnects: int = 0
    unexpected_exits: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.distinct - self.counted)

    @property
    def doubled(self) -> int:
        return max(0, self.counted - self.distinct)

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.counted_sum == self.expected_sum and self.rejected == 0

    def lines(self) -> list[str]:
        return [
            f"sent      {self.sent:>12,}  (of which resends of an id already sent: {self.sent - self.distinct:,})",
            f"accepted  {self.accepted:>12,}  (client acknowledgements; duplicates acknowledged: "
            f"{self.acknowledged_duplicates:,}, rejected: {self.rejected:,})",
            f"distinct  {self.distinct:>12,}  (sum {self.expected_sum})",
            f"counted   {self.counted:>12,}  (sum {self.counted_sum})",
            f"lost      {self.lost:>12,}",
            f"doubled   {self.doubled:>12,}",
            f"chaos: {'; '.join(self.steps) or 'none'}",
            f"client stream reconnects {self.reconnects}, REST retries {self.rest_retries}, "
            f"restarts after an unplanned exit {self.restarts_by_supervisor}"
            + (f" ({', '.join(self.unexpected_exits)})" if self.unexpected_exits else ""),
        ]


# -- the tenant and the count --------------------------------------------------------------------------------------


def create_tenant(gateway_url: str, admin_token: str) -> tuple[str, str]:
    """A new organisation with a project, a key and the sum metric; returns (organisation id, api key)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=30) as client:
        organisation = client.post("/api/v1/admin/organisations", json={
            "name": f"Chaos {secrets.token_hex(3)}", "billing_email": "ops@chaos.example", "billing_currency": "INR",
            "country": "IN", "state_code": "29", "timezone": "Asia/Kolkata",
        })
        organisation.raise_for_status()
        organisation_id = organisation.json()["id"]
        project = client.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "chaos"})
        project.raise_for_status()
        key = client.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]})
        key.raise_for_status()
        metric = client.post("/api/v1/admin/metrics", json={
            "organisation_id": organisation_id, "code": METRIC, "name": METRIC, "aggregation": "sum"})
        metric.raise_for_status()
    return organisation_id, key.json()["secret"]


async def usage(metering_address: str, organisation_id: str, start: datetime) -> tuple[int, Decimal]:
    """Metering's event count and sum of the metric since ``start``."""
    async with stack_channel(metering_address) as channel:
        reply = await metering_pb2_grpc.MeteringServiceStub(channel).QueryUsage(
            metering_pb2.QueryUsageRequest(
                organisation_id=organisation_id, metric_code=METRIC, start_time=to_timestamp(start),
                end_time=to_timestamp(datetime.now(UTC) + timedelta(hours=1)),
            ),
            timeout=10,
        )
    return sum(r.event_count for r in reply.rows), sum((Decimal(r.value) for r in reply.rows), Decimal(0))


async def wait_counted(metering_address: str, organisation_id: str, start: datetime, report: Report,
                       timeout: float, quiet_seconds: float = 3.0) -> None:
    """Poll metering until it shows every distinct event (then ``quiet_seconds`` more, so a late double shows),
    or its count stops moving for ``timeout`` seconds."""
    last_change = time.monotonic()
    previous: tuple[int, Decimal] | None = None
    reached: float | None = None
    while True:
        try:
            current = await usage(metering_address, organisation_id, start)
        except grpc.aio.AioRpcError as error:
            say(f"QueryUsage: {error.code().name}; asking again")
            await asyncio.sleep(1)
            continue
        report.counted, report.counted_sum = current
        now = time.monotonic()
        if current != previous:
            previous, last_change = current, now
        if report.counted >= report.distinct:
            reached = reached or now
            if now - reached >= quiet_seconds:
                return
        elif now - last_change > timeout:
            say(f"metering's count has not moved for {timeout:.0f}s; giving up waiting")
            return
        await asyncio.sleep(0.5)


# -- the chaos -----------------------------------------------------------------------------------------------------


class _Recorded:
    """The mesh as the supervisor sees it, noting each unplanned exit in the report."""

    def __init__(self, mesh, report: Report) -> None:
        self._mesh, self._report = mesh, report

    def unexpected_exits(self) -> list[tuple[str, int]]:
        exits = self._mesh.unexpected_exits()
        self._report.unexpected_exits += [f"{name} exited with {code}" for name, code in exits]
        return exits

    def __getattr__(self, name: str):
        return getattr(self._mesh, name)


class ChaosMonkey:
    """Runs the schedule's steps when the sender asks, and restarts any service that exits on its own, in one
    thread, so the mesh is only ever touched from there."""

    def __init__(self, stack, report: Report, schedule: tuple[tuple[float, str], ...]) -> None:
        self.stack, self.report, self.schedule = stack, report, schedule
        self.requested = 0  # steps the sender has reached
        self.done = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        policy = RestartPolicy(initial_seconds=0.5, max_seconds=5.0)
        self._supervisor = Supervisor(_Recorded(stack.mesh, report), policy, say=say,
                                      warn=lambda message: say(f"warning: {message}"))
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def start(self) -> ChaosMonkey:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=300)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._supervisor.check()
                if self.done < self.requested:
                    self._step(self.schedule[self.done][1])
                    self.done += 1
            except BaseException as error:  # noqa: BLE001 - reported by the sender's thread
                say(f"chaos: step {self.done + 1} failed: {error}")
                self.error = error
                return
            time.sleep(0.1)
        self.report.restarts_by_supervisor = sum(self._supervisor.restarts(name) for name in self.stack.mesh.services)

    def _wait_serving(self, timeout: float = 60.0) -> None:
        """Wait until every service reports SERVING again (each notices its dependency is back by itself)."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = {name: self.stack.mesh.health(name) for name in self.stack.mesh.services}
            if all(status == "SERVING" for status in statuses.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"services not SERVING {timeout:.0f}s after the restart: {statuses}")
            time.sleep(0.25)

    def _step(self, step: str) -> None:
        started = time.monotonic()
        action, target = step.split()
        mesh = self.stack.mesh
        if action == "kill":
            mesh.kill(target)  # SIGKILL: a crash, nothing flushed
            time.sleep(0.3)  # events keep arriving (or queueing in the clients) while it is down
            mesh.start_service(target)
        elif target in ("nats", "postgres"):
            server = getattr(self.stack, target)
            port = server.port
            server.restart()
            if server.port != port:
                raise RuntimeError(f"{target} came back on port {server.port}, not {port}: the services cannot find it")
            self._wait_serving()
        else:
            raise ValueError(step)
        took = time.monotonic() - started
        say(f"chaos: {step} done in {took:.1f}s")
        self.report.steps.append(f"{step} ({took:.1f}s)")


# -- the senders ---------------------------------------------------------------------------------------------------


class Plan:
    """Which id the n-th send carries: a new one, or (``duplicates`` of the time) one sent recently."""

    def __init__(self, duplicates: float, seed: int = 14) -> None:
        self.rng = random.Random(seed)
        self.duplicates = duplicates
        self.prefix = new_ulid()
        self.distinct = 0
        self.expected_sum = Decimal(0)

    def next(self) -> int:
        if self.distinct and self.rng.random() < self.duplicates:
            return self.rng.randrange(max(0, self.distinct - 50_000), self.distinct)
        self.distinct += 1
        self.expected_sum += self.value(self.distinct - 1)
        return self.distinct - 1

    def event_id(self, number: int) -> str:
        return f"{self.prefix}-{number:08d}"

    @staticmethod
    def value(number: int) -> Decimal:
        return Decimal(1 + number % 5) + Decimal(number % 7) / 100


class RestSender:
    """Posts batches to the gateway, one at a time in the background, each retried with the same ids until
    answered with every event accepted or a duplicate."""

    def __init__(self, gateway_url: str, api_key: str, report: Report, monkey: ChaosMonkey | None = None) -> None:
        self.report, self.monkey = report, monkey
        self.client = httpx.AsyncClient(base_url=gateway_url, timeout=30,
                                        headers={"Authorization": f"Bearer {api_key}"})
        self.queue: asyncio.Queue[list[dict[str, str]] | None] = asyncio.Queue(maxsize=4)
        self.task = asyncio.create_task(self._run())

    async def send(self, batch: list[dict[str, str]]) -> None:
        await self.queue.put(batch)

    async def close(self) -> None:
        await self.queue.put(None)
        await self.task
        await self.client.aclose()

    async def _run(self) -> None:
        while (batch := await self.queue.get()) is not None:
            deadline = time.monotonic() + 120
            while True:
                try:
                    reply = await self.client.post("/api/v1/events", json=batch)
                    if reply.status_code == 202 and reply.json()["rejected"] == 0:
                        body = reply.json()
                        self.report.accepted += body["accepted"]
                        self.report.acknowledged_duplicates += body["duplicates"]
                        break
                    problem = f"HTTP {reply.status_code} {reply.text[:200]}"
                except httpx.HTTPError as error:
                    problem = f"{type(error).__name__}: {error}"
                if time.monotonic() > deadline:
                    raise RuntimeError(f"REST batch not accepted within 120 s: {problem}")
                if self.monkey is not None and self.monkey.error is not None:
                    raise RuntimeError(f"a chaos step failed ({self.monkey.error}); REST: {problem}")
                self.report.rest_retries += 1
                await asyncio.sleep(0.5)


async def send_all(stack, api_key: str, events: int, duplicates: float, rate: float, report: Report,
                   monkey: ChaosMonkey | None, when: datetime, seed: int = 14) -> Plan:
    """Send ``events`` at about ``rate`` a second (0: as fast as the senders go), stepping the chaos schedule."""
    plan = Plan(duplicates, seed)
    timestamp = to_timestamp(when)
    stamp = when.isoformat()
    rest_rng = random.Random(seed + 1)
    rest = RestSender(stack.gateway_url, api_key, report, monkey)
    rest_batch: list[dict[str, str]] = []
    started = time.monotonic()
    thresholds = [int(share * events) for share, _ in (monkey.schedule if monkey else ())]
    async with EventSender(stack.ingest_address, api_key, batch_size=1000, linger_seconds=0.02,
                           give_up_after_seconds=300) as sender:
        for n in range(events):
            if monkey is not None:
                while monkey.requested < len(thresholds) and n >= thresholds[monkey.requested]:
                    # At most one step ahead: wait for the previous step before starting the next.
                    while monkey.done < monkey.requested:
                        if monkey.error is not None:
                            raise monkey.error
                        await asyncio.sleep(0.05)
                    monkey.requested += 1
            number = plan.next()
            value = plan.value(number)
            if rest_rng.random() < REST_SHARE:
                rest_batch.append({"eventId": plan.event_id(number), "metricName": METRIC,
                                   "metricValue": str(value), "timestamp": stamp})
                if len(rest_batch) >= REST_BATCH:
                    await rest.send(rest_batch)
                    rest_batch = []
            else:
                event = ingest_pb2.Event(event_id=plan.event_id(number), metric=METRIC, value=str(value))
                event.timestamp.CopyFrom(timestamp)
                await sender.send_event(event)
            report.sent += 1
            report.distinct = plan.distinct
            if monkey is not None and monkey.error is not None:
                raise RuntimeError(f"a chaos step failed: {monkey.error}") from monkey.error
            if rate and n % 500 == 0:
                ahead = n / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        if rest_batch:
            await rest.send(rest_batch)
        await rest.close()
        while True:
            try:
                await sender.flush(timeout=1.0)
                break
            except TimeoutError:
                if monkey is not None and monkey.error is not None:
                    raise RuntimeError(f"a chaos step failed: {monkey.error}") from monkey.error
    stats = sender.stats
    report.accepted += stats.accepted
    report.acknowledged_duplicates += stats.duplicate
    report.rejected += stats.rejected
    report.reconnects += stats.reconnects
    report.distinct, report.expected_sum = plan.distinct, plan.expected_sum
    say(f"sent {report.sent:,} in {time.monotonic() - started:.1f}s ({plan.distinct:,} distinct)")
    return plan


# -- the run -------------------------------------------------------------------------------------------------------


def run_chaos(stack, events: int, duplicates: float, rate: float, catch_up_timeout: float = 120.0,
              schedule: tuple[tuple[float, str], ...] = SCHEDULE) -> Report:
    """The chaos run on ``stack`` (a fresh bench stack: its mesh, NATS and PostgreSQL are restarted)."""
    report = Report()
    organisation_id, api_key = create_tenant(stack.gateway_url, stack.admin_token)
    start = datetime.now(UTC) - timedelta(hours=1)
    when = datetime.now(UTC) - timedelta(minutes=10)
    monkey = ChaosMonkey(stack, report, schedule).start()
    say(f"sending {events:,} events ({duplicates:.0%} resends, {REST_SHARE:.0%} over REST) at "
        f"{rate:,.0f}/s while: {', '.join(step for _, step in schedule)}")
    try:
        asyncio.run(send_all(stack, api_key, events, duplicates, rate, report, monkey, when))
        while monkey.done < len(schedule) and monkey.error is None:
            time.sleep(0.1)
        say("waiting until metering has counted everything")
        asyncio.run(wait_counted(stack.metering_address, organisation_id, start, report, catch_up_timeout))
    finally:
        monkey.stop()
    if monkey.error is not None:
        raise monkey.error
    return report


# -- soak ----------------------------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    """Current resident memory (VmRSS) of a process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def parse_duration(text: str) -> float:
    """``30m``, ``90s``, ``1h`` or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 90s, 1h)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


async def measure_sustainable(stack, api_key: str, organisation_id: str, seconds: float = 10.0) -> float:
    """Send distinct events as fast as one client goes for ``seconds``; sustainable = the lower of the rate ingest
    acknowledged them at and the rate they were counted at, first send to the last one counted."""
    start = datetime.now(UTC) - timedelta(hours=1)
    timestamp = to_timestamp(datetime.now(UTC) - timedelta(minutes=10))
    prefix = new_ulid()
    counted_before, _ = await usage(stack.metering_address, organisation_id, start)
    began = time.monotonic()
    async with EventSender(stack.ingest_address, api_key) as sender:
        number = 0
        while time.monotonic() - began < seconds:
            event = ingest_pb2.Event(event_id=f"{prefix}-cal-{number:09d}", metric=METRIC, value="1")
            event.timestamp.CopyFrom(timestamp)
            await sender.send_event(event)
            number += 1
    acknowledged = number / (time.monotonic() - began)
    while (await usage(stack.metering_address, organisation_id, start))[0] - counted_before < number:
        if time.monotonic() - began > seconds + 120:
            raise RuntimeError("calibration: metering did not count the calibration's events within 120 s")
        await asyncio.sleep(0.2)
    metered = number / (time.monotonic() - began)
    say(f"calibration: {number:,} events, {acknowledged:,.0f} ev/s acknowledged, {metered:,.0f} ev/s counted")
    return min(acknowledged, metered)


def run_soak(stack, duration: float, duplicates: float, rate: float | None, report_every: float) -> tuple[Report, bool]:
    """Steady load for ``duration`` seconds; prints RSS per service and error counts every ``report_every``."""
    if not rate:
        calibration_organisation, calibration_key = create_tenant(stack.gateway_url, stack.admin_token)
        rate = asyncio.run(measure_sustainable(stack, calibration_key, calibration_organisation)) / 2
    # A tenant of its own: the calibration's events are not the soak's.
    organisation_id, api_key = create_tenant(stack.gateway_url, stack.admin_token)
    report = Report()
    events = int(rate * duration)
    start = datetime.now(UTC) - timedelta(hours=1)
    when = datetime.now(UTC) - timedelta(minutes=10)
    monkey = ChaosMonkey(stack, report, ()).start()  # no chaos: only restarts of a service that dies
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(report_every):
            rss = {name: rss_mib(pid) or 0.0 for name, pid in stack.service_pids().items()}
            if not first:
                first.update(rss)
            last.update(rss)
            try:
                counted, _ = asyncio.run(usage(stack.metering_address, organisation_id, start))
                lag = report.distinct - counted
            except grpc.RpcError:
                lag = -1
            errors = report.rejected + report.rest_retries + len(report.unexpected_exits)
            say("soak: RSS MiB " + " ".join(f"{name} {mib:.0f}" for name, mib in rss.items())
                + f" | sent {report.sent:,}, errors {errors} (rejected {report.rejected}, REST retries "
                f"{report.rest_retries}, unplanned exits {len(report.unexpected_exits)}), metering behind by "
                f"{lag:,} distinct events")

    watcher = threading.Thread(target=watch, daemon=True)
    say(f"soak: {duration:.0f}s at {rate:,.0f} events/s ({events:,} events, {duplicates:.0%} resends)")
    watcher.start()
    try:
        asyncio.run(send_all(stack, api_key, events, duplicates, rate, report, None, when, seed=30))
        asyncio.run(wait_counted(stack.metering_address, organisation_id, start, report, 120.0))
    finally:
        stop.set()
        watcher.join()
        monkey.stop()
    flat = True
    for name, mib in first.items():
        drift = (last.get(name, mib) - mib) / mib if mib else 0.0
        flat &= abs(drift) <= 0.10
        say(f"soak: {name} RSS {mib:.0f} -> {last.get(name, mib):.0f} MiB ({drift:+.1%})")
    return report, flat


# -- command line --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="sends (default 1,000,000)")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of resent ids (default 0.2)")
    parser.add_argument("--rate", type=float, default=None,
                        help="sends a second (chaos default 20,000; soak default half the sustainable rate)")
    parser.add_argument("--skip", action="append", default=[], metavar="STEP",
                        help="leave a step of the schedule out (repeatable): e.g. --skip 'restart postgres'")
    parser.add_argument("--soak", type=parse_duration, default=None,
                        help="soak instead of chaos for this long (30m, 90s ...): steady load, no chaos")
    parser.add_argument("--report-every", type=parse_duration, default=60.0,
                        help="soak: seconds between reports (default 60)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, stack_factory: Callable | None = None) -> int:
    args = parse_args(argv)
    if not 0 <= args.duplicates < 1:
        raise SystemExit("--duplicates must be in [0, 1)")
    unknown = set(args.skip) - {step for _, step in SCHEDULE}
    if unknown:
        raise SystemExit(f"--skip: no such step {sorted(unknown)}; steps: {sorted({s for _, s in SCHEDULE})}")
    from bench.stack import fresh_stack  # noqa: PLC0415 - keeps `--help` fast

    with (stack_factory or fresh_stack)(say) as stack:
        if args.soak:
            report, flat = run_soak(stack, args.soak, args.duplicates, args.rate, args.report_every)
        else:
            schedule = tuple((share, step) for share, step in SCHEDULE if step not in args.skip)
            report, flat = run_chaos(stack, args.events, args.duplicates, args.rate or 20_000,
                                     schedule=schedule), True
    print()
    for line in report.lines():
        print(line)
    if args.soak:
        print(f"RSS flat within 10 %: {'yes' if flat else 'NO'}")
    ok = report.exact and (not args.soak or (flat and not report.unexpected_exits))
    print("RESULT:", "OK (0 lost, 0 doubled)" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
