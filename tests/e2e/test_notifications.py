"""End to end, notification a process of its own: killed with SIGKILL while it works through a batch of events and
mail, and with NATS redelivering what it had not acknowledged. Every event gets its message recorded once; no mail
reaches the mailbox twice; a mail whose sender died mid-send is left UNKNOWN for an operator, never resent."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections import Counter

import asyncpg
import nats
import pytest

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as inv
from devstack.mailbox import LocalMailbox
from devstack.mesh import Mesh
from sandboxes.smtp.control import MailboxControl

pytestmark = pytest.mark.e2e

COUNT = 40


async def _states(mesh: Mesh, invoice_ids: list[str]) -> dict[str, list[str]]:
    connection = await asyncpg.connect(mesh.database_url)
    try:
        rows = await connection.fetch(
            "SELECT invoice_id, state FROM notification.messages WHERE kind = 'payment_receipt' "
            "AND invoice_id = ANY($1::text[])", invoice_ids)
    finally:
        await connection.close()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["invoice_id"], []).append(row["state"])
    return found


async def test_notification_killed_mid_batch_records_every_message_once_and_never_mails_twice(
    mesh: Mesh, mailbox: LocalMailbox
):
    connection = await nats.connect(mesh.nats_url)
    js = connection.jetstream()
    numbers = {f"inv_note{secrets.token_hex(6)}": f"NT/{secrets.token_hex(4)}" for _ in range(COUNT)}
    try:
        for invoice_id, number in numbers.items():  # as invoicing publishes them: issued, then paid
            invoice = inv.Invoice(id=invoice_id, organisation_id="org_notify", number=number, currency="INR",
                                  status=inv.INVOICE_STATUS_ISSUED, total_minor=11800, due_date="2026-12-31",
                                  customer=inv.Party(name="Notify", email="notify@acme.example"))
            issued = invoicing_events.InvoiceIssued(event_id=f"evt_i_{invoice_id}", invoice=invoice)
            await js.publish("billing.invoicing.v1.invoice.issued", issued.SerializeToString(),
                             headers={"Nats-Msg-Id": issued.event_id})
        await asyncio.sleep(1.0)
        mesh.kill("notification", signal.SIGKILL)
        for invoice_id, number in numbers.items():
            invoice = inv.Invoice(id=invoice_id, organisation_id="org_notify", number=number, currency="INR",
                                  status=inv.INVOICE_STATUS_PAID, total_minor=11800, amount_paid_minor=11800)
            paid = invoicing_events.InvoicePaid(event_id=f"evt_p_{invoice_id}", invoice=invoice)
            await js.publish("billing.invoicing.v1.invoice.paid", paid.SerializeToString(),
                             headers={"Nats-Msg-Id": paid.event_id})
        mesh.start_service("notification")
        await asyncio.sleep(0.5)  # in the middle of recording and sending the receipts
        mesh.kill("notification", signal.SIGKILL)
        mesh.start_service("notification")

        deadline = time.monotonic() + 90
        states: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            states = await _states(mesh, list(numbers))
            if len(states) == COUNT and all(s[0] in ("sent", "unknown") for s in states.values()):
                break
            await asyncio.sleep(0.5)
        assert len(states) == COUNT, f"receipts recorded for {len(states)} of {COUNT} invoices"
        assert all(len(s) == 1 for s in states.values()), "a receipt recorded twice"
        assert all(s[0] in ("sent", "unknown") for s in states.values()), Counter(s[0] for s in states.values())

        async with MailboxControl(mailbox.url) as mail:
            received = [m["subject"] for m in await mail.messages() if m["subject"]
                        and m["subject"].startswith("Receipt for invoice NT/")]
        per_invoice = Counter(subject.split()[3].rstrip(":") for subject in received)
        assert set(per_invoice) <= set(numbers.values())
        assert max(per_invoice.values(), default=1) == 1, "a receipt mailed twice"
        sent = {invoice_id for invoice_id, s in states.items() if s[0] == "sent"}
        assert {numbers[i] for i in sent} <= set(per_invoice), "a receipt recorded as sent never arrived"
    finally:
        await connection.close()
