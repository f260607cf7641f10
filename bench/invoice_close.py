"""The monthly close at scale: 10,000 organisations with usage on five metrics each, invoiced by one invoice run
of the previous month, then a sample of the invoices rendered as PDFs.

It runs on a fresh stack of its own (the invoicing scheduler switched off, so nothing but the measured run
closes the month), seeded by :mod:`bench.invoice_seed`. Measured: ``StartInvoiceRun`` to the run's completion,
polled through ``GetInvoiceRun``; then checks that every organisation got exactly one issued invoice, none
failed, and the numbers are contiguous. Peak resident memory of invoicing and metering is sampled while the run
works, and so is their CPU time.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.invoice_seed import MIX, Seeded, seed
from bench.stack import Stack, fresh_stack
from bench.stack import channel as stack_channel
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc

TARGET_SECONDS = 30.0  # issue 4: the close of 10,000 organisations in under 30 s
TARGET_ORGANISATIONS = 10_000
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class CloseFigures:
    organisations: int = 0
    run_id: str = ""
    metrics: int = 0
    seeded: Seeded | None = None
    close_seconds: float = 0.0
    server_seconds: float = 0.0
    invoiced: int = 0
    failed: int = 0
    other: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    peak_rss: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    pdfs: int = 0
    pdf_seconds: float = 0.0
    pdf_bytes: int = 0
    pdf_concurrency: int = 0

    @property
    def invoices_per_second(self) -> float:
        return self.invoiced / self.close_seconds if self.close_seconds else 0.0

    @property
    def pdfs_per_second(self) -> float:
        return self.pdfs / self.pdf_seconds if self.pdf_seconds else 0.0


class Sampler:
    """Resident memory (VmRSS) and CPU time of some processes, sampled in a thread while a phase runs."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self._pids = pids
        self._interval = interval
        self.peak_mib: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.cpu_seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        for name, pid in self._pids.items():
            self.cpu_seconds[name] = cpu_seconds(pid) - self._cpu_start[name]

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self._pids.items():
            mib = _rss_mib(pid)
            if mib is not None:
                self.peak_mib[name] = max(self.peak_mib[name], mib)


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def postgres_pids(stack: Stack) -> list[int]:
    """The stack's PostgreSQL server: the postmaster and its children (backends, writer, checkpointer ...)."""
    if stack.postgres_pid is None:
        return []
    pids = [stack.postgres_pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == stack.postgres_pid:
                pids.append(int(entry.name))
    return pids


def run(organisations: int, metrics: int, pdfs: int, pdf_concurrency: int, say: Callable[[str], None],
        seed_through: str = "sql", dense: bool = False) -> CloseFigures:
    """Seed (every quarter hour of the month with ``dense``), close and render on a fresh stack; the figures of
    the run."""
    figures = CloseFigures(organisations=organisations, metrics=metrics, pdf_concurrency=pdf_concurrency)
    env = {"invoicing": {"INVOICING_SCHEDULER_ENABLED": "false"}}
    with fresh_stack(lambda m: say(f"  {m}"), service_env=env) as stack:
        assert stack.mesh is not None
        address = stack.mesh.address("invoicing")
        say(f"seeding {organisations:,} organisations with usage on {metrics} metrics each"
            + (" in every quarter hour of the month" if dense else ""))
        figures.seeded = asyncio.run(
            seed(address, stack.database_url, organisations, metrics, say, through=seed_through, dense=dense)
        )
        for what, seconds in figures.seeded.seconds.items():
            say(f"  {what}: {seconds:.1f} s")
        pids = {name: stack.mesh.pid(name) for name in ("invoicing", "metering")}
        say(f"closing {figures.seeded.period_key} for every organisation: StartInvoiceRun, polling GetInvoiceRun")
        with Sampler({name: pid for name, pid in pids.items() if pid is not None}) as sampler:
            postgres_before = sum(cpu_seconds(pid) for pid in postgres_pids(stack))
            asyncio.run(_close(address, figures, say))
            postgres_after = sum(cpu_seconds(pid) for pid in postgres_pids(stack))
        figures.peak_rss = sampler.peak_mib
        figures.cpu_seconds = {**sampler.cpu_seconds, "postgres": postgres_after - postgres_before}
        say(f"  {figures.invoiced:,} invoices in {figures.close_seconds:.1f} s: "
            f"{figures.invoices_per_second:,.0f} invoices/s")
        asyncio.run(_check(stack.database_url, figures))
        for line in figures.checks + figures.problems:
            say(f"  {line}")
        if pdfs:
            say(f"rendering {pdfs:,} invoices as PDFs through RenderInvoice, {pdf_concurrency} at a time")
            asyncio.run(_render(address, stack.database_url, pdfs, pdf_concurrency, figures))
            say(f"  {figures.pdfs_per_second:,.1f} PDFs/s, {figures.pdf_bytes / max(1, figures.pdfs):,.0f} bytes each")
    return figures


async def _close(address: str, figures: CloseFigures, say: Callable[[str], None]) -> None:
    assert figures.seeded is not None
    async with stack_channel(address) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        started = time.perf_counter()
        response = await stub.StartInvoiceRun(
            pb.StartInvoiceRunRequest(period_key=figures.seeded.period_key, idempotency_key="bench-close")
        )
        run_id = response.invoice_run.id
        reported = started
        while True:
            run = (await stub.GetInvoiceRun(pb.GetInvoiceRunRequest(invoice_run_id=run_id))).invoice_run
            now = time.perf_counter()
            if run.state != pb.INVOICE_RUN_STATE_RUNNING:
                break
            if now - reported >= 2.0:
                reported = now
                say(f"    {now - started:5.1f} s: {run.organisations_done:,} of {run.organisations_total:,} done, "
                    f"{run.invoiced:,} invoiced, {run.failed} failed")
            await asyncio.sleep(0.05)
        figures.close_seconds = now - started
    figures.server_seconds = (run.finish_time.ToDatetime() - run.create_time.ToDatetime()).total_seconds()
    figures.invoiced, figures.failed = run.invoiced, run.failed
    figures.other = {"already invoiced": run.already_invoiced, "not due": run.not_due,
                     "no subscription": run.no_subscription}
    if run.state != pb.INVOICE_RUN_STATE_COMPLETED:
        figures.problems.append(f"PROBLEM: the run ended {pb.InvoiceRunState.Name(run.state)}")
    for failure in list(run.failures)[:5]:
        figures.problems.append(f"PROBLEM: {failure.organisation_id}: {failure.message}")
    figures.run_id = run_id


async def _check(database_url: str, figures: CloseFigures) -> None:
    """One issued invoice per organisation, contiguous numbers, and the mix of currencies and tax regimes."""
    assert figures.seeded is not None
    expected = len(figures.seeded.organisation_ids)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT organisation_id, number, currency, document->>'tax_regime' AS regime FROM invoicing.invoices "
            "WHERE period_key = $1 AND status = 'issued'", figures.seeded.period_key,
        )
    finally:
        await conn.close()
    ok = figures.invoiced == expected and figures.failed == 0 and len(rows) == expected
    figures.checks.append(f"invoiced {figures.invoiced:,} of {expected:,} organisations, {figures.failed} failed, "
                          f"{len(rows):,} issued invoices stored for the period: {'ok' if ok else 'WRONG'}")
    if not ok:
        figures.problems.append("PROBLEM: not every organisation got exactly one issued invoice")
    if len({row["organisation_id"] for row in rows}) != len(rows):
        figures.problems.append("PROBLEM: an organisation has two issued invoices for the period")
    sequences = sorted(int(row["number"].rsplit("/", 1)[1]) for row in rows)
    contiguous = bool(sequences) and sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    numbers = sorted((row["number"] for row in rows), key=lambda number: int(number.rsplit("/", 1)[1]))
    figures.checks.append(
        f"numbers {numbers[0] if numbers else '-'} .. {numbers[-1] if numbers else '-'}: "
        f"{'contiguous' if contiguous else 'NOT CONTIGUOUS'}"
    )
    if not contiguous:
        figures.problems.append("PROBLEM: invoice numbers have gaps or repeats")
    mix: dict[tuple[str, str], int] = {}
    for row in rows:
        mix[(row["currency"], row["regime"])] = mix.get((row["currency"], row["regime"]), 0) + 1
    figures.checks.append("invoices by currency and tax regime: " + ", ".join(
        f"{currency} {regime} {count:,}" for (currency, regime), count in sorted(mix.items())
    ) + " (mix seeded: " + ", ".join(f"{kind} {count:,}" for kind, count in figures.seeded.kinds.items()) + ")")


async def _render(address: str, database_url: str, count: int, concurrency: int, figures: CloseFigures) -> None:
    assert figures.seeded is not None
    conn = await asyncpg.connect(database_url)
    try:
        # Spread over the mix: every k-th invoice by number.
        ids = [row["id"] for row in await conn.fetch(
            "SELECT id FROM invoicing.invoices WHERE period_key = $1 AND status = 'issued' ORDER BY number",
            figures.seeded.period_key,
        )]
    finally:
        await conn.close()
    step = max(1, len(ids) // max(1, count))
    chosen = ids[::step][:count]
    async with stack_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        await stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=chosen[0], format=pb.INVOICE_FORMAT_PDF))
        queue = list(reversed(chosen))
        sizes: list[int] = []

        async def worker() -> None:
            while queue:
                invoice_id = queue.pop()
                reply = await stub.RenderInvoice(
                    pb.RenderInvoiceRequest(invoice_id=invoice_id, format=pb.INVOICE_FORMAT_PDF)
                )
                if not reply.content.startswith(b"%PDF-"):
                    raise RuntimeError(f"RenderInvoice({invoice_id}) did not return a PDF")
                sizes.append(len(reply.content))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        figures.pdf_seconds = time.perf_counter() - started
    figures.pdfs, figures.pdf_bytes = len(sizes), sum(sizes)


def rows(figures: CloseFigures) -> list[tuple[str, str, str, str, str]]:
    """Table rows (figure, ours, bare limit, ratio, target) in the shape of the main table."""
    # The target is for 10,000 organisations; other sizes get its rate.
    target = f"< {TARGET_SECONDS * figures.organisations / TARGET_ORGANISATIONS:,.1f} s"
    table = [
        (f"invoice close, {figures.organisations:,} orgs x {figures.metrics} metrics",
         f"{figures.close_seconds:,.1f} s", "", "", target),
        ("  invoices issued per second", f"{figures.invoices_per_second:,.0f} inv/s", "", "",
         f">= {TARGET_ORGANISATIONS / TARGET_SECONDS:,.0f} inv/s"),
    ]
    for name, mib in sorted(figures.peak_rss.items()):
        table.append((f"  peak RSS {name} during the close", f"{mib:,.0f} MiB", "", "", "< 150 MiB"))
    for name, seconds in sorted(figures.cpu_seconds.items()):
        table.append((f"  CPU time {name} during the close", f"{seconds:,.1f} s", "", "", ""))
    if figures.pdfs:
        table.append((f"PDF rendering ({figures.pdfs} invoices, {figures.pdf_concurrency} at a time)",
                      f"{figures.pdfs_per_second:,.1f} PDFs/s", "", "", ""))
        table.append(("  average PDF size", f"{figures.pdf_bytes / figures.pdfs / 1024:,.1f} KiB", "", "", ""))
    return table


def notes(figures: CloseFigures) -> list[str]:
    """Lines printed above the table: what was seeded and how, the checks, and any problem."""
    seeded = figures.seeded
    if seeded is None:
        return []
    lines = [
        f"invoice close: period {seeded.period_key}, {len(seeded.organisation_ids):,} organisations "
        f"({', '.join(f'{k} {v:,}' for k, v in seeded.kinds.items())}; mix of {len(MIX)}), one plan with "
        f"{figures.metrics} usage charges, {seeded.bucket_rows:,} usage bucket rows and {seeded.day_rows:,} day "
        "rows; run took "
        f"{figures.server_seconds:.1f} s by its own create/finish times",
        "invoice close seeding (not measured): " + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.seconds.items()),
    ]
    lines += [f"invoice close check: {line}" for line in figures.checks]
    lines += figures.problems
    return lines
