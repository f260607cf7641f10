"""Dunning over in-memory fakes: overdue, attempts with fresh links, provider errors, payments stopping it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from services.payments.adapters import messages
from services.payments.domain.dunning import DunningPolicy, DunningState
from services.payments.domain.entities import Invoice, InvoiceState
from services.payments.domain.provider import Backoff
from services.payments.service import dunning, invoices, links, offline, orders, webhooks
from services.payments.service.ports import Providers
from tests.unit.services.payments.service.fakes import FakeProvider, Store, outage, unknown

ISSUED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
OVERDUE = datetime(2026, 12, 20, 18, 30, tzinfo=UTC)  # the end of 20 Dec in Kolkata
BACKOFF = Backoff(timedelta(seconds=2), 2.0, timedelta(minutes=10))
RULES = dunning.DunningRules(DunningPolicy(max_attempts=2, retry_days=(1, 3)), "Asia/Kolkata")


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


async def issue(uow, total: int = 241417) -> None:
    invoice = Invoice("inv_1", "org_1", "INV/2627/00001", "INR", total, InvoiceState.OPEN,
                      due_date=date(2026, 12, 20), customer_email="billing@acme.example")
    await invoices.register_issued(uow, invoice, ISSUED, RULES)


def published(store: Store) -> list[str]:
    return [subject for subject, _, _ in store.published]


async def test_overdue_then_one_fresh_link_per_attempt_then_uncollectible(uow, store, provider):
    await issue(uow)
    assert await dunning.run_due(uow, Providers(provider), RULES, OVERDUE - timedelta(seconds=1), BACKOFF) == 0
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE, BACKOFF)
    assert published(store) == [messages.INVOICE_OVERDUE]
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE + timedelta(days=1), BACKOFF)
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE + timedelta(days=3), BACKOFF)
    retries = [m for s, _, m in store.published if s == messages.PAYMENT_RETRY_SCHEDULED]
    assert [r.attempt_number for r in retries] == [1, 2]
    assert len({r.payment_link_url for r in retries}) == 2 and all(r.payment_link_url for r in retries)
    assert sorted(link.reference_id for link in store.links.values()) == ["INV/2627/00001#D1", "INV/2627/00001#D2"]
    assert retries[0].next_attempt_time.ToDatetime(tzinfo=UTC) == OVERDUE + timedelta(days=3)
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE + timedelta(days=5), BACKOFF)
    assert published(store)[-1] == messages.INVOICE_UNCOLLECTIBLE
    assert store.dunning["inv_1"][0].state is DunningState.EXHAUSTED
    assert await dunning.run_due(uow, Providers(provider), RULES, OVERDUE + timedelta(days=50), BACKOFF) == 0


async def test_a_provider_error_retries_the_attempt_quickly_and_a_lost_answer_finds_the_link_again(
    uow, store, provider
):
    await issue(uow)
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE, BACKOFF)
    provider.failures = [outage()]
    day1 = OVERDUE + timedelta(days=1)
    await dunning.run_due(uow, Providers(provider), RULES, day1, BACKOFF)
    row, errors = store.dunning["inv_1"]
    assert row.attempts == 0 and errors == 1 and row.next_at == day1 + timedelta(seconds=2)
    # The second try made the link but its answer was lost:
    provider.failures = [unknown()]
    original = provider.create_payment_link

    async def made_then_lost(link):
        await original(link)
        raise unknown()

    provider.create_payment_link = made_then_lost
    provider.failures = []
    await dunning.run_due(uow, Providers(provider), RULES, day1 + timedelta(seconds=2), BACKOFF)
    provider.create_payment_link = original
    await dunning.run_due(uow, Providers(provider), RULES, day1 + timedelta(seconds=10), BACKOFF)
    assert len(provider.links) == 1 and store.dunning["inv_1"][0].attempts == 1
    assert published(store) == [messages.INVOICE_OVERDUE, messages.PAYMENT_RETRY_SCHEDULED]


async def test_a_payment_stops_dunning_at_once(uow, store, provider):
    await issue(uow)
    await orders.create_due_orders(uow, Providers(provider), ISSUED, BACKOFF)
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE, BACKOFF)
    order_id = store.orders["inv_1"].provider_order_id
    body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_1", "amount": 241417, "currency": "INR", "status": "captured", "order_id": order_id}}}}).encode()
    await webhooks.process(uow, webhooks.ReceivedWebhook("razorpay", "e1", "payment.captured", body, OVERDUE),
                           OVERDUE, timedelta(minutes=5))
    assert store.dunning["inv_1"][0].state is DunningState.STOPPED
    assert await dunning.run_due(uow, Providers(provider), RULES, OVERDUE + timedelta(days=30), BACKOFF) == 0
    assert published(store) == [messages.INVOICE_OVERDUE, messages.PAYMENT_CAPTURED]


async def test_a_partial_offline_payment_keeps_dunning_for_what_is_left(uow, store, provider):
    await issue(uow)
    await offline.record_offline_payment(uow, offline.OfflinePayment("inv_1", 41417, "INR", "cheque", "CHQ-1"),
                                         ISSUED)
    await dunning.run_due(uow, Providers(provider), RULES, OVERDUE, BACKOFF)
    overdue = next(m for s, _, m in store.published if s == messages.INVOICE_OVERDUE)
    assert overdue.amount_due_minor == 200000


async def test_an_organisations_own_policy_applies_to_invoices_issued_after_it(uow, store, provider):
    own = DunningPolicy(max_attempts=1, retry_days=(10,))
    assert await dunning.set_policy(uow, RULES, "org_1", own) == (own, True)
    await issue(uow)
    assert store.dunning["inv_1"][0].policy == own
    assert await dunning.policy(uow, RULES, "org_2") == (RULES.default_policy, False)


async def test_a_payment_link_for_an_email_is_reused_while_open(uow, store, provider):
    await issue(uow)
    providers = Providers(provider)
    first, created = await links.open_link(uow, providers, "inv_1", RULES.links, ISSUED)
    again, created_again = await links.open_link(uow, providers, "inv_1", RULES.links, ISSUED + timedelta(days=1))
    assert created and not created_again and again.id == first.id and first.short_url.startswith("https://")
    request = next(iter(provider.links.values()))[1]
    assert request.amount_minor == 241417 and request.notes["invoice_id"] == "inv_1"
    later, created_later = await links.open_link(uow, providers, "inv_1", RULES.links, ISSUED + timedelta(days=8))
    assert created_later and later.reference_id == "INV/2627/00001#L2"
