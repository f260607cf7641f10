"""Razorpay webhooks through the gateway into payments: how many a second, how soon acknowledged, how soon applied.

On a fresh stack of its own with the local Razorpay sandbox wired in as `make run` wires it (payments makes its
orders there; the gateway verifies with its webhook secret):

1. Orders payments knows (:mod:`bench.webhook_orders`, not measured): synthetic ``invoice.issued`` messages,
   and the orders payments makes for them at the sandbox, read back through ``GetInvoicePayments``.
2. One ``payment.captured`` delivery per order (:mod:`bench.webhook_driver`), so every delivery is really
   applied: a payment stored, the invoice settled, dunning stopped, ``payment.captured`` published.
3. Applied = payments' ``billing.payments.v1.payment.captured`` seen on a core NATS subscription (its outbox
   relay publishes it once the transaction that applied the delivery committed), timestamped on arrival.

Runs, the gateway's beside the same run against the bare endpoint (:mod:`bench.bare_webhook`) where that
makes sense: at a fixed offered rate (open loop) with payments stopped, so the gateway's acknowledgement is
measured alone (as ingest runs without metering); payments restarted on that backlog (its rate alone); the
fixed rate again with payments running (acknowledgement and delivery -> applied); half of payments' rate
(delivery -> applied when payments keeps up); full speed with a bounded number in flight (acknowledged a
second, and first sent -> last applied). CPU seconds of the gateway, payments, NATS, PostgreSQL and the sending
process are taken around each run.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import nats

from bench import webhook_driver, webhook_orders
from bench.freshness import percentile
from bench.invoice_close import cpu_seconds, postgres_pids
from bench.stack import Stack, fresh_stack
from bench.webhook_driver import Delivery, Sending
from billing.payments.v1 import events_pb2 as payments_events
from devstack.ports import free_port, wait_for_tcp

PAYMENT_CAPTURED = "billing.payments.v1.payment.captured"
ACK_TARGET_P99 = 0.050  # the payments issue: acknowledgement p99 < 50 ms at 200 deliveries/s on this machine
SETTLED_TARGET_P99 = 1.0  # and delivery -> applied p99 < 1 s
WARMUP = 50


@dataclass
class Run:
    """One measured run: what was sent, when each delivery was applied (gateway runs), and CPU seconds spent."""

    sending: Sending
    applied: list[float | None] = field(default_factory=list)  # perf_counter of payment.captured, per delivery
    cpu: dict[str, float] = field(default_factory=dict)

    def applied_latencies(self) -> list[float]:
        return sorted(a - s.due for a, s in zip(self.applied, self.sending.sent, strict=True) if a is not None)

    @property
    def missing(self) -> int:
        return sum(1 for a in self.applied if a is None)

    @property
    def applied_seconds(self) -> float:
        """First send to the last delivery applied."""
        done = [a for a in self.applied if a is not None]
        return max(done) - self.sending.started if done else 0.0


@dataclass
class WebhookFigures:
    rate: float
    duration: float
    webhooks: int
    concurrency: int
    orders: int = 0
    order_seconds: float = 0.0
    alone: Run | None = None  # fixed rate, payments stopped: the gateway's acknowledgements alone
    bare_paced: Run | None = None
    backlog: Run | None = None  # the same deliveries, applied once payments started again
    backlog_rate: float = 0.0
    backlog_seconds: float = 0.0
    paced: Run | None = None  # fixed rate, payments running: acknowledged and applied
    half_rate: float = 0.0
    half: Run | None = None  # at half of backlog_rate: the path's latency when payments keeps up
    burst: Run | None = None
    bare_burst: Run | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class AppliedWatcher:
    """Arrival times of payments' payment.captured events, by provider payment id (a core NATS subscription:
    it sees every publish on the subject, as JetStream's stream does)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self._changed = asyncio.Event()

    async def _on(self, msg) -> None:  # noqa: ANN001 - nats.aio.msg.Msg
        arrived = time.perf_counter()
        event = payments_events.PaymentCaptured.FromString(msg.data)
        self.arrivals.setdefault(event.provider_payment_id, arrived)
        self._changed.set()

    async def wait_for(self, deliveries: Sequence[Delivery], timeout: float) -> list[float | None]:
        deadline = time.perf_counter() + timeout
        wanted = [d.payment_id for d in deliveries]
        while not all(p in self.arrivals for p in wanted) and time.perf_counter() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(1.0, deadline - time.perf_counter()))
            except TimeoutError:
                pass
        return [self.arrivals.get(p) for p in wanted]


def run(rate: float, duration: float, webhooks: int, concurrency: int, say: Callable[[str], None]) -> WebhookFigures:
    figures = WebhookFigures(rate=rate, duration=duration, webhooks=webhooks, concurrency=concurrency)
    # Payments as `make run` configures it; invoicing's scheduler off, so nothing but the benchmark runs.
    env = {"invoicing": {"INVOICING_SCHEDULER_ENABLED": "false"}}
    with fresh_stack(lambda m: say(f"  {m}"), service_env=env, razorpay=True) as stack:
        assert stack.razorpay is not None
        secret = stack.razorpay.keys["webhook_secret"]
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.bare_webhook", str(port)],
                                env={**os.environ, "BARE_WEBHOOK_SECRET": secret},
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            if not wait_for_tcp("127.0.0.1", port, 30):
                raise RuntimeError("the bare webhook server did not start")
            asyncio.run(_measure(stack, figures, say, secret, port, bare.pid))
        finally:
            bare.terminate()
            bare.wait(10)
    return figures


async def _measure(stack: Stack, figures: WebhookFigures, say: Callable[[str], None], secret: str, port: int,
                   bare_pid: int) -> None:
    assert stack.mesh is not None
    mesh = stack.mesh
    paced_count = max(1, round(figures.rate * figures.duration))
    # A third fixed-rate run at half of what payments sustains (known only later): room for up to half the rate.
    half_count = max(1, round(figures.rate / 2 * figures.duration))
    needed = WARMUP + 2 * paced_count + half_count + figures.webhooks
    say(f"webhooks: {needed:,} invoices issued (synthetic invoice.issued messages); payments orders each at the "
        "Razorpay sandbox")
    started = time.perf_counter()
    invoice_ids = await webhook_orders.issue_invoices(stack.nats_url, needed)
    orders = await webhook_orders.created_orders(stack, invoice_ids, say)
    figures.orders, figures.order_seconds = len(orders), time.perf_counter() - started
    say(f"  {len(orders):,} orders created in {figures.order_seconds:.1f} s")
    deliveries = webhook_driver.build_deliveries(
        [order.provider_order_id for order in orders], webhook_orders.TOTAL_MINOR, "INR", secret)
    warm, deliveries = deliveries[:WARMUP], deliveries[WARMUP:]
    # Thousands of long-lived objects (deliveries, orders) are built by now: a full collection of them in the
    # middle of a fixed-rate run would stall this sender for tens of milliseconds and count against the server.
    gc.collect()
    gc.freeze()
    alone, deliveries = deliveries[:paced_count], deliveries[paced_count:]
    paced, deliveries = deliveries[:paced_count], deliveries[paced_count:]
    half, burst = deliveries[:half_count], deliveries[half_count:]

    watcher = AppliedWatcher()
    connection = await nats.connect(stack.nats_url, name="bench-webhooks")
    try:
        await connection.subscribe(PAYMENT_CAPTURED, cb=watcher._on, pending_msgs_limit=1_000_000)
        gateway = webhook_driver.client(stack.gateway_url, max(64, figures.concurrency))
        bare_http = webhook_driver.client(f"http://127.0.0.1:{port}", max(64, figures.concurrency))
        async with gateway, bare_http:
            bare_pids: dict[str, int | list[int]] = {"bare server": bare_pid, "bench (sender)": os.getpid()}
            say(f"  warming up: {WARMUP} deliveries to each, 4 at a time")
            await webhook_driver.saturate(bare_http, warm, 4)
            _check(await webhook_driver.saturate(gateway, warm, 4), "warm-up", figures)
            await watcher.wait_for(warm, 60)

            say("stopping payments, so the gateway has the machine for the acknowledgement figure")
            await asyncio.to_thread(mesh.stop_service, "payments")
            say(f"fixed rate, payments stopped: {len(alone):,} deliveries at {figures.rate:,.0f}/s (open loop), "
                "bare endpoint first")
            figures.bare_paced = await _timed(bare_pids, webhook_driver.paced(bare_http, alone, figures.rate))
            _check(figures.bare_paced.sending, "bare, fixed rate", figures)
            figures.alone = await _timed(_pids(stack), webhook_driver.paced(gateway, alone, figures.rate))
            _check(figures.alone.sending, "gateway alone, fixed rate", figures)
            _say_run(say, "bare", figures.bare_paced)
            _say_run(say, "gateway", figures.alone)

            say(f"starting payments on the backlog of {len(alone):,} deliveries")
            restarted = time.perf_counter()
            backlog = asyncio.create_task(watcher.wait_for(alone, 60 + len(alone) / 20))
            await asyncio.to_thread(mesh.start_service, "payments")
            figures.backlog = Run(figures.alone.sending, await backlog)
            applied = sorted(a for a in figures.backlog.applied if a is not None)
            if len(applied) > 1:
                figures.backlog_rate = (len(applied) - 1) / (applied[-1] - applied[0])
                figures.backlog_seconds = applied[-1] - restarted
            say(f"  {len(applied):,} applied at {figures.backlog_rate:,.0f}/s (first to last; "
                f"{figures.backlog_seconds:.1f} s after the start was asked, start-up included)")

            say(f"fixed rate, payments running: {len(paced):,} deliveries at {figures.rate:,.0f}/s")
            figures.paced = await _timed(_pids(stack), _applied(webhook_driver.paced(gateway, paced, figures.rate),
                                                                watcher, paced))
            _check(figures.paced.sending, "gateway, fixed rate", figures)
            _say_run(say, "gateway", figures.paced)

            if figures.backlog_rate:
                # Like the freshness figure: under half the sustainable load, what the path itself takes.
                figures.half_rate = min(figures.rate / 2, figures.backlog_rate / 2)
                half = half[:max(1, round(figures.half_rate * figures.duration))]
                say(f"fixed rate at half what payments sustains: {len(half):,} deliveries at "
                    f"{figures.half_rate:,.0f}/s")
                figures.half = await _timed(_pids(stack), _applied(
                    webhook_driver.paced(gateway, half, figures.half_rate), watcher, half))
                _check(figures.half.sending, "gateway, half rate", figures)
                _say_run(say, "gateway", figures.half)

            say(f"full speed, payments running: {len(burst):,} deliveries, {figures.concurrency} in flight, bare "
                "endpoint first")
            figures.bare_burst = await _timed(bare_pids, webhook_driver.saturate(bare_http, burst, figures.concurrency))
            _check(figures.bare_burst.sending, "bare, full speed", figures)
            figures.burst = await _timed(_pids(stack), _applied(
                webhook_driver.saturate(gateway, burst, figures.concurrency), watcher, burst))
            _check(figures.burst.sending, "gateway, full speed", figures)
            _say_run(say, "bare", figures.bare_burst)
            _say_run(say, "gateway", figures.burst)
        for run_ in (figures.backlog, figures.paced, figures.half, figures.burst):
            if run_ is not None and run_.missing:
                figures.problems.append(f"PROBLEM: {run_.missing} acknowledged deliveries were not applied in time")
        figures.outcomes = await webhook_orders.outcomes(stack.database_url)
    finally:
        await connection.close()


async def _applied(sending, watcher: AppliedWatcher, deliveries: Sequence[Delivery]) -> Run:
    result = Run(await sending)
    result.applied = await watcher.wait_for(deliveries, timeout=60 + len(deliveries) / 20)
    return result


async def _timed(pids: dict[str, int | list[int]], work) -> Run:
    """Run ``work`` (a coroutine giving a Sending or a Run) and attach the CPU seconds each process spent."""
    before = {name: _cpu(pid) for name, pid in pids.items()}
    outcome = await work
    result = outcome if isinstance(outcome, Run) else Run(outcome)
    result.cpu = {name: _cpu(pid) - before[name] for name, pid in pids.items()}
    return result


def _cpu(pid: int | list[int]) -> float:
    return sum(cpu_seconds(p) for p in pid) if isinstance(pid, list) else cpu_seconds(pid)


def _pids(stack: Stack) -> dict[str, int | list[int]]:
    assert stack.mesh is not None
    pids: dict[str, int | list[int]] = {name: pid for name in ("gateway", "payments")
                                        if (pid := stack.mesh.pid(name)) is not None}
    if stack.nats_pid:
        pids["nats-server"] = stack.nats_pid
    pids["postgres"] = postgres_pids(stack)  # the backends as they are now (the pools are open by then)
    pids["bench (sender)"] = os.getpid()
    return pids


def _check(sending: Sending, what: str, figures: WebhookFigures) -> None:
    statuses = sending.statuses()
    if set(statuses) != {200}:
        figures.problems.append(f"PROBLEM: {what}: answers by status {statuses}")


def _say_run(say: Callable[[str], None], who: str, result: Run) -> None:
    acks = result.sending.latencies()
    line = (f"  {who}: {result.sending.acknowledged:,} acknowledged at {result.sending.rate:,.0f}/s, ack p50 "
            f"{percentile(acks, 0.5) * 1000:.1f} ms p99 {percentile(acks, 0.99) * 1000:.1f} ms")
    if result.applied:
        applied = result.applied_latencies()
        line += (f"; applied p50 {percentile(applied, 0.5) * 1000:.0f} ms p99 {percentile(applied, 0.99) * 1000:.0f}"
                 f" ms, all in {result.applied_seconds:.1f} s")
    say(line)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _ratio(value: float, limit: float) -> str:
    return f"{value / limit:.1%}" if value and limit else "n/a"


def rows(figures: WebhookFigures) -> list[tuple[str, str, str, str, str]]:
    """Table rows (figure, ours, bare limit, ratio, target) in the shape of the main table."""
    table: list[tuple[str, str, str, str, str]] = []
    rate = f"{figures.rate:,.0f}/s"
    if figures.burst and figures.bare_burst:
        burst, bare = figures.burst, figures.bare_burst
        table += [
            (f"webhooks acknowledged, full speed ({figures.concurrency} in flight)",
             f"{burst.sending.rate:,.0f} /s", f"{bare.sending.rate:,.0f} /s",
             _ratio(burst.sending.rate, bare.sending.rate), ""),
            ("  ... into settled state (first sent -> last applied)",
             f"{len(burst.sending.sent) / burst.applied_seconds:,.0f} /s" if burst.applied_seconds else "n/a",
             "", "", ""),
        ]
    if figures.backlog_rate:
        table.append(("  payments applying a backlog, nothing else running", f"{figures.backlog_rate:,.0f} /s",
                      "", "", ""))
    bare_acks = figures.bare_paced.sending.latencies() if figures.bare_paced else []
    if figures.alone:
        acks = figures.alone.sending.latencies()
        table += [
            (f"webhook ack p50 at {rate}, payments stopped", _ms(percentile(acks, 0.5)),
             _ms(percentile(bare_acks, 0.5)), "", ""),
            (f"webhook ack p99 at {rate}, payments stopped", _ms(percentile(acks, 0.99)),
             _ms(percentile(bare_acks, 0.99)), "", f"< {ACK_TARGET_P99 * 1000:.0f} ms"),
        ]
    if figures.paced:
        acks, applied = figures.paced.sending.latencies(), figures.paced.applied_latencies()
        table += [
            (f"webhook ack p50 at {rate}, payments running", _ms(percentile(acks, 0.5)),
             _ms(percentile(bare_acks, 0.5)), "", ""),
            (f"webhook ack p99 at {rate}, payments running", _ms(percentile(acks, 0.99)),
             _ms(percentile(bare_acks, 0.99)), "", f"< {ACK_TARGET_P99 * 1000:.0f} ms"),
            (f"webhook sent -> applied p50 at {rate}", _ms(percentile(applied, 0.5)), "", "", ""),
            (f"webhook sent -> applied p99 at {rate}", _ms(percentile(applied, 0.99)), "", "",
             f"< {SETTLED_TARGET_P99 * 1000:.0f} ms"),
        ]
    if figures.half:
        applied = figures.half.applied_latencies()
        table.append((f"webhook sent -> applied p50 / p99 at {figures.half_rate:,.0f}/s (half of payments' rate)",
                      f"{percentile(applied, 0.5) * 1000:,.0f} / {percentile(applied, 0.99) * 1000:,.0f} ms", "",
                      "", ""))
    return table


def notes(figures: WebhookFigures) -> list[str]:
    """Lines printed above the table: sizes, how well the sender kept its schedule, CPU per delivery, checks."""
    lines = [f"webhooks: {figures.orders:,} synthetic invoices issued and ordered at the Razorpay sandbox in "
             f"{figures.order_seconds:.1f} s (not measured); one payment.captured delivery per order"]
    runs = (("fixed rate, payments stopped", figures.alone), ("fixed rate, bare", figures.bare_paced),
            ("fixed rate, payments running", figures.paced),
            (f"fixed rate {figures.half_rate:,.0f}/s, payments running", figures.half), ("full speed", figures.burst),
            ("full speed, bare", figures.bare_burst))
    for label, result in runs:
        if result is None:
            continue
        sending = result.sending
        count = len(sending.sent)
        late = sending.lateness()
        line = (f"webhooks {label}: {count:,} deliveries in {sending.seconds:.1f} s ({sending.rate:,.0f}/s "
                f"acknowledged)")
        if label.startswith("fixed") and late:
            line += f"; sender late p99 {_ms(percentile(late, 0.99))}, max {_ms(late[-1])}"
        if result.applied:
            line += f"; all applied {result.applied_seconds:.1f} s after the first was sent"
        lines.append(line)
        if result.cpu:
            lines.append("  CPU ms per delivery: " + ", ".join(
                f"{name} {seconds * 1000 / count:.2f}" for name, seconds in result.cpu.items()))
    if figures.backlog_rate:
        lines.append(f"webhooks backlog: payments started on {len(figures.backlog.applied) if figures.backlog else 0:,}"
                     f" stored deliveries applied them at {figures.backlog_rate:,.0f}/s (first to last), all "
                     f"{figures.backlog_seconds:.1f} s after its start was asked (start-up included)")
    if figures.outcomes:
        lines.append("webhooks: payments' log of deliveries by outcome: "
                     + ", ".join(f"{what} {n:,}" for what, n in sorted(figures.outcomes.items())))
    lines += figures.problems
    return lines
