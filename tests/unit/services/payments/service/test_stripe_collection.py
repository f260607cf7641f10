"""Stripe behind the same use cases as Razorpay, over in-memory fakes: the organisation's choice, one customer per
organisation, a PaymentIntent per invoice, Stripe's events moving the same state machine forward, refunds,
checkout and dunning without payment links."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.payments.adapters import messages
from services.payments.domain.dunning import DunningPolicy, DunningState
from services.payments.domain.entities import Invoice, InvoiceState, OrderStatus
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import Backoff
from services.payments.domain.refund import RefundStatus
from services.payments.domain.reports import ReportTooEarly
from services.payments.service import checkout, choices, dunning, invoices, links, orders, refunds, webhooks
from services.payments.service.ports import Providers
from tests.unit.services.payments.service.fakes import FakeProvider, outage

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
BACKOFF = Backoff(timedelta(seconds=2), 2.0, timedelta(minutes=10))
CAPTURE_AFTER = timedelta(minutes=5)
RULES = dunning.DunningRules(DunningPolicy(max_attempts=2, retry_days=(1, 3)), "Asia/Kolkata")
MERCHANT = checkout.Merchant("Billing Platform", "rzp_test_fake", "http://sandbox/checkout/{order_id}")


def invoice(invoice_id: str = "inv_1", total: int = 11800, currency: str = "USD", organisation_id: str = "org_s",
            due: date | None = None) -> Invoice:
    return Invoice(invoice_id, organisation_id, f"INV/2627/{invoice_id[-5:]:0>5}", currency, total, InvoiceState.OPEN,
                   due_date=due, customer_name="Acme Inc", customer_email="billing@acme.example")


@pytest.fixture
def stripe() -> FakeProvider:
    fake = FakeProvider(Provider.STRIPE)
    fake.key_id = "pk_test_fake"
    return fake


@pytest.fixture
def razorpay() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def providers(stripe, razorpay) -> Providers:
    return Providers(razorpay, stripe)


def event(event_type: str, data_object: dict, event_id: str) -> webhooks.ReceivedWebhook:
    body = json.dumps({"id": event_id, "object": "event", "type": event_type, "created": 1764928800,
                       "data": {"object": data_object}}, indent=2).encode()
    return webhooks.ReceivedWebhook("stripe", event_id, event_type, body, NOW)


def intent(intent_id: str, status: str, amount: int = 11800, **more) -> dict:
    return {"id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": amount,
            "currency": "usd", "status": status, "metadata": {"invoice_id": "inv_1"}, **more}


async def stripe_order(uow, providers, invoice_id: str = "inv_1", **kw) -> str:
    await invoices.register_issued(uow, invoice(invoice_id, **kw), NOW, RULES)
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    async with uow() as unit:
        return (await unit.orders.get(invoice_id)).provider_order_id


# --- the choice -------------------------------------------------------------------------------------------------


async def test_an_organisation_collects_through_razorpay_until_it_chooses_stripe(uow, store, providers):
    assert await choices.get_choice(uow, providers, "org_s") == (Provider.RAZORPAY, False)
    assert await choices.set_choice(uow, providers, "org_s", Provider.STRIPE) == (Provider.STRIPE, True)
    assert await choices.get_choice(uow, providers, "org_s") == (Provider.STRIPE, True)
    await invoices.register_issued(uow, invoice("inv_1"), NOW, RULES)
    await invoices.register_issued(uow, invoice("inv_2", organisation_id="org_r"), NOW, RULES)
    assert (store.orders["inv_1"].provider, store.orders["inv_2"].provider) == (Provider.STRIPE, Provider.RAZORPAY)
    # A later change applies to later invoices only.
    assert await choices.set_choice(uow, providers, "org_s", None) == (Provider.RAZORPAY, False)
    assert store.orders["inv_1"].provider is Provider.STRIPE


async def test_a_deployment_can_default_to_stripe(uow, store, providers):
    await invoices.register_issued(uow, invoice(), NOW, RULES, default_provider=Provider.STRIPE)
    assert store.orders["inv_1"].provider is Provider.STRIPE


async def test_a_choice_nothing_could_collect_through_is_refused_and_changes_nothing(uow, store, razorpay):
    only_razorpay = Providers(razorpay)
    with pytest.raises(FailedPrecondition, match="no Stripe keys"):
        await choices.set_choice(uow, only_razorpay, "org_s", Provider.STRIPE)
    for wrong in (Provider.OFFLINE, Provider.NONE):
        with pytest.raises(InvalidArgument, match="razorpay or stripe"):
            await choices.set_choice(uow, only_razorpay, "org_s", wrong)
    with pytest.raises(InvalidArgument):
        await choices.set_choice(uow, only_razorpay, "", Provider.RAZORPAY)
    assert store.choices == {}


# --- orders -----------------------------------------------------------------------------------------------------


async def test_a_payment_intent_per_invoice_for_one_customer_per_organisation(uow, store, providers, stripe):
    store.choices["org_s"] = Provider.STRIPE
    first = await stripe_order(uow, providers, "inv_1")
    second = await stripe_order(uow, providers, "inv_2")
    assert first.startswith("pi_") and second.startswith("pi_") and first != second
    [(customer, (organisation, name, email))] = stripe.customers.items()
    assert (organisation, name, email) == ("org_s", "Acme Inc", "billing@acme.example")
    assert store.customers == {(Provider.STRIPE, "org_s"): customer}
    assert stripe.orders[first].notes == {"invoice_id": "inv_1", "organisation_id": "org_s",
                                          "invoice_number": "INV/2627/inv_1", "customer": customer}
    assert stripe.calls.count("create_customer") == 1
    assert store.orders["inv_1"].status is OrderStatus.CREATED


async def test_a_lost_answer_retries_the_same_create_and_stripe_answers_the_first(uow, store, providers, stripe):
    store.choices["org_s"] = Provider.STRIPE
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    stripe.failures = [outage()]
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    assert store.orders["inv_1"].status is OrderStatus.PENDING
    await orders.create_due_orders(uow, providers, NOW + timedelta(seconds=3), BACKOFF)
    assert store.orders["inv_1"].status is OrderStatus.CREATED and len(stripe.orders) == 1


async def test_orders_of_an_unconfigured_provider_wait(uow, store, razorpay):
    store.choices["org_s"] = Provider.STRIPE
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    assert await orders.create_due_orders(uow, Providers(razorpay), NOW, BACKOFF) == 0
    assert store.orders["inv_1"].status is OrderStatus.PENDING and razorpay.calls == []


async def test_an_amount_stripe_cannot_take_is_left_payable_offline(uow, store, providers):
    store.choices["org_s"] = Provider.STRIPE
    await invoices.register_issued(uow, invoice(total=12345, currency="KWD"), NOW, RULES)
    order = store.orders["inv_1"]
    assert order.status is OrderStatus.NOT_NEEDED and "ending in 0" in order.status_reason


# --- webhooks ---------------------------------------------------------------------------------------------------


async def test_succeeded_settles_the_invoice_once_and_replays_change_nothing(uow, store, providers):
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    succeeded = event("payment_intent.succeeded", intent(pi, "succeeded"), "evt_1")
    assert (await webhooks.process(uow, succeeded, NOW, CAPTURE_AFTER)).startswith("applied")
    assert await webhooks.process(uow, succeeded, NOW, CAPTURE_AFTER) == "duplicate delivery"
    [payment] = store.payments.values()
    assert (payment.provider, payment.provider_payment_id, payment.status) == (Provider.STRIPE, pi,
                                                                               PaymentStatus.CAPTURED)
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED and store.orders["inv_1"].status is OrderStatus.PAID
    [(subject, event_id, message)] = store.published
    assert (subject, event_id) == (messages.PAYMENT_CAPTURED, f"payment.captured:{pi}")
    assert message.provider == messages.provider_to_pb(Provider.STRIPE) and message.amount_minor == 11800


async def test_a_decline_then_a_success_on_the_same_intent_pays_and_a_late_decline_does_not_unpay(uow, store,
                                                                                                   providers):
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    declined = intent(pi, "requires_payment_method", last_payment_error={"code": "card_declined",
                                                                         "message": "Your card was declined.",
                                                                         "decline_code": "insufficient_funds"})
    await webhooks.process(uow, event("payment_intent.payment_failed", declined, "evt_f1"), NOW, CAPTURE_AFTER)
    assert store.invoices["inv_1"].state is InvoiceState.OPEN
    [payment] = store.payments.values()
    assert (payment.status, payment.failed_at, payment.error_code, payment.error_reason) == (
        PaymentStatus.FAILED, NOW, "card_declined", "insufficient_funds")
    later = NOW + timedelta(minutes=2)
    await webhooks.process(uow, event("payment_intent.succeeded", intent(pi, "succeeded"), "evt_s"), later,
                           CAPTURE_AFTER)
    # The PaymentIntent is the payment: paid with another card, it is captured, and the first card's decline is
    # history (the webhook log and the payment.failed announced then), not its state.
    [payment] = store.payments.values()
    assert (payment.status, payment.captured_at, payment.failed_at) == (PaymentStatus.CAPTURED, later, None)
    assert (payment.error_code, payment.error_description, payment.error_reason) == ("", "", "")
    logged = store.webhooks[("stripe", "evt_f1")].outcome
    assert logged == f"applied: payment {pi} failed (card_declined, insufficient_funds)"
    failed = store.published[0][2]
    assert (failed.error_code, failed.error_description) == ("card_declined", "Your card was declined.")
    # A late decline neither moves it back nor sets the error again.
    outcome = await webhooks.process(uow, event("payment_intent.payment_failed", declined, "evt_f2"),
                                     later + timedelta(minutes=1), CAPTURE_AFTER)
    assert outcome.startswith("no change")
    [payment] = store.payments.values()
    assert (payment.status, payment.failed_at, payment.error_code) == (PaymentStatus.CAPTURED, None, "")
    assert [s for s, _, _ in store.published] == [messages.PAYMENT_FAILED, messages.PAYMENT_CAPTURED]


async def test_an_intent_that_is_not_ours_is_unmatched_and_other_events_are_ignored(uow, store, providers):
    stranger = intent("pi_elsewhere", "succeeded", metadata={})
    assert (await webhooks.process(uow, event("payment_intent.succeeded", stranger, "evt_x"), NOW,
                                   CAPTURE_AFTER)).startswith("unmatched")
    assert (await webhooks.process(uow, event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_y"),
                                   NOW, CAPTURE_AFTER)).startswith("ignored")
    assert (await webhooks.process(uow, webhooks.ReceivedWebhook("stripe", "evt_z", "x", b"{", NOW), NOW,
                                   CAPTURE_AFTER)).startswith("malformed")
    assert store.payments == {} and store.published == []


# --- refunds ----------------------------------------------------------------------------------------------------


async def test_a_refund_goes_to_stripe_and_its_events_finish_it_once(uow, store, providers, stripe):
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    await webhooks.process(uow, event("payment_intent.succeeded", intent(pi, "succeeded"), "evt_1"), NOW,
                           CAPTURE_AFTER)
    [payment] = store.payments.values()
    refund, created = await refunds.create_refund(uow, providers, refunds.CreateRefund(payment.id, 5000, "downtime",
                                                                                       "key-1"), NOW, BACKOFF)
    assert created and refund.status is RefundStatus.PENDING and stripe.calls[-1] == "create_refund"
    [made] = stripe.refunds.values()
    assert (made.payment_id, made.amount_minor, made.receipt) == (pi, 5000, "key-1")
    stripe_refund = {"id": made.id, "object": "refund", "amount": 5000, "currency": "usd", "payment_intent": pi,
                     "status": "succeeded", "metadata": {"refund_id": refund.id}}
    charge = {"id": "ch_1", "object": "charge", "currency": "usd", "payment_intent": pi,
              "refunds": {"object": "list", "data": [stripe_refund]}}
    assert (await webhooks.process(uow, event("charge.refunded", charge, "evt_r1"), NOW,
                                   CAPTURE_AFTER)).startswith("applied")
    assert (await webhooks.process(uow, event("refund.updated", stripe_refund, "evt_r2"), NOW,
                                   CAPTURE_AFTER)).startswith("no change")
    assert store.refunds[refund.id][0].status is RefundStatus.PROCESSED
    kinds = [s for s, _, _ in store.published]
    assert kinds == [messages.PAYMENT_CAPTURED, messages.REFUND_CREATED, messages.REFUND_PROCESSED]


async def test_a_refund_made_in_stripes_dashboard_is_recorded(uow, store, providers):
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    await webhooks.process(uow, event("payment_intent.succeeded", intent(pi, "succeeded"), "evt_1"), NOW,
                           CAPTURE_AFTER)
    dashboard = {"id": "re_dash", "object": "refund", "amount": 1800, "currency": "usd", "payment_intent": pi,
                 "status": "succeeded", "metadata": {}}
    assert (await webhooks.process(uow, event("refund.created", dashboard, "evt_d"), NOW,
                                   CAPTURE_AFTER)).startswith("applied")
    [(refund, _)] = store.refunds.values()
    assert (refund.provider_refund_id, refund.amount_minor, refund.reason) == ("re_dash", 1800, "made at the provider")


async def test_a_stripe_payment_cannot_be_refunded_without_stripe_keys(uow, store, providers, razorpay):
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    await webhooks.process(uow, event("payment_intent.succeeded", intent(pi, "succeeded"), "evt_1"), NOW,
                           CAPTURE_AFTER)
    [payment] = store.payments.values()
    with pytest.raises(FailedPrecondition, match="no Stripe keys"):
        await refunds.create_refund(uow, Providers(razorpay), refunds.CreateRefund(payment.id, 100, "r"), NOW, BACKOFF)
    assert store.refunds == {}


# --- checkout, links, dunning -----------------------------------------------------------------------------------


async def test_checkout_for_stripe_hands_over_the_publishable_key_and_the_client_secret(uow, store, providers):
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    found = await checkout.get_checkout(uow, providers, MERCHANT, "inv_1")
    assert (found.key_id, found.order.provider_order_id, found.client_secret, found.checkout_url) == (
        "pk_test_fake", pi, "pi_secret", "")
    with pytest.raises(FailedPrecondition, match="no Checkout callback"):
        await checkout.verify_checkout(uow, "secret", checkout.CheckoutCallback("inv_1", pi, "pay_1", "ab" * 32), NOW)


async def test_no_payment_link_for_a_stripe_invoice_and_dunning_attempts_go_without_one(uow, store, providers,
                                                                                        stripe):
    store.choices["org_s"] = Provider.STRIPE
    await invoices.register_issued(uow, invoice(due=date(2026, 12, 20)), NOW, RULES)
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    with pytest.raises(FailedPrecondition, match="no payment links"):
        await links.open_link(uow, providers, "inv_1", RULES.links, NOW)
    overdue = datetime(2026, 12, 20, 18, 30, tzinfo=UTC)
    await dunning.run_due(uow, providers, RULES, overdue, BACKOFF)
    await dunning.run_due(uow, providers, RULES, overdue + timedelta(days=1), BACKOFF)
    assert stripe.links == {} and "create_payment_link" not in stripe.calls
    [(_, _, overdue_notice), (_, _, attempt)] = store.published
    assert overdue_notice.invoice_id == "inv_1" and attempt.attempt_number == 1 and attempt.payment_link_url == ""
    assert store.dunning["inv_1"][0].state is DunningState.RETRYING


async def test_a_refund_reported_before_its_payment_waits_for_it_and_changes_nothing_meanwhile(uow, store, providers):
    # Stripe's refund events do not carry their payment (Razorpay's do): one that overtakes payment_intent.succeeded
    # is retried (the consumer naks it) rather than lost as unmatched.
    store.choices["org_s"] = Provider.STRIPE
    pi = await stripe_order(uow, providers)
    early = event("refund.created", {"id": "re_early", "object": "refund", "amount": 1000, "currency": "usd",
                                     "payment_intent": pi, "status": "succeeded"}, "evt_early")
    with pytest.raises(ReportTooEarly):
        await webhooks.process(uow, early, NOW, CAPTURE_AFTER)
    assert store.webhooks == {} and store.refunds == {} and store.published == []
    await webhooks.process(uow, event("payment_intent.succeeded", intent(pi, "succeeded"), "evt_1"), NOW,
                           CAPTURE_AFTER)
    assert (await webhooks.process(uow, early, NOW, CAPTURE_AFTER)).startswith("applied")
    assert [s for s, _, _ in store.published] == [messages.PAYMENT_CAPTURED, messages.REFUND_CREATED,
                                                  messages.REFUND_PROCESSED]
