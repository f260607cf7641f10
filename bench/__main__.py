"""``python -m bench`` (``make bench``): one run of the platform's throughput, freshness and memory figures,
each beside the bare limit of its building block measured on the same machine in the same run.

Phases, in order: build the workload; start a fresh stack (or use `make run`'s); bare gRPC server; stop
metering; gRPC streaming ingest; REST batch ingest; start metering and time it through the backlog; bare
asyncpg insert of the same rows; freshness under half the sustainable load; peak memory of every service; then,
on a fresh stack with the Razorpay sandbox, signed webhooks through the gateway into payments beside a bare
endpoint (bench/webhooks.py); then, on a fresh stack, CheckQuota latency at a fixed rate beside a bare unary call
(bench/quota.py); then, on another fresh stack, the monthly invoice close of 10,000 organisations and
PDF rendering (bench/invoice_close.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench import (
    enforcement,
    freshness,
    grpc_driver,
    invoice_close,
    metering_rate,
    notifications,
    quota,
    rest_driver,
    webhooks,
)
from bench.memory import peak_rss_mib
from bench.stack import COUNT_METRIC, Stack, create_tenant, fresh_stack, running_stack
from bench.workload import build_workload, rest_bodies
from billing_client import EventSender
from devstack.ports import free_port, wait_for_tcp

_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {message}", flush=True)


@dataclass
class Figures:
    bare_grpc: float = 0.0
    grpc_ingest: float = 0.0
    grpc_accepted: int = 0
    enforcement: enforcement.EnforcementFigures | None = None
    rest_ingest: float = 0.0
    client: float = 0.0
    rest_accepted: int = 0
    metering: float | None = None
    bare_insert: float = 0.0
    metering_sql: float = 0.0
    fresh: freshness.FreshnessResult | None = None
    memory: dict[str, float] = field(default_factory=dict)
    bare_server_memory: float | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for the gRPC runs (default 1,000,000)")
    parser.add_argument("--batch-size", type=int, default=1_000, help="events per batch (default 1,000)")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of repeated ids (default 0.2)")
    parser.add_argument("--window", type=int, default=8, help="gRPC batches in flight (default 8)")
    parser.add_argument(
        "--enforcement-events", type=int, default=1_000_000,
        help="events for each side of the quota enforcement on/off comparison (default 1,000,000; 0 skips it)",
    )
    parser.add_argument(
        "--client-events", type=int, default=200_000, help="events for the client library run (default 200,000)"
    )
    parser.add_argument("--rest-events", type=int, default=200_000, help="events for the REST run (default 200,000)")
    parser.add_argument("--rest-concurrency", type=int, default=4, help="REST connections (default 4)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of the freshness run (default 15)")
    parser.add_argument("--probe-interval", type=float, default=0.05, help="seconds between probes (default 0.05)")
    parser.add_argument(
        "--use-running", action="store_true",
        help="drive the stack of a running `make run` (.run/endpoints.json) instead of starting a fresh one; "
        "metering is not stopped then, so it is timed only through the backlog left after the ingest runs",
    )
    parser.add_argument(
        "--only", choices=("ingest", "enforcement", "webhooks", "notifications", "quota", "invoices"),
        help="run one part: ingest (ingest, metering, freshness, memory), webhooks (Razorpay webhooks through the "
        "gateway into payments), notifications (emails and customers' webhooks), quota (CheckQuota latency beside "
        "a bare unary call) or invoices (the invoice close and PDFs)",
    )
    parser.add_argument("--skip-webhooks", action="store_true", help="leave out the webhooks part")
    parser.add_argument("--skip-notifications", action="store_true", help="leave out the notifications part")
    parser.add_argument("--skip-quota", action="store_true", help="leave out the quota part")
    parser.add_argument("--quota-rate", type=float, default=2_000.0,
                        help="CheckQuota calls a second of the quota part, and of the bare call beside it "
                        "(default 2,000)")
    parser.add_argument("--quota-duration", type=float, default=10.0,
                        help="seconds of each fixed-rate run of the quota part (default 10)")
    parser.add_argument("--notification-rate", type=float, default=50.0,
                        help="events a second of the fixed-rate notifications run, each an email and a webhook "
                        "(default 50: 100 messages a second)")
    parser.add_argument("--notification-duration", type=float, default=5.0,
                        help="seconds of the fixed-rate notifications run (default 5)")
    parser.add_argument("--notifications", type=int, default=500,
                        help="events of the full-speed notifications run (default 500)")
    parser.add_argument("--webhooks", type=int, default=1_000,
                        help="deliveries of the full-speed webhook run (default 1,000)")
    parser.add_argument("--webhook-rate", type=float, default=200.0,
                        help="deliveries a second of the fixed-rate webhook run (default 200)")
    parser.add_argument("--webhook-duration", type=float, default=5.0,
                        help="seconds of each fixed-rate webhook run (default 5)")
    parser.add_argument("--webhook-concurrency", type=int, default=16,
                        help="deliveries in flight in the full-speed webhook run (default 16)")
    parser.add_argument("--organisations", type=int, default=10_000,
                        help="organisations invoiced by the close (default 10,000)")
    parser.add_argument("--metrics", type=int, default=5, choices=range(1, 6), metavar="1-5",
                        help="usage metrics (and charges) per organisation (default 5)")
    parser.add_argument("--seed", choices=("sql", "grpc"), default="sql",
                        help="seed the close's organisations and subscriptions in SQL (default) or through gRPC")
    parser.add_argument("--dense", action="store_true",
                        help="fill every 15-minute usage bucket of the month for each organisation and metric "
                        "(continuous traffic: 2,976 buckets a metric) instead of three")
    parser.add_argument("--pdfs", type=int, default=500, help="invoices rendered as PDFs after the close (default 500)")
    parser.add_argument("--pdf-concurrency", type=int, default=4, help="RenderInvoice calls at once (default 4)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed = False
    if args.only in (None, "ingest"):
        ingest_part(args)
    if args.only == "enforcement":
        enforcement_part(args)
    if args.only == "webhooks" or (args.only is None and not args.skip_webhooks):
        load_before = os.getloadavg()
        # Its own fresh stack with the Razorpay sandbox, also with --use-running: thousands of invoices and
        # payments nobody wants in `make run`'s database.
        say("webhooks: a fresh stack with the Razorpay sandbox")
        hooks = webhooks.run(args.webhook_rate, args.webhook_duration, args.webhooks, args.webhook_concurrency, say)
        print(render_webhooks(hooks, load_before), flush=True)
        failed = failed or bool(hooks.problems)
    if args.only == "notifications" or (args.only is None and not args.skip_notifications):
        load_before = os.getloadavg()
        say("notifications: a fresh stack with the local mailbox")
        mail = notifications.run(args.notification_rate, args.notification_duration, args.notifications, say)
        print(render_part("notification", notifications.notes(mail), notifications.rows(mail), load_before),
              flush=True)
        failed = failed or bool(mail.problems)
    if args.only == "quota" or (args.only is None and not args.skip_quota):
        load_before = os.getloadavg()
        say("quota: a fresh stack")
        checks = quota.run(args.quota_rate, args.quota_duration, say)
        print(render_part("quota check", quota.notes(checks), quota.rows(checks), load_before), flush=True)
        failed = failed or bool(checks.problems)
    if args.only in (None, "invoices"):
        load_before = os.getloadavg()
        # Its own fresh stack, also with --use-running: it seeds 10,000 organisations nobody wants in `make run`.
        say(f"invoice close: a fresh stack for {args.organisations:,} organisations")
        figures = invoice_close.run(
            args.organisations, args.metrics, args.pdfs, args.pdf_concurrency, say, args.seed, args.dense
        )
        print(render_invoices(figures, load_before), flush=True)
        failed = failed or bool(figures.problems)
    return 1 if failed else 0


def render_invoices(figures: invoice_close.CloseFigures, load_before: tuple[float, float, float]) -> str:
    load = ", ".join(f"{value:.2f}" for value in load_before)
    context = [
        "",
        f"invoice close benchmark of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}); load average before the run: {load}",
        *invoice_close.notes(figures),
    ]
    return "\n".join([*context, "", *_table(invoice_close.rows(figures))])


def render_part(name: str, notes: list[str], rows: list[tuple[str, str, str, str, str]],
                load_before: tuple[float, float, float]) -> str:
    load = ", ".join(f"{value:.2f}" for value in load_before)
    context = ["", f"{name} benchmark of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
               f"({os.cpu_count()} CPUs, Python {platform.python_version()}); load average before the run: {load}",
               *notes]
    return "\n".join([*context, "", *_table(rows)])


def render_webhooks(figures: webhooks.WebhookFigures, load_before: tuple[float, float, float]) -> str:
    load = ", ".join(f"{value:.2f}" for value in load_before)
    context = [
        "",
        f"webhook benchmark of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}); load average before the run: {load}",
        *webhooks.notes(figures),
    ]
    return "\n".join([*context, "", *_table(webhooks.rows(figures))])


def ingest_part(args: argparse.Namespace) -> None:
    """Ingest, metering, freshness and memory on the bench's stack (fresh, or `make run`'s)."""
    figures = Figures(load_before=os.getloadavg())
    say(f"building {args.events:,} events in batches of {args.batch_size:,} ({args.duplicates:.0%} repeated ids)")
    workload = build_workload(args.events, args.batch_size, args.duplicates)
    warmup = build_workload(10 * args.batch_size, args.batch_size, 0.0, seed=11)
    bodies, rest_events = rest_bodies(args.rest_events, args.batch_size)
    warmup_bodies, warmup_rest = rest_bodies(2 * args.batch_size, args.batch_size)

    stack_context = running_stack() if args.use_running else fresh_stack(lambda m: say(f"  {m}"))
    with stack_context as stack:
        say("creating an organisation, project, API key and metrics through the admin API")
        tenant = create_tenant(stack, lambda m: say(f"  {m}"))
        if stack.mesh is not None:
            say("stopping metering, so ingest runs alone and leaves it a backlog")
            stack.mesh.stop_service("metering")
        else:
            figures.notes.append("--use-running: metering ran during the ingest runs (competing for CPU) and was "
                                 "timed on the backlog they left")

        grpc_rounds(figures, workload, warmup, stack.ingest_address, tenant.api_key, args.window)

        say(f"client library: {args.client_events:,} events through one EventSender, as fast as it goes")
        figures.client = asyncio.run(client_rate(stack.ingest_address, tenant.api_key, args.client_events))
        say(f"  {figures.client:,.0f} events/s (built, sent and acknowledged)")

        say(f"REST batch ingest: {rest_events:,} events through the gateway, {args.rest_concurrency} connections")
        asyncio.run(rest_driver.post_batches(stack.gateway_url, tenant.api_key, warmup_bodies, warmup_rest, 2))
        rest = asyncio.run(
            rest_driver.post_batches(stack.gateway_url, tenant.api_key, bodies, rest_events, args.rest_concurrency)
        )
        figures.rest_ingest, figures.rest_accepted = rest.rate, rest.accepted
        say(f"  {rest.rate:,.0f} events/s ({rest.accepted:,} accepted, {rest.rejected} rejected)")

        expected = workload.distinct + warmup.distinct + rest_events + warmup_rest + args.client_events
        if stack.mesh is not None:
            say(f"metering: starting it on a backlog of {expected:,} distinct events (plus duplicates)")
            mesh = stack.mesh
            asyncio.run(metering_rate.checkpoint(stack.server_url()))
            drained = asyncio.run(
                metering_rate.drain_rate(stack, expected, say, lambda: mesh.start_service("metering"))
            )
            figures.metering = drained.rate
            say(f"  {drained.rate:,.0f} events/s stored into aggregates")
        else:
            say(f"metering: timing it through what is left of {expected:,} distinct events")
            drained = asyncio.run(metering_rate.drain_rate(stack, expected, say, None))
            if drained.rows >= expected / 10:
                figures.metering = drained.rate
                say(f"  {drained.rate:,.0f} events/s stored into aggregates")
            else:
                figures.notes.append("metering kept up with ingest: too little backlog left to time it")

        say(f"bare asyncpg insert of the same {workload.events:,} rows into a scratch database")
        asyncio.run(metering_rate.checkpoint(stack.server_url()))
        bare = asyncio.run(
            metering_rate.bare_insert(stack.server_url(), workload, tenant.organisation_id, tenant.project_id)
        )
        figures.bare_insert = bare.rate
        say(f"  {bare.rate:,.0f} rows/s stored")
        asyncio.run(metering_rate.checkpoint(stack.server_url()))
        statement = asyncio.run(
            metering_rate.metering_statement(stack.server_url(), workload, tenant.organisation_id, tenant.project_id)
        )
        figures.metering_sql = statement.rate
        say(f"  metering's own statement, bare: {statement.rate:,.0f} rows/s stored and folded")

        # Without a metering figure, its bare statement is the best guess of what it sustains.
        sustainable = min(figures.grpc_ingest, figures.metering or figures.metering_sql)
        load = sustainable / 2
        say(f"freshness: {args.duration:.0f}s at {load:,.0f} events/s (half of {sustainable:,.0f}) with probes")
        figures.fresh = asyncio.run(freshness.measure(stack, load, args.duration, args.probe_interval, say))

        for name, pid in stack.service_pids().items():
            mib = peak_rss_mib(pid)
            if mib is not None:
                figures.memory[name] = mib
        if stack.mesh is not None:
            figures.notes.append("metering's peak memory covers its run from the backlog phase on (restarted)")
        if args.enforcement_events:
            figures.enforcement = enforcement_rounds(args, stack, tenant.api_key)
    print(render(figures, args, stack), flush=True)


def enforcement_rounds(args: argparse.Namespace, stack: Stack, api_key: str) -> enforcement.EnforcementFigures:
    """Ingest with quota enforcement on beside off (bench/enforcement.py), metering running."""
    say(f"quota enforcement: {args.enforcement_events:,} events to each of an organisation without a plan and one "
        "whose plan enforces a hard quota at ingest, alternating")
    workload = build_workload(args.enforcement_events, args.batch_size, args.duplicates, seed=13)
    warmup = build_workload(10 * args.batch_size, args.batch_size, 0.0, seed=17)
    result = enforcement.run(stack, api_key, workload, warmup, args.window, say)
    say(f"  off {result.off:,.0f} ev/s, on {result.on:,.0f} ev/s: {result.ratio:.1%} (best rounds), "
        f"{result.median_round_ratio:.1%} (median of the rounds' ratios)")
    return result


def enforcement_part(args: argparse.Namespace) -> None:
    """Only the enforcement comparison, on a fresh stack (or `make run`'s)."""
    load_before = os.getloadavg()
    stack_context = running_stack() if args.use_running else fresh_stack(lambda m: say(f"  {m}"))
    with stack_context as stack:
        tenant = create_tenant(stack, lambda m: say(f"  {m}"))
        result = enforcement_rounds(args, stack, tenant.api_key)
    print(render_part("quota enforcement", [], enforcement_rows(result), load_before), flush=True)


def enforcement_rows(result: enforcement.EnforcementFigures) -> list[tuple[str, str, str, str, str]]:
    return [
        ("gRPC ingest, quota enforcement on", f"{result.on:,.0f} ev/s", f"{result.off:,.0f} ev/s (off)",
         _ratio(result.on, result.off), ">= 90%"),
        ("  median of the rounds' on/off ratios", "", "", f"{result.median_round_ratio:.1%}", ">= 90%"),
    ]


async def client_rate(ingest_address: str, api_key: str, events: int) -> float:
    """What one Python sender does: build, validate, batch, stream and wait for every acknowledgement."""
    started = time.perf_counter()
    async with EventSender(ingest_address, api_key) as sender:
        for number in range(events):
            await sender.send(COUNT_METRIC, 1 + number % 5, dimensions={"region": "ap-south-1"})
    seconds = time.perf_counter() - started
    if sender.stats.accepted != events:
        raise RuntimeError(f"the client library run: {sender.stats}")
    return events / seconds


def grpc_rounds(figures: Figures, workload, warmup, ingest_address: str, api_key: str, window: int) -> None:
    """Bare server and ingest driven alike, in alternating rounds over thirds of the workload; best of each.

    Alternating keeps a burst of load from elsewhere on the machine from landing on one side only.
    """
    port = free_port()
    say("bare gRPC server: parses the same requests, answers empty acks (own process)")
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_grpc", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        if not wait_for_tcp("127.0.0.1", port, 30):
            raise RuntimeError("the bare gRPC server did not start")
        bare = f"127.0.0.1:{port}"
        for target in (bare, ingest_address):
            asyncio.run(grpc_driver.drive(target, api_key, warmup.payloads, warmup.batch_events, window))
        third = -(-len(workload.payloads) // 3)
        for start in range(0, len(workload.payloads), third):
            payloads = workload.payloads[start : start + third]
            sizes = workload.batch_events[start : start + third]
            on_bare = asyncio.run(grpc_driver.drive(bare, api_key, payloads, sizes, window))
            on_ingest = asyncio.run(grpc_driver.drive(ingest_address, api_key, payloads, sizes, window))
            if on_ingest.accepted != on_ingest.events:
                raise RuntimeError(f"ingest accepted {on_ingest.accepted} of {on_ingest.events} events: {on_ingest}")
            figures.bare_grpc = max(figures.bare_grpc, on_bare.rate)
            figures.grpc_ingest = max(figures.grpc_ingest, on_ingest.rate)
            figures.grpc_accepted += on_ingest.accepted
            say(f"  {on_ingest.events:,} events: bare {on_bare.rate:,.0f}/s, ingest {on_ingest.rate:,.0f}/s")
        figures.bare_server_memory = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(10)


def _ratio(value: float | None, limit: float) -> str:
    return f"{value / limit:.1%}" if value and limit else "n/a"


def render(figures: Figures, args: argparse.Namespace, stack: Stack) -> str:
    fresh = figures.fresh
    accepted = fresh.latencies("accepted") if fresh else []
    sent = fresh.latencies("sent") if fresh else []
    p50, p99 = freshness.percentile(accepted, 0.5), freshness.percentile(accepted, 0.99)
    queries = sorted(fresh.query_seconds) if fresh else []
    rows = [
        ("gRPC streaming ingest (accepted = durable)", f"{figures.grpc_ingest:,.0f} ev/s",
         f"{figures.bare_grpc:,.0f} ev/s", _ratio(figures.grpc_ingest, figures.bare_grpc), ">= 50%"),
        ("  client library, one EventSender (Python)", f"{figures.client:,.0f} ev/s", "", "", ""),
        *(enforcement_rows(figures.enforcement) if figures.enforcement else []),
        ("REST batch ingest via gateway", f"{figures.rest_ingest:,.0f} ev/s", "", "", ""),
        ("metering into aggregates, deduplicated",
         f"{figures.metering:,.0f} ev/s" if figures.metering else "n/a", f"{figures.bare_insert:,.0f} rows/s",
         _ratio(figures.metering, figures.bare_insert), ">= 70%"),
        ("  metering's SQL statement alone (with aggregates)", f"{figures.metering_sql:,.0f} rows/s",
         f"{figures.bare_insert:,.0f} rows/s", _ratio(figures.metering_sql, figures.bare_insert), ""),
        ("freshness accepted->visible p50", f"{p50 * 1000:,.0f} ms", "", "", ""),
        ("freshness accepted->visible p99", f"{p99 * 1000:,.0f} ms", "", "", "< 1000 ms"),
        ("  QueryUsage poll duration p50 / p99",
         f"{freshness.percentile(queries, 0.5) * 1000:,.0f} / {freshness.percentile(queries, 0.99) * 1000:,.0f} ms",
         "", "", ""),
        ("freshness sent->visible p50 / p99",
         f"{freshness.percentile(sent, 0.5) * 1000:,.0f} / {freshness.percentile(sent, 0.99) * 1000:,.0f} ms",
         "", "", ""),
    ]
    for name, mib in sorted(figures.memory.items()):
        rows.append((f"peak RSS {name}", f"{mib:,.0f} MiB", "", "", "< 150 MiB"))
    if figures.bare_server_memory:
        rows.append(("peak RSS bare gRPC server (reference)", f"{figures.bare_server_memory:,.0f} MiB", "", "", ""))
    load = ", ".join(f"{value:.2f}" for value in figures.load_before)
    context = [
        "",
        f"benchmark of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}); load average before the run: {load}",
        f"{'running `make run` stack' if not stack.owns_mesh else 'fresh stack'}; gRPC: {args.events:,} events in "
        f"batches of {args.batch_size:,}, {args.window} in flight, {args.duplicates:.0%} repeated ids; REST: "
        f"{args.rest_concurrency} connections",
    ]
    if fresh:
        context.append(
            f"freshness load: {fresh.achieved_rate:,.0f} ev/s achieved of {fresh.target_rate:,.0f} targeted "
            f"(client library), {len(accepted)} probes"
        )
    context += [f"note: {note}" for note in figures.notes]
    return "\n".join([*context, "", *_table(rows)])


def _table(rows: list[tuple[str, str, str, str, str]]) -> list[str]:
    header = ("figure", "ours", "bare limit", "ratio", "target")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    table = [line, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    table += ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))) for row in rows]
    table.append(line)
    return table


if __name__ == "__main__":
    sys.exit(main())
