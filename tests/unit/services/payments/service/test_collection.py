"""Payments' use cases over in-memory fakes: issuing, orders, webhooks, checks, refunds, offline payments."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument
from billing_runtime.signatures import sign
from services.payments.adapters import messages
from services.payments.domain.dunning import DunningPolicy, DunningState
from services.payments.domain.entities import CreditNote, Invoice, InvoiceState, OrderStatus
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import Backoff
from services.payments.domain.razorpay_events import ProviderPayment
from services.payments.domain.refund import RefundStatus
from services.payments.service import checkout, checks, dunning, invoices, offline, orders, refunds, webhooks
from services.payments.service.ports import Providers
from tests.unit.services.payments.service import fakes
from tests.unit.services.payments.service.fakes import FakeProvider, Store, outage, rejection, unknown

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
BACKOFF = Backoff(timedelta(seconds=2), 2.0, timedelta(minutes=10))
CAPTURE_AFTER = timedelta(minutes=5)
RULES = dunning.DunningRules(DunningPolicy(max_attempts=2, retry_days=(1, 3)), "Asia/Kolkata")


def invoice(total: int = 241417, invoice_id: str = "inv_1", currency: str = "INR") -> Invoice:
    return Invoice(invoice_id, "org_1", f"INV/2627/{invoice_id[-5:]:0>5}", currency, total, InvoiceState.OPEN,
                   customer_email="billing@acme.example")


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


def subjects(store: Store) -> list[str]:
    return [subject for subject, _, _ in store.published]


async def issued_with_order(uow, provider, total: int = 241417, invoice_id: str = "inv_1") -> str:
    await invoices.register_issued(uow, invoice(total, invoice_id), NOW, RULES)
    await orders.create_due_orders(uow, Providers(provider), NOW, BACKOFF)
    async with uow() as unit:
        return (await unit.orders.get(invoice_id)).provider_order_id


def webhook(event: str, entity: dict, event_id: str, kind: str = "payment") -> webhooks.ReceivedWebhook:
    body = json.dumps({"entity": "event", "event": event, "contains": [kind],
                       "payload": {kind: {"entity": entity}}, "created_at": 1764928800}).encode()
    return webhooks.ReceivedWebhook("razorpay", event_id, event, body, NOW)


def payment_entity(order_id: str, status: str, payment_id: str = "pay_A", amount: int = 241417, **more) -> dict:
    return {"id": payment_id, "entity": "payment", "amount": amount, "currency": "INR", "status": status,
            "order_id": order_id, "captured": status == "captured", "method": "upi", "notes": [], **more}


# --- issuing --------------------------------------------------------------------------------------------------


async def test_an_issued_invoice_gets_one_pending_order_however_often_it_is_delivered(uow, store):
    assert await invoices.register_issued(uow, invoice(), NOW, RULES) is True
    assert await invoices.register_issued(uow, invoice(), NOW, RULES) is False
    assert store.orders["inv_1"].status is OrderStatus.PENDING and store.orders["inv_1"].receipt == "INV/2627/inv_1"
    assert store.published == []


async def test_a_zero_total_is_settled_without_an_order(uow, store):
    await invoices.register_issued(uow, invoice(0), NOW, RULES)
    assert store.orders["inv_1"].status is OrderStatus.NOT_NEEDED
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED
    [(subject, event_id, message)] = store.published
    assert subject == messages.PAYMENT_CAPTURED and message.amount_minor == 0 and message.provider == 3


async def test_below_the_provider_minimum_is_left_payable_offline(uow, store, provider):
    await invoices.register_issued(uow, invoice(99), NOW, RULES)
    assert store.orders["inv_1"].status is OrderStatus.NOT_NEEDED and "minimum" in store.orders["inv_1"].status_reason
    assert await orders.create_due_orders(uow, Providers(provider), NOW, BACKOFF) == 0 and store.published == []


# --- orders ---------------------------------------------------------------------------------------------------


async def test_an_order_is_made_with_the_invoice_number_as_receipt_and_our_ids_in_notes(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    made = provider.orders[order_id]
    assert (made.receipt, made.amount_minor, made.currency) == ("INV/2627/inv_1", 241417, "INR")
    assert made.notes["invoice_id"] == "inv_1" and made.notes["organisation_id"] == "org_1"
    assert store.orders["inv_1"].status is OrderStatus.CREATED


async def test_an_outage_is_retried_with_backoff_and_a_lost_answer_never_makes_a_second_order(uow, store, provider):
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    provider.failures = [outage()]
    await orders.create_due_orders(uow, Providers(provider), NOW, BACKOFF)
    order = store.orders["inv_1"]
    assert order.status is OrderStatus.PENDING and order.error.http_status == 503
    assert order.next_attempt_at == NOW + timedelta(seconds=2)
    assert await orders.create_due_orders(uow, Providers(provider),
                                          NOW + timedelta(seconds=1), BACKOFF) == 0  # not due yet
    # The provider made the order but the answer was lost:
    made = await provider.create_order(241417, "INR", "INV/2627/inv_1", {})
    await orders.create_due_orders(uow, Providers(provider), NOW + timedelta(seconds=3), BACKOFF)
    assert store.orders["inv_1"].provider_order_id == made.id and len(provider.orders) == 1
    assert provider.calls[-1] == "find_order"


async def test_after_a_call_that_timed_out_the_retry_waits_its_backoff_from_when_the_answer_was_given_up(
    uow, store, provider
):
    # The round began at NOW; the call gave up 10 s later. A retry counted from NOW would be due at once and look
    # the order up while the provider may still be making it.
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    provider.failures = [unknown()]
    gave_up = NOW + timedelta(seconds=10)
    await orders.create_due_orders(uow, Providers(provider), NOW, BACKOFF, clock=lambda: gave_up)
    assert store.orders["inv_1"].next_attempt_at == gave_up + timedelta(seconds=2)
    assert await orders.create_due_orders(uow, Providers(provider), gave_up + timedelta(seconds=1), BACKOFF) == 0


async def test_a_refused_order_is_failed_with_the_providers_reason(uow, store, provider):
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    provider.failures = [rejection("The amount must be atleast INR 1.00")]
    await orders.create_due_orders(uow, Providers(provider), NOW, BACKOFF)
    order = store.orders["inv_1"]
    assert order.status is OrderStatus.FAILED and "atleast INR 1.00" in order.status_reason
    assert order.error.field == "amount"


# --- webhooks -------------------------------------------------------------------------------------------------


async def test_a_payment_stored_by_a_concurrent_delivery_is_moved_not_shadowed(uow, store, provider, monkeypatch):
    # Two replicas take payment.authorized and payment.captured at once: both look the payment up and find
    # nothing; the authorized one stores it first. The captured one must move that row, not a copy of its own.
    order_id = await issued_with_order(uow, provider)
    await webhooks.process(uow, webhook("payment.authorized", payment_entity(order_id, "authorized"), "a"), NOW,
                           CAPTURE_AFTER)
    [stored] = store.payments.values()
    real = fakes.Payments.by_provider_id
    missed: list[bool] = []

    async def first_lookup_misses(self, provider_, provider_payment_id, *, lock=False):
        if not missed:
            missed.append(True)
            return None
        return await real(self, provider_, provider_payment_id, lock=lock)

    monkeypatch.setattr(fakes.Payments, "by_provider_id", first_lookup_misses)
    outcome = await webhooks.process(uow, webhook("payment.captured", payment_entity(order_id, "captured"), "c"),
                                     NOW, CAPTURE_AFTER)
    assert outcome.startswith("applied")
    assert list(store.payments) == [stored.id] and store.payments[stored.id].status is PaymentStatus.CAPTURED
    assert subjects(store) == [messages.PAYMENT_CAPTURED]




async def test_a_capture_is_announced_once_and_settles_the_invoice(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    hook = webhook("payment.captured", payment_entity(order_id, "captured"), "evt_1")
    assert (await webhooks.process(uow, hook, NOW, CAPTURE_AFTER)).startswith("applied")
    assert await webhooks.process(uow, hook, NOW, CAPTURE_AFTER) == "duplicate delivery"
    order_paid = webhook("order.paid", payment_entity(order_id, "captured"), "evt_2")
    assert (await webhooks.process(uow, order_paid, NOW, CAPTURE_AFTER)).startswith("no change")
    assert subjects(store) == [messages.PAYMENT_CAPTURED]
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED and store.orders["inv_1"].status is OrderStatus.PAID


async def test_failed_after_captured_does_not_unpay_and_captured_after_failed_pays(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    await webhooks.process(uow, webhook("payment.captured", payment_entity(order_id, "captured"), "e1"), NOW,
                           CAPTURE_AFTER)
    await webhooks.process(uow, webhook("payment.failed", payment_entity(order_id, "failed"), "e2"), NOW, CAPTURE_AFTER)
    assert subjects(store) == [messages.PAYMENT_CAPTURED]
    await webhooks.process(uow, webhook("payment.failed", payment_entity(order_id, "failed", "pay_B",
                                                                         error_code="BAD_REQUEST_ERROR"), "e3"),
                           NOW, CAPTURE_AFTER)
    await webhooks.process(uow, webhook("payment.captured", payment_entity(order_id, "captured", "pay_B"), "e4"),
                           NOW, CAPTURE_AFTER)
    assert subjects(store) == [messages.PAYMENT_CAPTURED, messages.PAYMENT_FAILED, messages.PAYMENT_CAPTURED]
    failed = store.published[1][2]
    assert failed.error_code == "BAD_REQUEST_ERROR" and failed.provider_payment_id == "pay_B"
    # Captured after its failure, pay_B carries no error: that was an earlier attempt's, announced then.
    paid = next(p for p in store.payments.values() if p.provider_payment_id == "pay_B")
    assert (paid.status, paid.failed_at, paid.error_code) == (PaymentStatus.CAPTURED, None, "")


async def test_an_authorisation_after_a_failure_clears_it_and_a_late_failure_does_not_set_it_again(uow, store,
                                                                                                  provider):
    order_id = await issued_with_order(uow, provider)
    failure = payment_entity(order_id, "failed", error_code="BAD_REQUEST_ERROR", error_description="Declined",
                             error_reason="payment_failed")
    await webhooks.process(uow, webhook("payment.failed", failure, "e1"), NOW, CAPTURE_AFTER)
    [payment] = store.payments.values()
    assert (payment.status, payment.failed_at, payment.error_reason) == (PaymentStatus.FAILED, NOW,
                                                                         "payment_failed")
    await webhooks.process(uow, webhook("payment.authorized", payment_entity(order_id, "authorized"), "e2"), NOW,
                           CAPTURE_AFTER)
    [payment] = store.payments.values()
    assert (payment.status, payment.failed_at, payment.error_code, payment.error_description,
            payment.error_reason) == (PaymentStatus.AUTHORIZED, None, "", "", "")
    outcome = await webhooks.process(uow, webhook("payment.failed", failure, "e3"), NOW, CAPTURE_AFTER)
    assert outcome.startswith("no change")
    [payment] = store.payments.values()
    assert (payment.status, payment.error_code) == (PaymentStatus.AUTHORIZED, "")


async def test_an_empty_currency_takes_the_orders_and_unknown_payments_are_logged_unmatched(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    await webhooks.process(uow, webhook("payment.authorized", payment_entity(order_id, "authorized", currency=""),
                                        "e1"), NOW, CAPTURE_AFTER)
    [payment] = store.payments.values()
    assert payment.currency == "INR" and payment.status is PaymentStatus.AUTHORIZED
    assert payment.check_due_at == NOW + CAPTURE_AFTER
    outcome = await webhooks.process(uow, webhook("payment.captured", payment_entity("order_other", "captured",
                                                                                     "pay_X"), "e2"), NOW,
                                     CAPTURE_AFTER)
    assert outcome.startswith("unmatched") and store.webhooks[("razorpay", "e2")].outcome == outcome


async def test_malformed_and_unknown_events_are_logged_and_change_nothing(uow, store):
    bad = webhooks.ReceivedWebhook("razorpay", "e1", "payment.captured", b"{not json", NOW)
    assert (await webhooks.process(uow, bad, NOW, CAPTURE_AFTER)).startswith("malformed")
    other = webhook("subscription.charged", {"id": "sub_1"}, "e2", kind="subscription")
    assert (await webhooks.process(uow, other, NOW, CAPTURE_AFTER)).startswith("ignored")
    assert store.published == [] and len(store.webhooks) == 2


async def test_an_authorized_payment_left_too_long_is_captured_through_the_api(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    provider.payments["pay_A"] = ProviderPayment("pay_A", order_id, 241417, "INR", "authorized", False, "card")
    await webhooks.process(uow, webhook("payment.authorized", payment_entity(order_id, "authorized"), "e1"), NOW,
                           CAPTURE_AFTER)
    assert await checks.check_due_payments(uow, Providers(provider), NOW, CAPTURE_AFTER, BACKOFF) == 0
    later = NOW + CAPTURE_AFTER
    provider.failures = [unknown()]  # the first fetch gets no answer: nothing is captured blindly
    await checks.check_due_payments(uow, Providers(provider), later, CAPTURE_AFTER, BACKOFF)
    assert provider.calls[-1] == "fetch_payment" and store.published == []
    await checks.check_due_payments(uow, Providers(provider), later + timedelta(minutes=5), CAPTURE_AFTER, BACKOFF)
    assert provider.calls[-2:] == ["fetch_payment", "capture_payment"]
    assert subjects(store) == [messages.PAYMENT_CAPTURED]
    assert await checks.check_due_payments(uow, Providers(provider),
                                           later + timedelta(days=1), CAPTURE_AFTER, BACKOFF) == 0


# --- checkout -------------------------------------------------------------------------------------------------


async def test_checkout_signature_is_checked_against_our_order(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    merchant = checkout.Merchant("Demo", "rzp_test_fake", "http://sandbox/checkout/{order_id}")
    found = await checkout.get_checkout(uow, Providers(provider), merchant, "inv_1")
    assert found.order.provider_order_id == order_id and found.checkout_url == f"http://sandbox/checkout/{order_id}"
    good = sign(f"{order_id}|pay_Z".encode(), "secret")
    with pytest.raises(InvalidArgument) as caught:
        await checkout.verify_checkout(uow, "secret", checkout.CheckoutCallback("inv_1", order_id, "pay_Z",
                                                                                _altered(good)), NOW)
    assert caught.value.field == "razorpay_signature" and store.payments == {}
    payment = await checkout.verify_checkout(uow, "secret", checkout.CheckoutCallback("inv_1", "", "pay_Z", good), NOW)
    assert payment.status is PaymentStatus.CREATED and payment.check_due_at == NOW and store.published == []


# --- refunds --------------------------------------------------------------------------------------------------


async def captured_payment(uow, provider, store) -> str:
    order_id = await issued_with_order(uow, provider)
    await webhooks.process(uow, webhook("payment.captured", payment_entity(order_id, "captured"), "cap"), NOW,
                           CAPTURE_AFTER)
    [payment] = store.payments.values()
    return payment.id


async def test_refunds_never_exceed_the_capture_and_repeat_by_key(uow, store, provider):
    payment_id = await captured_payment(uow, provider, store)
    first, created = await refunds.create_refund(uow, Providers(provider),
                                                 refunds.CreateRefund(payment_id, 100000, "goodwill", "k1"),
                                                 NOW, BACKOFF)
    assert created and first.status is RefundStatus.PENDING and first.provider_refund_id
    again, created = await refunds.create_refund(uow, Providers(provider),
                                                 refunds.CreateRefund(payment_id, 100000, "goodwill", "k1"),
                                                 NOW, BACKOFF)
    assert not created and again.id == first.id and len(provider.refunds) == 1
    with pytest.raises(Conflict):
        await refunds.create_refund(uow, Providers(provider),
                                    refunds.CreateRefund(payment_id, 5, "other", "k1"), NOW, BACKOFF)
    with pytest.raises(FailedPrecondition) as caught:
        await refunds.create_refund(uow, Providers(provider),
                                    refunds.CreateRefund(payment_id, 141418, "too much"), NOW, BACKOFF)
    assert "141417" in str(caught.value)
    rest, _ = await refunds.create_refund(uow, Providers(provider),
                                          refunds.CreateRefund(payment_id, 0, "the rest"), NOW, BACKOFF)
    assert rest.amount_minor == 141417
    assert subjects(store).count(messages.REFUND_CREATED) == 2


async def test_a_refund_sent_during_an_outage_is_resent_with_the_same_key_and_a_refusal_gives_the_money_back(
    uow, store, provider
):
    payment_id = await captured_payment(uow, provider, store)
    provider.failures = [outage()]
    refund, _ = await refunds.create_refund(uow, Providers(provider),
                                            refunds.CreateRefund(payment_id, 1000, "r", "k"), NOW,
                                            BACKOFF)
    assert refund.status is RefundStatus.REQUESTED and refund.error.http_status == 503
    await refunds.send_due_refunds(uow, Providers(provider), NOW + timedelta(minutes=1), BACKOFF)
    assert store.refunds[refund.id][0].status is RefundStatus.PENDING and len(provider.refunds) == 1
    provider.failures = [rejection("The refund amount provided is greater than amount captured")]
    refused, _ = await refunds.create_refund(uow, Providers(provider),
                                             refunds.CreateRefund(payment_id, 2000, "r2"), NOW, BACKOFF)
    assert refused.status is RefundStatus.FAILED and "greater than" in refused.error.description
    async with uow() as unit:
        assert (await unit.payments.get(payment_id)).refunded_minor == 1000


async def test_a_refund_that_timed_out_is_resent_its_backoff_after_the_answer_was_given_up(uow, store, provider):
    payment_id = await captured_payment(uow, provider, store)
    provider.failures = [unknown()]
    gave_up = NOW + timedelta(seconds=10)
    refund, _ = await refunds.create_refund(uow, Providers(provider),
                                            refunds.CreateRefund(payment_id, 500, "r", "k"), NOW,
                                            BACKOFF, clock=lambda: gave_up)
    assert refund.status is RefundStatus.REQUESTED
    assert store.refunds[refund.id][0].next_attempt_at == gave_up + timedelta(seconds=2)
    assert await refunds.send_due_refunds(uow, Providers(provider), gave_up + timedelta(seconds=1), BACKOFF) == 0


async def test_refund_webhooks_finish_a_refund_even_before_our_request_was_answered(uow, store, provider):
    payment_id = await captured_payment(uow, provider, store)
    provider.failures = [unknown()]
    refund, _ = await refunds.create_refund(uow, Providers(provider),
                                            refunds.CreateRefund(payment_id, 500, "r"), NOW, BACKOFF)
    entity = {"id": "rfnd_9", "entity": "refund", "amount": 500, "currency": "INR", "payment_id": "pay_A",
              "status": "processed", "notes": {"refund_id": refund.id}}
    await webhooks.process(uow, webhook("refund.processed", entity, "r1", kind="refund"), NOW, CAPTURE_AFTER)
    stored = store.refunds[refund.id][0]
    assert stored.status is RefundStatus.PROCESSED and stored.provider_refund_id == "rfnd_9"
    failed = {**entity, "status": "failed"}
    assert (await webhooks.process(uow, webhook("refund.failed", failed, "r2", kind="refund"), NOW,
                                   CAPTURE_AFTER)).startswith("no change")
    assert subjects(store)[-2:] == [messages.REFUND_CREATED, messages.REFUND_PROCESSED]


async def test_a_refund_made_in_the_providers_dashboard_is_recorded(uow, store, provider):
    await captured_payment(uow, provider, store)
    entity = {"id": "rfnd_D", "amount": 700, "currency": "INR", "payment_id": "pay_A", "status": "processed",
              "notes": []}
    await webhooks.process(uow, webhook("refund.processed", entity, "d1", kind="refund"), NOW, CAPTURE_AFTER)
    [(refund, _)] = store.refunds.values()
    assert refund.reason == "made at the provider" and refund.status is RefundStatus.PROCESSED


# --- offline --------------------------------------------------------------------------------------------------


async def test_an_offline_payment_is_recorded_once_per_reference(uow, store):
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    command = offline.OfflinePayment("inv_1", 100000, "INR", "bank_transfer", "UTR123")
    payment, created = await offline.record_offline_payment(uow, command, NOW)
    assert created and payment.provider is Provider.OFFLINE
    again, created = await offline.record_offline_payment(uow, command, NOW)
    assert not created and again.id == payment.id
    [(subject, _, message)] = store.published
    assert subject == messages.PAYMENT_CAPTURED and message.provider_payment_id == "UTR123"
    assert store.invoices["inv_1"].state is InvoiceState.OPEN  # partially paid: still collecting


@pytest.mark.parametrize(("changes", "field"), [
    ({"method": "upi"}, "method"), ({"reference": " "}, "reference"), ({"amount_minor": 0}, "amount_minor"),
    ({"currency": "rupees"}, "currency"), ({"received_at": NOW + timedelta(days=1)}, "receive_time"),
])
async def test_bad_offline_payments_name_the_field(uow, store, changes, field):
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    values = {"invoice_id": "inv_1", "amount_minor": 100, "currency": "INR", "method": "cheque", "reference": "1",
              **changes}
    with pytest.raises(InvalidArgument) as caught:
        await offline.record_offline_payment(uow, offline.OfflinePayment(**values), NOW)
    assert caught.value.field == field and store.payments == {}


async def test_a_refund_reported_before_its_payments_capture_still_finds_the_payment(uow, store, provider):
    order_id = await issued_with_order(uow, provider)
    refund = {"id": "rfnd_E", "amount": 300, "currency": "INR", "payment_id": "pay_A", "status": "processed",
              "notes": []}
    body = json.dumps({"event": "refund.processed", "payload": {
        "refund": {"entity": refund}, "payment": {"entity": payment_entity(order_id, "captured")}}}).encode()
    outcome = await webhooks.process(uow, webhooks.ReceivedWebhook("razorpay", "r1", "refund.processed", body, NOW),
                                     NOW, CAPTURE_AFTER)
    assert outcome.startswith("applied")
    assert subjects(store) == [messages.PAYMENT_CAPTURED, messages.REFUND_CREATED, messages.REFUND_PROCESSED]
    await webhooks.process(uow, webhook("payment.captured", payment_entity(order_id, "captured"), "c1"), NOW,
                           CAPTURE_AFTER)
    assert len(store.published) == 3


async def test_without_provider_keys_offline_payments_are_refunded_and_online_ones_refused(uow, store, provider):
    payment_id = await captured_payment(uow, provider, store)
    with pytest.raises(FailedPrecondition, match="not configured"):
        await refunds.create_refund(uow, Providers(), refunds.CreateRefund(payment_id, 100, "r"), NOW, BACKOFF)
    assert store.refunds == {}
    await invoices.register_issued(uow, invoice(5000, "inv_2"), NOW, RULES)
    cheque, _ = await offline.record_offline_payment(
        uow, offline.OfflinePayment("inv_2", 5000, "INR", "cheque", "CHQ-9"), NOW)
    refund, created = await refunds.create_refund(uow, Providers(),
                                                  refunds.CreateRefund(cheque.id, 0, "returned cheque"),
                                                  NOW, BACKOFF)
    assert created and refund.status is RefundStatus.PROCESSED and refund.amount_minor == 5000


def _altered(signature: str) -> str:
    """The signature with its last character changed (never the signature itself)."""
    return signature[:-1] + ("1" if signature.endswith("0") else "0")


# --- credit notes ---------------------------------------------------------------------------------------------


def note(number: str, applied: int, due: int, invoice_id: str = "inv_1") -> CreditNote:
    return CreditNote(f"cn_{number[-5:]}", invoice_id, number, applied, due)


async def test_an_invoice_credited_in_full_is_no_longer_collected(uow, store, provider):
    await invoices.register_issued(uow, replace(invoice(), due_date=date(2026, 12, 20)), NOW, RULES)
    await orders.create_due_orders(uow, Providers(provider), NOW, BACKOFF)
    assert store.dunning["inv_1"][0].state is not DunningState.STOPPED
    first = note("CN/2627/00001", 100, 241317)
    assert await invoices.credited(uow, first, NOW, RULES.links) is invoices.CreditOutcome.COLLECTING_LESS
    assert store.invoices["inv_1"].state is InvoiceState.OPEN
    whole = note("CN/2627/00002", 241317, 0)
    assert await invoices.credited(uow, whole, NOW, RULES.links) is invoices.CreditOutcome.CREDITED_IN_FULL
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED
    assert store.orders["inv_1"].status is OrderStatus.CANCELLED
    assert "CN/2627/00002" in store.orders["inv_1"].status_reason
    assert store.dunning["inv_1"][0].state is DunningState.STOPPED
    # Redelivered: nothing more.
    assert await invoices.credited(uow, whole, NOW, RULES.links) is invoices.CreditOutcome.DUPLICATE
    unknown = note("CN/2627/00003", 100, 0, invoice_id="inv_unknown")
    assert await invoices.credited(uow, unknown, NOW, RULES.links) is invoices.CreditOutcome.KEPT_FOR_INVOICE
