"""Payments' Stripe adapter (the official SDK) against the local Stripe (localstripe on 127.0.0.1): customers,
PaymentIntents in Stripe's units, confirmation by the payer, refunds, listings by window, idempotency keys, and
signed webhooks that stripe-python itself verifies."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import pytest
import stripe
from aiohttp import web
from localstripe import resources

from sandboxes.stripe import RunningLocalStripe, running_local_stripe
from services.payments.adapters.stripe_api import StripeApi
from services.payments.domain.provider import FailureKind, ProviderFailure
from services.payments.domain.stripe_events import parse_event

SECRET = "whsec_test_local_0123456789"


class Receiver:
    """A webhook endpoint that answers ``status`` and keeps what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("Stripe-Signature", ""), await request.read()))
        return web.Response(status=self.status)

    def events(self, event_type: str) -> list[dict]:
        return [json.loads(body) for _, body in self.received if json.loads(body)["type"] == event_type]


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield found, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


@pytest.fixture(scope="module")
async def local(receiver) -> AsyncIterator[RunningLocalStripe]:
    async with running_local_stripe(webhook_url=receiver[1], webhook_secret=SECRET, webhook_delay_seconds=0.05,
                                    webhook_retry_initial_seconds=0.1, webhook_retry_max_seconds=0.2) as running:
        yield running


@pytest.fixture(scope="module")
async def api(local) -> AsyncIterator[StripeApi]:
    adapter = StripeApi(local.secret_key, local.publishable_key, local.url, timeout_seconds=5)
    yield adapter
    await adapter.close()


async def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def stored(kind: str, object_id: str):
    return resources.store[f"{kind}:{object_id}"]


async def test_a_customer_per_organisation_made_once(api):
    first = await api.create_customer("org_ls1", "Acme Inc", "billing@acme.example")
    again = await api.create_customer("org_ls1", "Acme Inc", "billing@acme.example")
    assert first.startswith("cus_") and again == first  # the same Idempotency-Key: Stripe's first answer
    customer = stored("customer", first)
    assert (customer.name, customer.email, customer.metadata) == ("Acme Inc", "billing@acme.example",
                                                                   {"organisation_id": "org_ls1"})


@pytest.mark.parametrize(("currency", "ours", "stripes"), [("INR", 11800, 11800), ("JPY", 5000, 5000),
                                                           ("KWD", 12340, 12340), ("ISK", 500, 50000)])
async def test_a_payment_intent_in_stripes_units_and_back(api, currency, ours, stripes):
    customer = await api.create_customer(f"org_{currency}", "Acme", "")
    notes = {"invoice_id": f"inv_ls_{currency}", "organisation_id": f"org_{currency}"}
    order = await api.create_order(ours, currency, f"INV/{currency}", notes, customer_id=customer)
    intent = stored("payment_intent", order.id)
    assert (intent.amount, intent.currency, intent.customer) == (stripes, currency.lower(), customer)
    assert intent.metadata == {**notes, "invoice_number": f"INV/{currency}"}
    assert (order.amount_minor, order.currency, order.receipt) == (ours, currency, f"INV/{currency}")
    assert order.client_secret.startswith(order.id + "_secret_")
    again = await api.create_order(ours, currency, f"INV/{currency}", notes, customer_id=customer)
    assert again.id == order.id  # a retry after a lost answer: the same PaymentIntent


async def test_the_same_key_with_other_parameters_is_refused(api):
    notes = {"invoice_id": "inv_ls_conflict"}
    await api.create_order(1000, "USD", "R-1", notes)
    with pytest.raises(ProviderFailure) as refused:
        await api.create_order(2000, "USD", "R-1", notes)
    assert refused.value.kind is FailureKind.REJECTED and refused.value.source == "idempotency_error"


async def test_paid_then_refunded_in_part_and_in_full(api, local):
    order = await api.create_order(11800, "INR", "INV/LS/1", {"invoice_id": "inv_ls_paid"})
    assert (await api.fetch_payment(order.id)).status == "created"
    await local.control.pay(order.id)
    paid = await api.fetch_payment(order.id)
    assert (paid.status, paid.captured, paid.amount_minor, paid.currency) == ("captured", True, 11800, "INR")
    assert paid.notes["invoice_id"] == "inv_ls_paid"
    part = await api.create_refund(order.id, 5000, idempotency_key="rk-1", notes={"refund_id": "rfd_1"},
                                   receipt="rfd_1", currency="INR")
    repeat = await api.create_refund(order.id, 5000, idempotency_key="rk-1", notes={"refund_id": "rfd_1"},
                                     receipt="rfd_1", currency="INR")
    assert repeat.id == part.id and (part.amount_minor, part.status, part.payment_id) == (5000, "processed", order.id)
    assert part.notes == {"refund_id": "rfd_1", "receipt": "rfd_1"}
    rest = await api.create_refund(order.id, 6800, idempotency_key="rk-2", notes={}, receipt="rfd_2",
                                   currency="INR")
    assert (await api.fetch_refund(rest.id)).amount_minor == 6800
    assert (await api.fetch_payment(order.id)).amount_refunded_minor == 11800


async def test_an_unpaid_intent_is_cancelled_once_and_a_paid_one_is_left_as_it_is(api, local, receiver):
    unpaid = await api.create_order(11800, "INR", "INV/LS/C1", {"invoice_id": "inv_ls_cancel"})
    cancelled = await api.cancel_order(unpaid.id)
    assert (cancelled.id, cancelled.status, cancelled.cancelled) == (unpaid.id, "canceled", True)
    again = await api.cancel_order(unpaid.id)  # a retry after a lost answer: answered as it is
    assert again.cancelled
    sent = await eventually(lambda: [e for e in receiver[0].events("payment_intent.canceled")
                                     if e["data"]["object"]["id"] == unpaid.id])
    assert len(sent) == 1 and parse_event(json.dumps(sent[0]).encode())[2].payment.status == "failed"
    paid = await api.create_order(11800, "INR", "INV/LS/C2", {"invoice_id": "inv_ls_cancel_paid"})
    await local.control.pay(paid.id)
    left = await api.cancel_order(paid.id)
    assert (left.status, left.cancelled) == ("succeeded", False)
    # Two PaymentIntents of one invoice: the remade one has its own idempotency key.
    notes = {"invoice_id": "inv_ls_remade"}
    first = await api.create_order(11800, "INR", "INV/LS/R", notes)
    second = await api.create_order(8850, "INR", "INV/LS/R#O2", notes)
    assert second.id != first.id and (second.amount_minor, second.receipt) == (8850, "INV/LS/R#O2")
    assert (await api.create_order(8850, "INR", "INV/LS/R#O2", notes)).id == second.id


async def test_a_declined_card_fails_the_intent(api, local):
    order = await api.create_order(4200, "EUR", "INV/LS/2", {"invoice_id": "inv_ls_declined"})
    await local.control.decline(order.id)
    failed = await api.fetch_payment(order.id)
    assert (failed.status, failed.error_code) == ("failed", "card_declined")


async def test_listings_by_window_page_through_everything(api, local):
    start = int(time.time()) - 1
    made = []
    for n in range(3):
        order = await api.create_order(1000 + n, "USD", f"INV/LIST/{n}", {"invoice_id": f"inv_ls_list_{n}"})
        await local.control.pay(order.id)
        made.append(order.id)
    waiting = await api.create_order(999, "USD", "INV/LIST/w", {"invoice_id": "inv_ls_list_w"})
    refund = await api.create_refund(made[0], 100, idempotency_key="rk-list", notes={}, receipt="r", currency="USD")
    end = int(time.time()) + 2
    payments = {p.id for p in await api.list_payments(start, end)}
    assert set(made) <= payments and waiting.id not in payments  # an intent never attempted is no payment yet
    assert refund.id in {r.id for r in await api.list_refunds(start, end)}
    assert not {p.id for p in await api.list_payments(end, end + 60)} & set(made)


async def test_unknown_ids_are_rejections_and_a_closed_port_an_outage(local):
    api = StripeApi(local.secret_key, local.publishable_key, local.url, timeout_seconds=2)
    with pytest.raises(ProviderFailure) as missing:
        await api.fetch_payment("pi_doesnotexist")
    assert (missing.value.kind, missing.value.http_status) == (FailureKind.REJECTED, 404)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        closed = StripeApi(local.secret_key, "", f"http://127.0.0.1:{holder.getsockname()[1]}", timeout_seconds=2)
        with pytest.raises(ProviderFailure) as down:
            await closed.fetch_payment("pi_1")
        assert down.value.kind is FailureKind.UNAVAILABLE
        await closed.close()
    with pytest.raises(ProviderFailure) as link:
        await api.create_payment_link(None)  # type: ignore[arg-type]
    assert link.value.kind is FailureKind.REJECTED
    await api.close()


async def test_events_are_signed_so_stripe_python_verifies_them_and_read_as_stripe_sends_them(api, local, receiver):
    found, _ = receiver
    order = await api.create_order(2500, "USD", "INV/LS/hook", {"invoice_id": "inv_ls_hook"})
    await local.control.pay(order.id)
    await api.create_refund(order.id, 500, idempotency_key="rk-hook", notes={"refund_id": "rfd_h"}, receipt="rfd_h",
                            currency="USD")

    def mine():
        return [(h, b) for h, b in found.received if order.id.encode() in b]

    deliveries = await eventually(lambda: len(mine()) >= 3 and mine())
    kinds = set()
    for header, body in deliveries:
        event = stripe.Webhook.construct_event(body, header, SECRET)  # raises unless Stripe's scheme holds
        event_id, event_type, notice = parse_event(body)
        assert event_id == event["id"] and event_type == event["type"]
        kinds.add(event_type)
        if event_type == "payment_intent.succeeded":
            assert notice.payment is not None and notice.payment.status == "captured"
        if event_type in ("refund.created", "charge.refunded"):
            assert [r.payment_id for r in notice.refunds] and notice.refunds[0].notes.get("refund_id") in ("rfd_h",
                                                                                                        None)
    assert {"payment_intent.succeeded", "refund.created", "charge.refunded"} <= kinds


async def test_a_failed_delivery_is_retried_and_re_signed(api, local, receiver):
    found, _ = receiver
    found.status = 503
    order = await api.create_order(3100, "USD", "INV/LS/retry", {"invoice_id": "inv_ls_retry"})
    await local.control.pay(order.id)

    def attempts() -> list[tuple[str, bytes]]:
        return [(h, b) for h, b in found.received if order.id.encode() in b and b'"payment_intent.succeeded"' in b]

    assert await eventually(lambda: len(attempts()) >= 2)
    event_id = json.loads(attempts()[0][1])["id"]
    found.status = 200
    assert await eventually(lambda: any(d["event_id"] == event_id and d["status"] == 200
                                        for d in local.deliveries.log))
    tried = attempts()
    assert len(tried) >= 3 and {json.loads(b)["id"] for _, b in tried} == {event_id}
    for header, body in tried:  # each attempt signed when it was sent
        stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)
