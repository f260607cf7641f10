"""A partial credit note lowers what payments collects, over in-memory fakes: the order remade for the amount due
(the old one kept, so a payment on it is still the invoice's), credit notes redelivered and reordered, a payment
captured or an order being made meanwhile, links cancelled and made again, a debit not sent yet, dunning, Stripe's
PaymentIntent cancelled."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from billing_runtime.errors import InvalidArgument
from billing_runtime.signatures import sign
from services.payments.adapters import messages
from services.payments.domain.dunning import DunningPolicy
from services.payments.domain.entities import Cancellation, CreditNote, Invoice, InvoiceState, OrderStatus
from services.payments.domain.mandate import DebitState
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import Backoff
from services.payments.service import autodebit, checkout, dunning, invoices, links, orders, webhooks
from services.payments.service.invoices import CreditOutcome
from services.payments.service.ports import Providers
from tests.unit.services.payments.service.fake_mandates import FakeRecurring
from tests.unit.services.payments.service.fakes import FakeProvider, Store, outage
from tests.unit.services.payments.service.test_autodebit import DEBITS, confirmed_mandate

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
OVERDUE = datetime(2026, 12, 20, 18, 30, tzinfo=UTC)  # the end of 20 Dec in Kolkata
BACKOFF = Backoff(timedelta(seconds=2), 2.0, timedelta(minutes=10))
CAPTURE_AFTER = timedelta(minutes=5)
RULES = dunning.DunningRules(DunningPolicy(max_attempts=2, retry_days=(1, 3)), "Asia/Kolkata")
TOTAL = 241417
NUMBER = "INV/2627/00001"


@pytest.fixture
def razorpay() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def stripe() -> FakeProvider:
    return FakeProvider(Provider.STRIPE)


def invoice(total: int = TOTAL, organisation_id: str = "org_1") -> Invoice:
    return Invoice("inv_1", organisation_id, NUMBER, "INR", total, InvoiceState.OPEN, due_date=date(2026, 12, 20),
                   customer_email="billing@acme.example")


def note(n: int, applied: int, due: int) -> CreditNote:
    return CreditNote(f"cn_{n}", "inv_1", f"CN/2627/{n:05}", applied, due)


async def issued(uow, providers: Providers, total: int = TOTAL) -> str:
    await invoices.register_issued(uow, invoice(total), NOW, RULES)
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    async with uow() as unit:
        return (await unit.orders.get("inv_1")).provider_order_id


async def credit(uow, credit_note: CreditNote, now: datetime = NOW) -> CreditOutcome:
    return await invoices.credited(uow, credit_note, now, RULES.links)


async def work(uow, providers: Providers, now: datetime = NOW) -> None:
    """One round of the provider work a credit note leaves: orders, superseded orders, links."""
    await orders.create_due_orders(uow, providers, now, BACKOFF)
    await orders.cancel_superseded(uow, providers, now, BACKOFF)
    await links.rework_due(uow, providers, RULES.links, now, BACKOFF)


def paid(order_id: str, amount: int, payment_id: str) -> webhooks.ReceivedWebhook:
    entity = {"id": payment_id, "entity": "payment", "amount": amount, "currency": "INR", "status": "captured",
              "order_id": order_id, "captured": True, "method": "upi", "notes": []}
    body = json.dumps({"entity": "event", "event": "payment.captured", "contains": ["payment"],
                       "payload": {"payment": {"entity": entity}}, "created_at": 1764928800}).encode()
    return webhooks.ReceivedWebhook("razorpay", f"evt_{payment_id}", "payment.captured", body, NOW)


def captures(store: Store) -> list[int]:
    return [m.amount_minor for s, _, m in store.published if s == messages.PAYMENT_CAPTURED]


# --- the order ------------------------------------------------------------------------------------------------


async def test_a_partial_credit_remakes_the_order_for_the_amount_due_and_the_new_one_settles_it(uow, store, razorpay):
    providers = Providers(razorpay)
    old = await issued(uow, providers)
    assert await credit(uow, note(1, 41417, 200000)) is CreditOutcome.COLLECTING_LESS
    order = store.orders["inv_1"]
    assert (order.status, order.amount_minor, order.revision, order.receipt, order.provider_order_id) == (
        OrderStatus.PENDING, 200000, 2, f"{NUMBER}#O2", "")
    [kept] = store.superseded.values()
    assert (kept.provider_order_id, kept.amount_minor, kept.receipt, kept.revision) == (old, TOTAL, NUMBER, 1)
    assert "CN/2627/00001" in kept.reason

    await work(uow, providers)
    order = store.orders["inv_1"]
    assert order.status is OrderStatus.CREATED and order.provider_order_id != old
    made = razorpay.orders[order.provider_order_id]
    assert (made.amount_minor, made.receipt, made.notes["invoice_id"]) == (200000, f"{NUMBER}#O2", "inv_1")
    # Razorpay's orders cannot be cancelled: the old one is only no longer offered.
    assert store.superseded[old].cancel_state is Cancellation.KEPT and "cancelling_order" not in razorpay.calls
    merchant = checkout.Merchant("Demo", "rzp_test_fake", "http://sandbox/checkout/{order_id}")
    found = await checkout.get_checkout(uow, providers, merchant, "inv_1")
    assert (found.order.provider_order_id, found.order.amount_minor) == (order.provider_order_id, 200000)

    assert (await webhooks.process(uow, paid(order.provider_order_id, 200000, "pay_new"), NOW,
                                   CAPTURE_AFTER)).startswith("applied")
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED and store.orders["inv_1"].status is OrderStatus.PAID
    assert captures(store) == [200000]


async def test_paying_the_old_order_instead_is_recorded_against_the_invoice_once(uow, store, razorpay):
    providers = Providers(razorpay)
    old = await issued(uow, providers)
    await credit(uow, note(1, 41417, 200000))
    await work(uow, providers)
    delivery = paid(old, TOTAL, "pay_old")
    assert (await webhooks.process(uow, delivery, NOW, CAPTURE_AFTER)).startswith("applied")
    assert await webhooks.process(uow, delivery, NOW, CAPTURE_AFTER) == "duplicate delivery"
    [payment] = store.payments.values()
    assert (payment.invoice_id, payment.provider_order_id, payment.amount_minor) == ("inv_1", old, TOTAL)
    # The whole original total was captured: announced as it is, for invoicing to put the 41417 over on review.
    assert captures(store) == [TOTAL]
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED and store.orders["inv_1"].status is OrderStatus.PAID


async def test_redelivered_and_reordered_credit_notes_never_move_the_amount_back_up(uow, store, razorpay):
    providers = Providers(razorpay)
    await issued(uow, providers)
    first, second = note(1, 1000, TOTAL - 1000), note(2, 2000, TOTAL - 3000)
    # The second arrives first: its amount due already counts the first, which then changes nothing.
    assert await credit(uow, second) is CreditOutcome.COLLECTING_LESS
    assert (store.orders["inv_1"].amount_minor, store.orders["inv_1"].revision) == (TOTAL - 3000, 2)
    await work(uow, providers)
    assert await credit(uow, first) is CreditOutcome.UNCHANGED
    assert await credit(uow, second) is CreditOutcome.DUPLICATE
    assert await credit(uow, first) is CreditOutcome.DUPLICATE
    order = store.orders["inv_1"]
    assert (order.status, order.amount_minor, order.revision) == (OrderStatus.CREATED, TOTAL - 3000, 2)
    assert (store.invoices["inv_1"].credited_minor, store.invoices["inv_1"].due_minor) == (3000, TOTAL - 3000)
    assert len(store.superseded) == 1 and len(razorpay.orders) == 2
    # A third lowers it again: a third order, both earlier ones kept.
    assert await credit(uow, note(3, 7000, TOTAL - 10000)) is CreditOutcome.COLLECTING_LESS
    await work(uow, providers)
    order = store.orders["inv_1"]
    assert (order.amount_minor, order.revision, order.receipt) == (TOTAL - 10000, 3, f"{NUMBER}#O3")
    assert sorted(o.revision for o in store.superseded.values()) == [1, 2]


async def test_a_partly_paid_invoice_collects_what_is_left_even_before_invoicing_counts_the_payment(uow, store,
                                                                                                  razorpay):
    providers = Providers(razorpay)
    order_id = await issued(uow, providers)
    link, _ = await links.open_link(uow, providers, "inv_1", RULES.links, NOW)
    assert (await webhooks.process(uow, replace(paid("", 41417, "pay_part"),
                                                body=_link_paid(link.provider_link_id, 41417)),
                                   NOW, CAPTURE_AFTER)).startswith("applied")
    assert store.invoices["inv_1"].due_minor == TOTAL - 41417 and store.links[link.id].status == links.PAID
    # Invoicing had not counted the 41417 when it issued the credit note: it reports 241417 - 100000 due.
    assert await credit(uow, note(1, 100000, TOTAL - 100000)) is CreditOutcome.COLLECTING_LESS
    assert store.orders["inv_1"].amount_minor == TOTAL - 100000 - 41417
    assert order_id in store.superseded
    assert list(store.links) == [link.id]  # the paid link is neither cancelled nor replaced
    # A later report that did count it agrees; a capture of what is left settles the invoice, nothing over.
    assert await credit(uow, note(2, 0, TOTAL - 100000 - 41417)) is CreditOutcome.UNCHANGED
    await work(uow, providers)
    new = store.orders["inv_1"].provider_order_id
    await webhooks.process(uow, paid(new, TOTAL - 141417, "pay_rest"), NOW, CAPTURE_AFTER)
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED
    assert sum(captures(store)) == TOTAL - 100000


def _link_paid(link_id: str, amount: int) -> bytes:
    payment = {"id": "pay_part", "entity": "payment", "amount": amount, "currency": "INR", "status": "captured",
               "order_id": "order_link", "captured": True, "method": "upi", "notes": []}
    return json.dumps({"entity": "event", "event": "payment_link.paid", "contains": ["payment_link", "payment"],
                       "payload": {"payment": {"entity": payment},
                                   "payment_link": {"entity": {"id": link_id, "entity": "payment_link",
                                                               "status": "paid"}}},
                       "created_at": 1764928800}).encode()


async def test_an_order_being_made_while_the_credit_note_arrives_is_superseded_when_its_answer_comes(
        uow, store, razorpay):
    providers = Providers(razorpay)
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    make = razorpay.create_order

    async def credited_meanwhile(*args, **kwargs):
        made = await make(*args, **kwargs)
        assert await credit(uow, note(1, 41417, 200000)) is CreditOutcome.COLLECTING_LESS
        return made

    razorpay.create_order = credited_meanwhile
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    razorpay.create_order = make
    [first] = razorpay.orders
    assert store.superseded[first].amount_minor == TOTAL
    order = store.orders["inv_1"]
    assert (order.status, order.amount_minor, order.revision, order.provider_order_id) == (
        OrderStatus.PENDING, 200000, 2, "")
    await work(uow, providers)
    assert store.orders["inv_1"].status is OrderStatus.CREATED
    assert razorpay.orders[store.orders["inv_1"].provider_order_id].amount_minor == 200000


async def test_an_order_not_tried_yet_just_takes_the_lower_amount(uow, store, razorpay):
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    assert await credit(uow, note(1, 41417, 200000)) is CreditOutcome.COLLECTING_LESS
    order = store.orders["inv_1"]
    assert (order.status, order.amount_minor, order.revision, order.receipt) == (
        OrderStatus.PENDING, 200000, 1, NUMBER)
    assert store.superseded == {}


async def test_an_amount_due_below_the_providers_minimum_is_left_payable_offline(uow, store, razorpay):
    providers = Providers(razorpay)
    old = await issued(uow, providers)
    assert await credit(uow, note(1, TOTAL - 50, 50)) is CreditOutcome.COLLECTING_LESS
    order = store.orders["inv_1"]
    assert (order.status, order.amount_minor) == (OrderStatus.NOT_NEEDED, 50) and "minimum" in order.status_reason
    assert old in store.superseded


async def test_a_credit_note_delivered_before_its_invoice_is_counted_when_the_invoice_is(uow, store, razorpay):
    assert await credit(uow, note(1, 41417, 200000)) is CreditOutcome.KEPT_FOR_INVOICE
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    assert store.orders["inv_1"].amount_minor == 200000 and store.invoices["inv_1"].due_minor == 200000
    assert await credit(uow, note(1, 41417, 200000)) is CreditOutcome.DUPLICATE


async def test_a_credit_in_full_delivered_before_its_invoice_leaves_nothing_to_collect(uow, store):
    await credit(uow, note(1, TOTAL, 0))
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED
    order = store.orders["inv_1"]
    assert order.status is OrderStatus.NOT_NEEDED and "CN/2627/00001" in order.status_reason
    assert store.dunning == {} and store.published == []


# --- the checkout callback of an old order ----------------------------------------------------------------------


async def test_a_checkout_callback_for_the_old_order_is_still_the_invoices_payment(uow, store, razorpay):
    providers = Providers(razorpay)
    old = await issued(uow, providers)
    await credit(uow, note(1, 41417, 200000))
    await work(uow, providers)
    new = store.orders["inv_1"].provider_order_id
    on_old = sign(f"{old}|pay_Old".encode(), "secret")
    payment = await checkout.verify_checkout(uow, "secret", checkout.CheckoutCallback("inv_1", old, "pay_Old",
                                                                                      on_old), NOW)
    assert (payment.provider_order_id, payment.amount_minor, payment.status) == (old, TOTAL, PaymentStatus.CREATED)
    # Without the order id, the signature itself says which order it was.
    on_new = sign(f"{new}|pay_New".encode(), "secret")
    payment = await checkout.verify_checkout(uow, "secret", checkout.CheckoutCallback("inv_1", "", "pay_New",
                                                                                      on_new), NOW)
    assert (payment.provider_order_id, payment.amount_minor) == (new, 200000)
    with pytest.raises(InvalidArgument) as caught:
        await checkout.verify_checkout(uow, "secret", checkout.CheckoutCallback("inv_1", "order_other", "pay_X",
                                                                                sign(b"order_other|pay_X", "secret")),
                                       NOW)
    assert caught.value.field == "razorpay_order_id"


# --- payment links, dunning, auto-debit ---------------------------------------------------------------------------


async def test_an_open_link_is_cancelled_at_the_provider_and_one_made_for_the_amount_due(uow, store, razorpay):
    providers = Providers(razorpay)
    await issued(uow, providers)
    old, _ = await links.open_link(uow, providers, "inv_1", RULES.links, NOW)
    await credit(uow, note(1, 41417, 200000))
    assert store.links[old.id].status == links.CANCELLING
    razorpay.failures = [outage()]  # the first cancel meets an outage: retried with backoff
    await links.rework_due(uow, providers, RULES.links, NOW, BACKOFF)
    assert store.links[old.id].status == links.CANCELLING
    await work(uow, providers, LATER)
    assert store.links[old.id].status == links.CANCELLED
    assert razorpay.links[old.provider_link_id][0].status == "cancelled"
    [new] = [link for link in store.links.values() if link.id != old.id]
    assert (new.reference_id, new.amount_minor, new.status, new.next_attempt_at) == (
        f"{NUMBER}#L2", 200000, links.OPEN, None)
    assert razorpay.links[new.provider_link_id][1].amount_minor == 200000
    # CreatePaymentLink hands out the new one.
    again, created = await links.open_link(uow, providers, "inv_1", RULES.links, LATER)
    assert (again.id, created) == (new.id, False)


async def test_without_an_open_link_none_is_made(uow, store, razorpay):
    providers = Providers(razorpay)
    await issued(uow, providers)
    await credit(uow, note(1, 41417, 200000))
    await work(uow, providers)
    assert store.links == {} and "create_payment_link" not in razorpay.calls


async def test_a_replacement_asked_for_before_the_worker_made_it_is_made_once(uow, store, razorpay):
    providers = Providers(razorpay)
    await issued(uow, providers)
    await links.open_link(uow, providers, "inv_1", RULES.links, NOW)
    await credit(uow, note(1, 41417, 200000))
    made, created = await links.open_link(uow, providers, "inv_1", RULES.links, NOW)
    assert created and made.reference_id == f"{NUMBER}#L2" and made.amount_minor == 200000
    await work(uow, providers)
    assert razorpay.calls.count("create_payment_link") == 2
    assert store.links[made.id].status == links.OPEN


async def test_dunning_names_the_amount_due_and_its_links_ask_for_it(uow, store, razorpay):
    providers = Providers(razorpay)
    await issued(uow, providers)
    await dunning.run_due(uow, providers, RULES, OVERDUE, BACKOFF)
    await dunning.run_due(uow, providers, RULES, OVERDUE + timedelta(days=1), BACKOFF)
    await credit(uow, note(1, 41417, 200000), OVERDUE + timedelta(days=1))
    await work(uow, providers, OVERDUE + timedelta(days=1))
    await dunning.run_due(uow, providers, RULES, OVERDUE + timedelta(days=3), BACKOFF)
    retries = [m for s, _, m in store.published if s == messages.PAYMENT_RETRY_SCHEDULED]
    assert [r.amount_due_minor for r in retries] == [TOTAL, 200000]
    by_reference = {link.reference_id: link for link in store.links.values()}
    assert by_reference[f"{NUMBER}#D1"].status == links.CANCELLED
    assert by_reference[f"{NUMBER}#D2"].amount_minor == 200000
    assert by_reference[f"{NUMBER}#L1"].amount_minor == 200000  # the D1 link's replacement


async def test_a_debit_not_sent_yet_charges_the_amount_due_and_one_sent_is_left_alone(uow, store):
    rzp = FakeRecurring()
    await confirmed_mandate(uow, rzp, "emandate")
    await invoices.register_issued(uow, replace(invoice(1_180_000), customer_name="Acme"), NOW, RULES, debits=DEBITS)
    assert store.debits["inv_1"].amount_minor == 1_180_000
    await credit(uow, note(1, 180_000, 1_000_000))
    assert store.debits["inv_1"].amount_minor == 1_000_000
    await autodebit.run_due(uow, rzp, rzp, DEBITS, store.debits["inv_1"].debit_at, BACKOFF)
    debit = store.debits["inv_1"]
    assert debit.state is DebitState.REQUESTED and rzp.orders[debit.provider_order_id].amount_minor == 1_000_000
    # Sent: a later credit note leaves it as it is (what it takes beyond the amount due is invoicing's to review).
    await credit(uow, note(2, 100_000, 900_000))
    assert store.debits["inv_1"].amount_minor == 1_000_000


# --- Stripe -------------------------------------------------------------------------------------------------------


def intent_event(event_type: str, intent_id: str, status: str, amount: int, event_id: str) -> webhooks.ReceivedWebhook:
    body = json.dumps({"id": event_id, "object": "event", "type": event_type, "created": 1764928800,
                       "data": {"object": {"id": intent_id, "object": "payment_intent", "amount": amount,
                                           "amount_received": amount if status == "succeeded" else 0,
                                           "currency": "inr", "status": status,
                                           "metadata": {"invoice_id": "inv_1"}}}}).encode()
    return webhooks.ReceivedWebhook("stripe", event_id, event_type, body, NOW)


async def test_stripe_cancels_the_old_payment_intent_and_its_cancellation_is_no_failed_payment(uow, store, stripe):
    providers = Providers(stripe, default=Provider.STRIPE)
    store.choices["org_1"] = Provider.STRIPE
    old = await issued(uow, providers)
    await credit(uow, note(1, 41417, 200000))
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    stripe.failures = [outage()]  # the first cancel meets an outage: retried with backoff
    await orders.cancel_superseded(uow, providers, NOW, BACKOFF)
    assert store.superseded[old].cancel_state is Cancellation.PENDING and store.superseded[old].error is not None
    new = store.orders["inv_1"].provider_order_id
    assert new and stripe.orders[new].amount_minor == 200000 and stripe.orders[new].receipt == f"{NUMBER}#O2"
    await work(uow, providers, LATER)
    assert store.superseded[old].cancel_state is Cancellation.CANCELLED and stripe.orders[old].cancelled
    outcome = await webhooks.process(uow, intent_event("payment_intent.canceled", old, "canceled", TOTAL, "evt_c"),
                                     NOW, CAPTURE_AFTER)
    assert outcome.startswith("ignored") and store.payments == {} and store.published == []
    await webhooks.process(uow, intent_event("payment_intent.succeeded", new, "succeeded", 200000, "evt_s"), NOW,
                           CAPTURE_AFTER)
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED and captures(store) == [200000]


async def test_stripe_leaves_an_old_payment_intent_that_was_paid_first_and_records_its_payment(uow, store, stripe):
    providers = Providers(stripe, default=Provider.STRIPE)
    store.choices["org_1"] = Provider.STRIPE
    old = await issued(uow, providers)
    await credit(uow, note(1, 41417, 200000))
    stripe.orders[old] = replace(stripe.orders[old], status="succeeded")  # paid while the credit note arrived
    await work(uow, providers)
    kept = store.superseded[old]
    assert kept.cancel_state is Cancellation.KEPT and "succeeded" in kept.cancel_reason
    await webhooks.process(uow, intent_event("payment_intent.succeeded", old, "succeeded", TOTAL, "evt_s"), NOW,
                           CAPTURE_AFTER)
    [payment] = store.payments.values()
    assert (payment.invoice_id, payment.amount_minor) == ("inv_1", TOTAL) and captures(store) == [TOTAL]
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED


# --- no longer collected: voided, or credited in full -----------------------------------------------------------


async def test_a_void_cancels_the_stripe_payment_intent_and_its_cancellation_is_no_failed_payment(uow, store, stripe):
    providers = Providers(stripe, default=Provider.STRIPE)
    store.choices["org_1"] = Provider.STRIPE
    old = await issued(uow, providers)
    assert await invoices.void(uow, "inv_1", NOW)
    order = store.orders["inv_1"]
    assert (order.status, order.provider_order_id) == (OrderStatus.CANCELLED, old)
    await work(uow, providers)
    assert store.superseded[old].cancel_state is Cancellation.CANCELLED and stripe.orders[old].cancelled
    outcome = await webhooks.process(uow, intent_event("payment_intent.canceled", old, "canceled", TOTAL, "evt_v"),
                                     NOW, CAPTURE_AFTER)
    assert outcome.startswith("ignored") and store.payments == {}
    # Redelivered: the same.
    assert await invoices.void(uow, "inv_1", NOW)
    assert len(store.superseded) == 1


async def test_a_credit_in_full_cancels_open_links_and_makes_none(uow, store, razorpay):
    providers = Providers(razorpay)
    await issued(uow, providers)
    link, _ = await links.open_link(uow, providers, "inv_1", RULES.links, NOW)
    assert await credit(uow, note(1, TOTAL, 0)) is CreditOutcome.CREDITED_IN_FULL
    await work(uow, providers)
    assert [(li.id, li.status) for li in store.links.values()] == [(link.id, links.CANCELLED)]
    assert razorpay.links[link.provider_link_id][0].status == "cancelled"


async def test_a_payment_on_a_voided_invoices_order_is_still_the_invoices(uow, store, razorpay):
    providers = Providers(razorpay)
    old = await issued(uow, providers)
    assert await invoices.void(uow, "inv_1", NOW)
    await work(uow, providers)
    assert store.superseded[old].cancel_state is Cancellation.KEPT  # Razorpay orders cannot be cancelled
    await webhooks.process(uow, paid(old, TOTAL, "pay_late"), NOW, CAPTURE_AFTER)
    [payment] = store.payments.values()
    assert (payment.invoice_id, payment.amount_minor) == ("inv_1", TOTAL)


async def test_an_order_being_made_while_its_invoice_is_voided_is_kept_and_cancelled(uow, store, stripe):
    providers = Providers(stripe, default=Provider.STRIPE)
    store.choices["org_1"] = Provider.STRIPE
    await invoices.register_issued(uow, invoice(), NOW, RULES)
    make = stripe.create_order

    async def voided_meanwhile(*args, **kwargs):
        made = await make(*args, **kwargs)
        assert await invoices.void(uow, "inv_1", NOW)
        return made

    stripe.create_order = voided_meanwhile
    await orders.create_due_orders(uow, providers, NOW, BACKOFF)
    stripe.create_order = make
    [made] = stripe.orders
    assert store.orders["inv_1"].status is OrderStatus.CANCELLED and store.orders["inv_1"].provider_order_id == ""
    await work(uow, providers)
    assert store.superseded[made].cancel_state is Cancellation.CANCELLED and stripe.orders[made].cancelled
