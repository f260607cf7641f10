"""Payments against the Razorpay sandbox, through the official SDK and the real gateway.

One sandbox, one payments service and one gateway per module: the sandbox's webhooks go to the gateway,
which verifies them and hands them to payments through JetStream, exactly as in production. Invoices come
out of real invoice runs of the session's invoicing service.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest

from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import events_pb2, payments_pb2_grpc
from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.service import Runtime
from sandboxes.razorpay import RunningSandbox, running_sandbox
from sandboxes.stripe import RunningLocalStripe, running_local_stripe
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import mesh_channel, running_service
from tests.integration.invoicing.conftest import create_organisation, create_plan, run_to_completion, subscribe, terms

ADMIN_TOKEN = "test-admin-token-for-payments-01"
WEBHOOK_PATH = "/api/v1/webhooks/razorpay"


@dataclass
class Collecting:
    """What a payments test works with."""

    sandbox: RunningSandbox
    payments: Runtime
    stub: payments_pb2_grpc.PaymentsServiceStub
    gateway_url: str
    http: httpx.AsyncClient

    @property
    def webhook_url(self) -> str:
        return self.gateway_url + WEBHOOK_PATH


def payments_settings(sandbox: RunningSandbox, **overrides: Any) -> dict[str, Any]:
    """Payments' settings against the sandbox, quick enough for tests (retries in fractions of a second)."""
    return {
        "razorpay_key_id": sandbox.key_id, "razorpay_key_secret": sandbox.key_secret,
        "razorpay_base_url": sandbox.url, "razorpay_timeout_seconds": 2.0,
        "checkout_url_template": f"{sandbox.url}/checkout/{{order_id}}", "worker_interval_seconds": 0.1,
        "provider_retry_base_seconds": 0.2, "provider_retry_cap_seconds": 1.0, "capture_after_seconds": 1.0,
        "daily_reconciliation": False,
        **overrides,
    }


@asynccontextmanager
async def running_gateway(sandbox: RunningSandbox, database_url: str, nats_url: str, payments_address: str | None,
                          invoicing: Runtime, metering: Runtime, ingest: Runtime) -> AsyncIterator[str]:
    """The gateway, receiving the sandbox's webhooks; yields its HTTP address. Webhooks reach payments through
    JetStream, so payments may come and go behind it (``payments_address`` None: nowhere)."""
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address,
        metering_address=metering.address, payments_address=payments_address or _refusing_address(),
        notification_address=_refusing_address(), razorpay_webhook_secret=sandbox.webhook_secret,
    ) as gateway:
        await sandbox.control.set_webhook(gateway.http_address + WEBHOOK_PATH)
        yield gateway.http_address


@asynccontextmanager
async def running_collecting(database_url: str, nats_url: str, invoicing: Runtime, metering: Runtime,
                             ingest: Runtime, **payments_overrides: Any) -> AsyncIterator[Collecting]:
    """A sandbox, payments (with ``payments_overrides`` on top of :func:`payments_settings`) and a gateway."""
    async with running_sandbox(webhook_retry_initial_seconds=0.2, webhook_retry_max_seconds=1.0,
                               webhook_max_attempts=20) as sandbox:
        async with running_service(PAYMENTS, database_url, nats_url,
                                   **payments_settings(sandbox, **payments_overrides)) as payments:
            async with running_gateway(sandbox, database_url, nats_url, payments.address, invoicing, metering,
                                       ingest) as gateway_url:
                async with mesh_channel(payments.address) as channel, httpx.AsyncClient(
                    base_url=gateway_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
                ) as http:
                    yield Collecting(sandbox, payments, payments_pb2_grpc.PaymentsServiceStub(channel),
                                     gateway_url, http)


@pytest.fixture(scope="module")
async def collecting(database_url, nats_url, invoicing, metering, ingest) -> AsyncIterator[Collecting]:
    async with running_collecting(database_url, nats_url, invoicing, metering, ingest) as collecting:
        yield collecting


def _refusing_address() -> str:
    """An address where nothing listens (a port bound, never listened on, and kept bound for the session)."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    _KEPT.append(holder)
    return f"127.0.0.1:{holder.getsockname()[1]}"


_KEPT: list[Any] = []


async def eventually(check: Callable[[], Any], until: Callable[[Any], bool] = bool, *, timeout: float = 30.0,
                     what: str = "the condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await check()
        except grpc.aio.AioRpcError as error:
            last = error
        else:
            if until(last):
                return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


async def issue_invoice(invoicing_stub, invoicing, base_fee: str = "100", currency: str = "INR") -> inv.Invoice:
    """A real invoice: a new organisation on a base-fee plan since October, and October closed for it.
    (INR 100 + 18% GST = 118.00.)"""
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=datetime(2026, 9, 1, tzinfo=UTC),
                                                billing_email=f"billing-{secrets.token_hex(3)}@acme.example")
    plan = await create_plan(invoicing_stub, terms(currency=currency, base_fee=base_fee, charges=[]))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    invoices = await invoicing_stub.ListInvoices(inv.ListInvoicesRequest(organisation_id=organisation_id))
    [invoice] = invoices.invoices
    return invoice


async def created_order(stub, invoice_id: str) -> pay.Order:
    reply = await eventually(lambda: stub.GetInvoicePayments(pay.GetInvoicePaymentsRequest(invoice_id=invoice_id)),
                             lambda r: r.order.status == pay.ORDER_STATUS_CREATED, what="the order")
    return reply.order


async def collection(stub, invoice_id: str) -> pay.GetInvoicePaymentsResponse:
    return await stub.GetInvoicePayments(pay.GetInvoicePaymentsRequest(invoice_id=invoice_id))


async def paid_invoice(collecting: Collecting, invoicing_stub, invoicing) -> tuple[inv.Invoice, pay.Payment]:
    """A real invoice of INR 118.00, paid in full through the sandbox and captured as payments knows it."""
    invoice = await issue_invoice(invoicing_stub, invoicing)
    order = await created_order(collecting.stub, invoice.id)
    await collecting.sandbox.control.pay_order(order.provider_order_id, method="upi", vpa="acme@okhdfc")
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == invoice.total_minor, what="the capture")
    [payment] = paid.payments
    return invoice, payment


def sandbox_orders(collecting: Collecting, receipt: str) -> list[dict[str, Any]]:
    """The orders the sandbox holds with this receipt."""
    return [o for o in collecting.sandbox.sandbox.store.orders.values() if o["receipt"] == receipt]


def sandbox_refunds(collecting: Collecting, provider_payment_id: str) -> list[dict[str, Any]]:
    """The refunds the sandbox holds against one of its payments."""
    return [r for r in collecting.sandbox.sandbox.store.refunds.values() if r["payment_id"] == provider_payment_id]


# --- Stripe beside Razorpay ---------------------------------------------------------------------------------------

STRIPE_WEBHOOK_PATH = "/api/v1/webhooks/stripe"
STRIPE_WEBHOOK_SECRET = "whsec_integration_0123456789abcdef"


@dataclass
class StripeCollecting:
    """Payments with both providers configured (Razorpay the default), the local Stripe, and the gateway that
    receives both providers' webhooks."""

    local: RunningLocalStripe
    sandbox: RunningSandbox
    payments: Runtime
    stub: payments_pb2_grpc.PaymentsServiceStub
    gateway_url: str
    http: httpx.AsyncClient

    @property
    def webhook_url(self) -> str:
        return self.gateway_url + STRIPE_WEBHOOK_PATH


@asynccontextmanager
async def running_stripe_collecting(database_url: str, nats_url: str, invoicing: Runtime, metering: Runtime,
                                    ingest: Runtime, **payments_overrides: Any) -> AsyncIterator[StripeCollecting]:
    async with running_local_stripe(webhook_delay_seconds=0.05, webhook_retry_initial_seconds=0.2,
                                    webhook_retry_max_seconds=1.0, webhook_max_attempts=20,
                                    webhook_secret=STRIPE_WEBHOOK_SECRET) as local, \
            running_sandbox(webhook_retry_initial_seconds=0.2, webhook_retry_max_seconds=1.0) as sandbox:
        settings = payments_settings(sandbox, stripe_secret_key=local.secret_key,
                                     stripe_publishable_key=local.publishable_key, stripe_api_base=local.url,
                                     stripe_timeout_seconds=2.0, **payments_overrides)
        async with running_service(PAYMENTS, database_url, nats_url, **settings) as payments, running_service(
            GATEWAY, database_url, nats_url, admin_token=ADMIN_TOKEN, http_port=0, ingest_address=ingest.address,
            invoicing_address=invoicing.address, metering_address=metering.address,
            payments_address=payments.address, notification_address=_refusing_address(),
            razorpay_webhook_secret=sandbox.webhook_secret, stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        ) as gateway:
            await local.control.set_webhook(gateway.http_address + STRIPE_WEBHOOK_PATH, STRIPE_WEBHOOK_SECRET)
            await sandbox.control.set_webhook(gateway.http_address + WEBHOOK_PATH)
            async with mesh_channel(payments.address) as channel, httpx.AsyncClient(
                base_url=gateway.http_address, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
            ) as http:
                yield StripeCollecting(local, sandbox, payments, payments_pb2_grpc.PaymentsServiceStub(channel),
                                       gateway.http_address, http)


async def issue_stripe_invoice(stub, invoicing_stub, invoicing, base_fee: str = "100",
                               currency: str = "INR") -> inv.Invoice:
    """A real invoice of an organisation that chose Stripe before it was issued (INR 100 + 18% GST = 118.00)."""
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=datetime(2026, 9, 1, tzinfo=UTC),
                                                billing_email=f"billing-{secrets.token_hex(3)}@acme.example")
    await stub.SetPaymentProvider(pay.SetPaymentProviderRequest(organisation_id=organisation_id,
                                                                provider=events_pb2.PROVIDER_STRIPE))
    plan = await create_plan(invoicing_stub, terms(currency=currency, base_fee=base_fee, charges=[]))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    invoices = await invoicing_stub.ListInvoices(inv.ListInvoicesRequest(organisation_id=organisation_id))
    [invoice] = invoices.invoices
    return invoice
