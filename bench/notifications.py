"""Notifications: emails to the local SMTP server and signed webhooks to a local receiver, a second, and how soon
after the event was published each went out.

On a fresh stack with the local mailbox (sandboxes/smtp, as `make run` wires it) and a receiver in this process
(Starlette on uvicorn) registered as one organisation's webhook endpoint for ``payment.failed``:

1. Invoices notification knows (not measured): synthetic ``invoice.issued`` messages (their invoice emails fail
   at once: invoicing has no PDF for them), then the wait until notification has recorded them all.
2. One ``payment.failed`` event per invoice, published as payments publishes it: each makes one email and one
   webhook delivery. Sent = the mailbox's receipt time of the email (its subject names the invoice) and the
   receiver's arrival time of the webhook (its payload names the event), both the same machine's clock.
3. Runs: at a fixed offered rate (open loop; target: p99 event published -> sent < 1 s at 100 messages/s, that
   is 50 events a second, each an email and a webhook), and
   at full speed (all published at once: messages a second, first published -> last sent). Beside them, the bare
   limits: aiosmtplib sending the same number of emails straight to the mailbox, one connection each as
   notification does, and httpx posting straight to the receiver.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import httpx
import nats
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.freshness import percentile
from bench.stack import channel as stack_channel
from bench.stack import fresh_stack
from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.notification.v1 import notification_pb2, notification_pb2_grpc
from billing.payments.v1 import events_pb2 as payments_events
from devstack.ports import free_port
from sandboxes.smtp.control import MailboxControl

# The notifications issue: event published -> sent p99 < 1 s at 100 messages/s. Each event here makes two
# messages (an email and a webhook), so the fixed-rate run offers 50 events a second by default.
TARGET_P99 = 1.0
ORGANISATION = "org_bench_notify"


@dataclass
class Run:
    published: dict[str, float] = field(default_factory=dict)  # invoice number -> wall time published
    mailed: dict[str, float] = field(default_factory=dict)  # invoice number -> wall time the mailbox got it
    hooked: dict[str, float] = field(default_factory=dict)  # invoice number -> wall time the receiver got it

    def latencies(self, arrived: dict[str, float]) -> list[float]:
        return sorted(arrived[n] - t for n, t in self.published.items() if n in arrived)

    def rate(self, arrived: dict[str, float]) -> float:
        if not arrived or not self.published:
            return 0.0
        return len(arrived) / max(max(arrived.values()) - min(self.published.values()), 1e-9)


@dataclass
class NotificationFigures:
    rate: float
    duration: float
    burst_size: int
    paced: Run | None = None
    burst: Run | None = None
    bare_email_rate: float = 0.0
    bare_webhook_rate: float = 0.0
    problems: list[str] = field(default_factory=list)


class Receiver:
    """Takes webhooks; remembers when each arrived by the invoice number in its payload."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle(self, request: Request) -> Response:
        body = json.loads(await request.body())
        number = body.get("data", {}).get("invoice", {}).get("number", "")
        self.arrived.setdefault(number, time.time())
        return Response(status_code=204)


async def _mailed(control: MailboxControl, prefix: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for message in await control.messages():
        subject = message.get("subject") or ""
        if subject.startswith("A payment for invoice ") and prefix in subject:
            number = subject.split()[4]
            found.setdefault(number, datetime.fromisoformat(message["received_at"]).timestamp())
    return found


async def _run(js, numbers: list[str], ids: dict[str, str], rate: float | None, control: MailboxControl,
               receiver: Receiver, prefix: str) -> Run:
    run = Run()
    start = time.perf_counter()
    for n, number in enumerate(numbers):
        if rate:
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        event = payments_events.PaymentFailed(
            event_id=f"evt_bench_{secrets.token_hex(8)}", payment_id=f"pmt_{n}", invoice_id=ids[number],
            organisation_id=ORGANISATION, currency="INR", amount_minor=11800, method="upi",
            error_description="Payment failed", invoice_number=number)
        run.published[number] = time.time()
        await js.publish("billing.payments.v1.payment.failed", event.SerializeToString(),
                         headers={"Nats-Msg-Id": event.event_id})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run.mailed = await _mailed(control, prefix)
        run.hooked = {n: t for n, t in receiver.arrived.items() if n in run.published}
        if len(run.mailed) >= len(numbers) and len(run.hooked) >= len(numbers):
            break
        await asyncio.sleep(0.2)
    return run


IN_FLIGHT = 20  # as many as notification's senders claim and send at once


async def _bounded(count: int, one: Callable[[int], object]) -> float:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def guarded(n: int) -> None:
        async with gate:
            await one(n)

    start = time.perf_counter()
    await asyncio.gather(*(guarded(n) for n in range(count)))
    return count / (time.perf_counter() - start)


async def _bare_email(host: str, port: int, count: int) -> float:
    """The same number of small mails straight to the mailbox, a connection each, 20 at once."""

    async def one(n: int) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "bench@billing.example", "bare@acme.example", f"bare {n}"
        message.set_content("bare")
        await aiosmtplib.send(message, hostname=host, port=port)

    return await _bounded(count, one)


async def _bare_webhooks(url: str, count: int) -> float:
    """The same number of posts straight to the receiver, 20 at once."""
    async with httpx.AsyncClient() as client:
        return await _bounded(count, lambda n: client.post(
            url, content=json.dumps({"data": {"invoice": {"number": f"bare-{n}"}}})))


async def _measure(figures: NotificationFigures, stack, say: Callable[[str], None]) -> None:
    assert stack.mailbox is not None and stack.mesh is not None
    receiver = Receiver()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    connection = await nats.connect(stack.nats_url)
    js = connection.jetstream()
    control = MailboxControl(stack.mailbox.url)
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.05)
        async with stack_channel(stack.mesh.address("notification")) as channel:
            stub = notification_pb2_grpc.NotificationServiceStub(channel)
            await stub.CreateEndpoint(notification_pb2.CreateEndpointRequest(
                organisation_id=ORGANISATION, url=f"http://127.0.0.1:{port}/hook", event_types=["payment.failed"]))
        prefix = f"NB{secrets.token_hex(2)}-"
        paced_count = int(figures.rate * figures.duration)
        numbers = [f"{prefix}{n:05d}" for n in range(paced_count + figures.burst_size)]
        ids = {number: f"inv_bench_{number}" for number in numbers}
        for number in numbers:
            issued = invoicing_events.InvoiceIssued(event_id=f"evt_i_{number}", invoice=inv.Invoice(
                id=ids[number], organisation_id=ORGANISATION, number=number, currency="INR", total_minor=11800,
                status=inv.INVOICE_STATUS_ISSUED, due_date="2026-12-31",
                customer=inv.Party(name="Bench", email="bench@acme.example")))
            await js.publish("billing.invoicing.v1.invoice.issued", issued.SerializeToString(),
                             headers={"Nats-Msg-Id": issued.event_id})
        connection_pg = await asyncpg.connect(stack.database_url)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                known = await connection_pg.fetchval(
                    "SELECT count(*) FROM notification.messages WHERE organisation_id = $1 AND state IN "
                    "('failed', 'sent')", ORGANISATION)
                if known >= len(numbers):
                    break
                await asyncio.sleep(0.5)
        finally:
            await connection_pg.close()
        say(f"notifications: {len(numbers):,} synthetic invoices known to notification")
        figures.paced = await _run(js, numbers[:paced_count], ids, figures.rate, control, receiver, prefix)
        say("notifications: fixed rate done")
        figures.burst = await _run(js, numbers[paced_count:], ids, None, control, receiver, prefix)
        say("notifications: full speed done")
        mailbox_host, _, mailbox_port = stack.mailbox.smtp_address.partition(":")
        figures.bare_email_rate = await _bare_email(mailbox_host, int(mailbox_port), figures.burst_size)
        figures.bare_webhook_rate = await _bare_webhooks(f"http://127.0.0.1:{port}/hook", figures.burst_size)
    finally:
        await control.aclose()
        await connection.close()
        server.should_exit = True
        await serving


def run(rate: float, duration: float, burst_size: int, say: Callable[[str], None]) -> NotificationFigures:
    figures = NotificationFigures(rate=rate, duration=duration, burst_size=burst_size)
    env = {"invoicing": {"INVOICING_SCHEDULER_ENABLED": "false"},
           "notification": {"NOTIFICATION_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
                            "NOTIFICATION_WORKER_INTERVAL_SECONDS": "0.2"}}
    with fresh_stack(lambda m: say(f"  {m}"), service_env=env, mailbox=True) as stack:
        asyncio.run(_measure(figures, stack, say))
    for label, result in (("fixed rate", figures.paced), ("full speed", figures.burst)):
        if result is None:
            continue
        for what, arrived in (("emails", result.mailed), ("webhooks", result.hooked)):
            if len(arrived) < len(result.published):
                figures.problems.append(f"{label}: {len(arrived)} of {len(result.published)} {what} arrived")
    return figures


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:,.0f} ms" if values else "n/a"


def rows(figures: NotificationFigures) -> list[tuple[str, str, str, str, str]]:
    table: list[tuple[str, str, str, str, str]] = []
    if figures.burst:
        burst = figures.burst
        table += [
            (f"emails sent, full speed ({figures.burst_size:,})", f"{burst.rate(burst.mailed):,.0f} /s",
             f"{figures.bare_email_rate:,.0f} /s", f"{100 * burst.rate(burst.mailed) / figures.bare_email_rate:.1f}%"
             if figures.bare_email_rate else "", ""),
            (f"webhooks delivered, full speed ({figures.burst_size:,})", f"{burst.rate(burst.hooked):,.0f} /s",
             f"{figures.bare_webhook_rate:,.0f} /s",
             f"{100 * burst.rate(burst.hooked) / figures.bare_webhook_rate:.1f}%" if figures.bare_webhook_rate
             else "", ""),
        ]
    if figures.paced:
        paced = figures.paced
        for what, arrived in (("email", paced.mailed), ("webhook", paced.hooked)):
            latencies = paced.latencies(arrived)
            table += [
                (f"{what}: published -> sent p50, {2 * figures.rate:,.0f} messages/s", _ms(latencies, 0.5), "", "",
                 ""),
                (f"{what}: published -> sent p99, {2 * figures.rate:,.0f} messages/s", _ms(latencies, 0.99), "", "",
                 f"< {TARGET_P99 * 1000:,.0f} ms"),
            ]
    return table


def notes(figures: NotificationFigures) -> list[str]:
    lines = ["notifications: one payment.failed event per synthetic invoice -> one email (to the local mailbox) and "
             "one signed webhook (to a receiver in the benchmark's process)"]
    return lines + [f"PROBLEM: {problem}" for problem in figures.problems]
