"""Orders payments knows, for the webhook benchmark: synthetic invoices issued on invoicing's stream, the orders
payments makes for them at the Razorpay sandbox, and what payments' webhook log says it did afterwards.

Issuing real invoices through invoice runs is slow; ``invoice.issued`` messages published as invoicing's outbox
relay publishes them (Nats-Msg-Id = event id) are what payments consumes either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import nats

from bench.stack import Stack
from bench.stack import channel as stack_channel
from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import payments_pb2 as pay
from billing.payments.v1 import payments_pb2_grpc

INVOICE_ISSUED = "billing.invoicing.v1.invoice.issued"
TOTAL_MINOR = 11_800  # INR 100 + 18% GST, as the integration tests' invoice


async def issue_invoices(nats_url: str, count: int) -> list[str]:
    """``invoice.issued`` for ``count`` invoices of INR 118.00, due in 30 days, on invoicing's stream as its
    outbox relay publishes them (Nats-Msg-Id = event id)."""
    connection = await nats.connect(nats_url, name="bench-invoices")
    js = connection.jetstream()
    today = date.today()
    run = datetime.now(UTC).strftime("%H%M%S")
    ids = []
    try:
        for start in range(0, count, 500):
            publishes = []
            for number in range(start, min(count, start + 500)):
                invoice_id = f"inv_bench{run}{number:06d}"
                ids.append(invoice_id)
                message = invoicing_events.InvoiceIssued(
                    event_id=f"invoice.issued:{invoice_id}",
                    invoice=inv.Invoice(
                        id=invoice_id, organisation_id=f"org_bench{number % 50:03d}",
                        number=f"WB/{run}/{number:06d}"[:16], status=inv.INVOICE_STATUS_ISSUED, currency="INR",
                        subtotal_minor=10_000, tax_minor=1_800, total_minor=TOTAL_MINOR,
                        issue_date=today.isoformat(), due_date=(today + timedelta(days=30)).isoformat(),
                        customer=inv.Party(name=f"Bench customer {number}", email="billing@acme.example"),
                    ),
                )
                publishes.append(js.publish(INVOICE_ISSUED, message.SerializeToString(), timeout=10,
                                            headers={"Nats-Msg-Id": message.event_id}))
            await asyncio.gather(*publishes)
    finally:
        await connection.close()
    return ids


async def created_orders(stack: Stack, invoice_ids: list[str], say: Callable[[str], None]) -> list[pay.Order]:
    """Wait (counting in payments' table, cheaply) until every invoice's order is made, then read each through
    ``GetInvoicePayments``, which must show it CREATED."""
    connection = await asyncpg.connect(stack.database_url)
    try:
        started = reported = time.perf_counter()
        while True:
            made = await connection.fetchval(
                "SELECT count(*) FROM payments.orders WHERE invoice_id = ANY($1) AND status = 'created'",
                invoice_ids)
            if made == len(invoice_ids):
                break
            now = time.perf_counter()
            if now - started > 300:
                raise RuntimeError(f"only {made:,} of {len(invoice_ids):,} orders were made in 300 s")
            if now - reported >= 5:
                reported = now
                say(f"    {now - started:5.1f} s: {made:,} of {len(invoice_ids):,} orders made")
            await asyncio.sleep(0.25)
    finally:
        await connection.close()
    async with stack_channel(stack.payments_address) as channel:
        stub = payments_pb2_grpc.PaymentsServiceStub(channel)
        semaphore = asyncio.Semaphore(8)

        async def order_of(invoice_id: str) -> pay.Order:
            async with semaphore:
                reply = await stub.GetInvoicePayments(pay.GetInvoicePaymentsRequest(invoice_id=invoice_id))
            if reply.order.status != pay.ORDER_STATUS_CREATED or not reply.order.provider_order_id:
                raise RuntimeError(f"invoice {invoice_id}: order {pay.OrderStatus.Name(reply.order.status)}")
            return reply.order

        return list(await asyncio.gather(*(order_of(i) for i in invoice_ids)))


async def outcomes(database_url: str) -> dict[str, int]:
    """What payments' webhook log says it did with the deliveries, by the first word of the outcome."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT split_part(outcome, ':', 1) AS what, count(*) AS n FROM payments.webhook_events GROUP BY 1")
    finally:
        await connection.close()
    return {row["what"]: row["n"] for row in rows}
