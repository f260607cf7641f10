"""End to end, every service a process: usage -> invoice run -> Razorpay order -> paid on the sandbox's checkout
page -> signed webhooks -> invoice paid (the invoice email with its PDF and the receipt in the local mailbox) ->
partial refund -> partially refunded. Then payments is killed with
SIGKILL while webhooks are arriving and being settled: after restarts nothing is lost and nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import nats
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as inv
from devstack.mailbox import LocalMailbox
from devstack.mesh import Mesh
from devstack.ports import free_port
from devstack.razorpay_sandbox import LocalRazorpaySandbox
from sandboxes.razorpay.control import SandboxControl
from sandboxes.smtp.control import MailboxControl
from tests.e2e.test_invoicing import previous_month_ist
from tests.integration.payments.jetstream import all_payments_events

pytestmark = pytest.mark.e2e


class Receiver:
    """A customer's webhook endpoint: a Starlette app on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    async def _take(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    async def received_async(self) -> list[tuple[dict[str, str], bytes]]:
        return list(self.received)

    @contextlib.asynccontextmanager
    async def serving(self):
        app = Starlette(routes=[Route("/hooks", self._take, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                await asyncio.sleep(0.02)
            yield self
        finally:
            server.should_exit = True
            await task


async def wait_until(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")


async def _issued_invoice(admin: httpx.AsyncClient, mesh: Mesh) -> dict:
    """A customer on a INR 1,499 plan since last month, last month closed: its issued invoice (1,768.82)."""
    period_start, _ = previous_month_ist(datetime.now(UTC))
    created = await admin.post("/api/v1/admin/organisations", json={
        "name": "Chai Point Labs", "billing_email": "accounts@chaipoint.example", "billing_currency": "INR",
        "country": "IN", "state_code": "29", "gstin": "29ABCDE1234F1ZW", "timezone": "Asia/Kolkata"})
    assert created.status_code == 201, created.text
    organisation_id = created.json()["id"]
    connection = await asyncpg.connect(mesh.database_url)  # an organisation that signed up before that month
    try:
        await connection.execute("UPDATE invoicing.organisations SET created_at = $1 WHERE id = $2",
                                 period_start - timedelta(days=10), organisation_id)
    finally:
        await connection.close()
    plan = await admin.post("/api/v1/admin/plans", json={
        "code": f"team-{secrets.token_hex(3)}", "name": "Team", "terms": {"currency": "INR", "base_fee": "1499",
                                                                         "charges": []}})
    assert plan.status_code == 201, plan.text
    subscription = await admin.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_version_id": plan.json()["latest_version"]["id"],
        "start_date": period_start.date().isoformat()})
    assert subscription.status_code == 201, subscription.text
    run = await admin.post("/api/v1/admin/invoice-runs", json={"period_key": period_start.strftime("%Y-%m"),
                                                               "organisation_id": organisation_id})
    assert run.status_code == 202, run.text

    async def issued():
        page = (await admin.get("/api/v1/admin/invoices", params={"organisation_id": organisation_id})).json()
        return page["data"][0] if page["data"] and page["data"][0]["status"] == "issued" else None

    return await wait_until(issued, "the invoice being issued")


async def test_an_invoice_paid_on_the_sandbox_checkout_page_then_partly_refunded(
    mesh: Mesh, razorpay_sandbox: LocalRazorpaySandbox, mailbox: LocalMailbox
):
    receiver = Receiver()
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30,
                                 headers={"Authorization": f"Bearer {mesh.admin_token}"}) as admin, \
            receiver.serving():
        invoice = await _issued_invoice(admin, mesh)
        assert invoice["total_minor"] == 176882 and invoice["amount_due_minor"] == 176882
        # The customer's system hears about it too: an endpoint for invoice.paid, registered over REST.
        endpoint = await admin.post(f"/api/v1/admin/organisations/{invoice['organisation_id']}/webhook-endpoints",
                                    json={"url": receiver.url, "event_types": ["invoice.paid"]})
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]

        async def order_made():
            reply = await admin.get(f"/api/v1/admin/invoices/{invoice['id']}/checkout")
            return reply.json() if reply.status_code == 200 else None

        checkout = await wait_until(order_made, "the Razorpay order")
        assert checkout["amount_minor"] == 176882 and checkout["checkout_url"].startswith(razorpay_sandbox.url)

        # A person opens the hosted checkout page and pays by UPI.
        async with httpx.AsyncClient(timeout=30) as browser:
            page = await browser.get(checkout["checkout_url"])
            assert page.status_code == 200 and "1,768.82" in page.text
            paid_page = await browser.post(f"{checkout['checkout_url']}/pay",
                                           data={"method": "upi", "vpa": "chai@okicici"})
            assert paid_page.status_code == 200, paid_page.text

        async def invoice_now(status: str):
            body = (await admin.get(f"/api/v1/admin/invoices/{invoice['id']}")).json()
            return body if body["status"] == status else None

        paid = await wait_until(lambda: invoice_now("paid"), "the invoice being paid")
        assert (paid["amount_paid_minor"], paid["amount_due_minor"]) == (176882, 0)
        [payment] = (await admin.get(f"/api/v1/admin/invoices/{invoice['id']}/payments")).json()["payments"]
        assert payment["status"] == "captured" and payment["method"] == "upi"

        # The customer's mailbox: the invoice (with its PDF) when it was issued, and the receipt once paid.
        async with MailboxControl(mailbox.url) as mail:
            mails = await mail.wait_for(lambda m: invoice["number"] in (m["subject"] or ""), count=2, timeout=60)
        subjects = sorted(m["subject"] for m in mails)
        assert subjects[0].startswith(f"Invoice {invoice['number']}") and "INR 1,768.82" in subjects[0], subjects
        assert subjects[1].startswith(f"Receipt for invoice {invoice['number']}"), subjects
        issued_mail = next(m for m in mails if m["subject"].startswith("Invoice"))
        # ... and its system got invoice.paid, signed: verified with the standardwebhooks package, as a customer
        # would verify it.
        [(headers, body)] = await wait_until(lambda: receiver.received_async(), "the invoice.paid webhook")
        payload = Webhook(secret).verify(body, headers)
        assert payload["type"] == "invoice.paid" and payload["data"]["invoice"]["number"] == invoice["number"]
        assert issued_mail["to"] == ["accounts@chaipoint.example"]
        assert [a["content_type"] for a in issued_mail["attachments"]] == ["application/pdf"]

        refund = await admin.post(f"/api/v1/admin/payments/{payment['id']}/refunds",
                                  json={"amount": "500.00", "reason": "service credit for an outage"},
                                  headers={"Idempotency-Key": f"e2e-{secrets.token_hex(4)}"})
        assert refund.status_code == 201, refund.text
        refunded = await wait_until(lambda: invoice_now("partially_refunded"), "the refund reaching the invoice")
        assert (refunded["amount_paid_minor"], refunded["amount_refunded_minor"]) == (176882, 50000)


async def test_payments_killed_while_webhooks_arrive_and_settle_loses_and_doubles_nothing(
    mesh: Mesh, razorpay_sandbox: LocalRazorpaySandbox
):
    count = 30
    connection = await nats.connect(mesh.nats_url)
    js = connection.jetstream()
    control = SandboxControl(razorpay_sandbox.url)
    try:
        invoice_ids = [f"inv_kill{secrets.token_hex(6)}" for _ in range(count)]
        for invoice_id in invoice_ids:  # as invoicing publishes them
            issued = invoicing_events.InvoiceIssued(event_id=f"evt_{invoice_id}", invoice=inv.Invoice(
                id=invoice_id, organisation_id="org_kill", number=f"KL/{invoice_id[-8:]}", currency="INR",
                status=inv.INVOICE_STATUS_ISSUED, total_minor=25000, due_date="2026-12-31",
                customer=inv.Party(name="Kill", email="kill@acme.example")))
            await js.publish("billing.invoicing.v1.invoice.issued", issued.SerializeToString(),
                             headers={"Nats-Msg-Id": issued.event_id})
        async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30,
                                     headers={"Authorization": f"Bearer {mesh.admin_token}"}) as admin:

            async def orders():
                found = []
                for invoice_id in invoice_ids:
                    reply = await admin.get(f"/api/v1/admin/invoices/{invoice_id}/payments")
                    order = reply.json().get("order") if reply.status_code == 200 else None
                    if not order or not order.get("provider_order_id"):
                        return None
                    found.append(order["provider_order_id"])
                return found

            order_ids = await wait_until(orders, "every order")

            # Payments is killed; the customers pay meanwhile: the gateway keeps taking the webhooks (JetStream).
            mesh.kill("payments", signal.SIGKILL)
            for order_id in order_ids[:20]:
                await control.pay_order(order_id, method="card")
            await control.wait_for_deliveries(timeout=30)
            mesh.start_service("payments")
            # Killed again while it works through the backlog, with ten more payments arriving.
            for order_id in order_ids[20:]:
                await control.pay_order(order_id, method="upi")
            await asyncio.sleep(0.3)
            mesh.kill("payments", signal.SIGKILL)
            mesh.start_service("payments")

            async def settled():
                captured = 0
                for invoice_id in invoice_ids:
                    reply = (await admin.get(f"/api/v1/admin/invoices/{invoice_id}/payments")).json()
                    captured += reply["amount_captured_minor"] == 25000 and len(reply["payments"]) == 1
                return captured == count

            await wait_until(settled, "every payment settled once")
        published = await all_payments_events(js)
        for invoice_id in invoice_ids:
            kinds = [type(m).__name__ for m in published.get(invoice_id, [])]
            assert kinds == ["PaymentCaptured"], (invoice_id, kinds)
    finally:
        await control.aclose()
        await connection.close()
