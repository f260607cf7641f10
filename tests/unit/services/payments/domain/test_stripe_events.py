"""Every Stripe body in the shared fixtures, read into the shapes payments acts on (or refused, or ignored, as
its kind deserves), and the variations localstripe and Stripe's newer API versions send."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from services.payments.domain import payment as payment_rules
from services.payments.domain import refund as refund_rules
from services.payments.domain.payment import PaymentStatus
from services.payments.domain.refund import RefundStatus
from services.payments.domain.reports import MalformedWebhook
from services.payments.domain.stripe_events import (
    order_from_intent,
    parse_event,
    payment_from_intent,
    refund_from_object,
)
from tests.shared_fixtures import STRIPE_FIXTURES

SUCCEEDED = STRIPE_FIXTURES / "event_payment_intent.succeeded__dj-stripe.json"
INVOICE_PAID = STRIPE_FIXTURES / "event_invoice.paid__gitpay.json"
PLAN_CREATED = STRIPE_FIXTURES / "openapi_fixtures3__event.json"
INTENT = STRIPE_FIXTURES / "openapi_fixtures3__payment_intent.json"
OBJECTS = [STRIPE_FIXTURES / f"openapi_fixtures3__{name}.json"
           for name in ("invoice", "price", "subscription_item", "billing.meter", "billing.meter_event")]


def _load(path: Path) -> dict:
    return json.loads(path.read_bytes())


def _event(event_type: str, data_object: dict, event_id: str = "evt_test_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "api_version": "2024-06-20", "created": 1767225600,
                       "data": {"object": data_object}, "livemode": False, "type": event_type}).encode()


def test_the_fixtures_are_there():
    assert all(p.exists() for p in (SUCCEEDED, INVOICE_PAID, PLAN_CREATED, INTENT, *OBJECTS)), STRIPE_FIXTURES


def test_payment_intent_succeeded_reads_as_a_captured_payment():
    event_id, event_type, notice = parse_event(SUCCEEDED.read_bytes())
    assert (event_id, event_type) == ("evt_1FG74XB7kbjcJ8Qq22i2BPdt", "payment_intent.succeeded")
    payment = notice.payment
    assert payment is not None
    assert (payment.id, payment.order_id) == ("pi_1FG742B7kbjcJ8QqGKF6qIM0", "pi_1FG742B7kbjcJ8QqGKF6qIM0")
    assert (payment.amount_minor, payment.currency, payment.status, payment.captured) == (190200, "USD",
                                                                                         "captured", True)
    assert payment.method == "card" and payment.email == "kyoung@hotmail.com"
    assert payment.notes == {"foo": "bar"} and payment.created_at is not None
    assert payment_rules.from_provider_status(payment.status, payment.captured) is PaymentStatus.CAPTURED


def test_a_stripe_invoice_paid_event_is_not_ours_to_act_on():
    # We collect with PaymentIntents, not Stripe-hosted invoices: invoice.paid is logged and ignored.
    event_id, event_type, notice = parse_event(INVOICE_PAID.read_bytes())
    assert (event_id, event_type) == ("evt_1Q2fklBrSjgsps2Dx0mEXsXv", "invoice.paid")
    assert notice.payment is None and notice.refunds == ()


def test_an_event_about_something_else_is_ignored():
    event_id, event_type, notice = parse_event(PLAN_CREATED.read_bytes())
    assert (event_id, event_type) == ("evt_1Pgc76B7WZ01zgkWwyRHS12y", "plan.created")
    assert notice.payment is None and notice.refunds == ()


def test_the_openapi_payment_intent_reads_as_a_failed_attempt_and_as_an_order():
    intent = _load(INTENT)
    payment = payment_from_intent(intent)
    # requires_payment_method with a last_payment_error: an attempt was made and failed.
    assert (payment.status, payment.captured, payment.amount_minor, payment.currency) == ("failed", False, 1099,
                                                                                          "USD")
    assert payment.error_code == "idempotency_error" and payment.method == "card"
    order = order_from_intent(intent)
    assert order.id == "pi_1PgafyB7WZ01zgkWSjxsAJo3" and order.client_secret.startswith(order.id + "_secret_")
    assert (order.amount_minor, order.amount_paid_minor) == (1099, 0)


@pytest.mark.parametrize(("status", "error", "ours"), [
    ("succeeded", None, PaymentStatus.CAPTURED),
    ("requires_capture", None, PaymentStatus.AUTHORIZED),
    ("requires_payment_method", {"code": "card_declined", "decline_code": "insufficient_funds",
                                 "message": "Your card has insufficient funds."}, PaymentStatus.FAILED),
    ("canceled", None, PaymentStatus.FAILED),
    ("requires_payment_method", None, PaymentStatus.CREATED),
    ("requires_confirmation", None, PaymentStatus.CREATED),
    ("requires_action", None, PaymentStatus.CREATED),
    ("processing", None, PaymentStatus.CREATED),
])
def test_every_payment_intent_status_has_its_place_in_the_state_machine(status, error, ours):
    intent = {**_load(INTENT), "status": status, "last_payment_error": error}
    payment = payment_from_intent(intent)
    assert payment_rules.from_provider_status(payment.status, payment.captured) is ours
    if error:
        assert (payment.error_code, payment.error_reason) == ("card_declined", "insufficient_funds")


def test_an_unknown_status_is_kept_and_not_applied():
    payment = payment_from_intent({**_load(INTENT), "status": "requires_source"})
    assert payment_rules.from_provider_status(payment.status, payment.captured) is None


def test_payment_failed_and_amount_capturable_events_carry_their_intent():
    intent = {**_load(INTENT), "metadata": {"invoice_id": "inv_1"}}
    _, _, failed = parse_event(_event("payment_intent.payment_failed", intent))
    assert failed.payment is not None and failed.payment.status == "failed"
    assert failed.payment.notes == {"invoice_id": "inv_1"}
    _, _, held = parse_event(_event("payment_intent.amount_capturable_updated",
                                    {**intent, "status": "requires_capture", "last_payment_error": None}))
    assert held.payment is not None and held.payment.status == "authorized"


def test_localstripe_shapes_read_too():
    # localstripe expands latest_charge and keeps the older charges list; its intents have no amount_received.
    charge = {"id": "ch_1", "object": "charge", "amount": 11800, "amount_refunded": 5000, "currency": "inr",
              "payment_intent": "pi_local1", "status": "succeeded", "captured": True,
              "refunds": {"object": "list", "data": [
                  {"id": "re_1", "object": "refund", "amount": 5000, "currency": "inr", "charge": "ch_1",
                   "payment_intent": None, "status": "succeeded", "metadata": {"refund_id": "rfd_1"},
                   "created": 1767225600}]}}
    intent = {"id": "pi_local1", "object": "payment_intent", "amount": 11800, "currency": "inr",
              "status": "succeeded", "latest_charge": charge, "charges": {"object": "list", "data": [charge]},
              "metadata": {"invoice_id": "inv_1"}, "last_payment_error": None, "created": 1767225600}
    payment = payment_from_intent(intent)
    assert (payment.amount_minor, payment.currency, payment.amount_refunded_minor) == (11800, "INR", 5000)
    _, _, refunded = parse_event(_event("charge.refunded", charge))
    [refund] = refunded.refunds
    # The refund names no PaymentIntent of its own: the charge's is used.
    assert (refund.id, refund.payment_id, refund.amount_minor, refund.status) == ("re_1", "pi_local1", 5000,
                                                                                 "processed")
    assert refund.notes == {"refund_id": "rfd_1"}


def test_charge_refunded_without_embedded_refunds_carries_none():
    # API versions since 2022-11-15 leave refunds out of the charge: refund.* events carry them instead.
    _, _, notice = parse_event(_event("charge.refunded", {"id": "ch_2", "object": "charge", "currency": "usd",
                                                          "payment_intent": "pi_2"}))
    assert notice.refunds == ()


def test_charge_refunded_with_several_refunds_carries_them_all():
    refunds = [{"id": f"re_{n}", "object": "refund", "amount": 100 * n, "currency": "usd", "status": "succeeded"}
               for n in (1, 2)]
    _, _, notice = parse_event(_event("charge.refunded", {"id": "ch_3", "object": "charge", "currency": "usd",
                                                          "payment_intent": "pi_3",
                                                          "refunds": {"object": "list", "data": refunds}}))
    assert [(r.id, r.payment_id, r.amount_minor) for r in notice.refunds] == [("re_1", "pi_3", 100),
                                                                              ("re_2", "pi_3", 200)]


@pytest.mark.parametrize(("status", "ours"), [("succeeded", RefundStatus.PROCESSED), ("pending", RefundStatus.PENDING),
                                              ("requires_action", RefundStatus.PENDING),
                                              ("failed", RefundStatus.FAILED), ("canceled", RefundStatus.FAILED)])
def test_refund_statuses(status, ours):
    refund = {"id": "re_9", "object": "refund", "amount": 2500, "currency": "usd", "payment_intent": "pi_9",
              "status": status, "metadata": {"refund_id": "rfd_9", "receipt": "rfd_9"}}
    for event_type in ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated"):
        _, _, notice = parse_event(_event(event_type, refund))
        assert notice.refund is not None and notice.refund.payment_id == "pi_9"
        assert refund_rules.from_provider_status(notice.refund.status) is ours
        assert notice.refund.receipt == "rfd_9"


@pytest.mark.parametrize(("currency", "stripes", "ours"), [("jpy", 5000, 5000), ("kwd", 12340, 12340),
                                                           ("isk", 50000, 500), ("mga", 1000, 100000)])
def test_amounts_come_back_in_iso_minor_units(currency, stripes, ours):
    payment = payment_from_intent({"id": "pi_x", "object": "payment_intent", "amount": stripes,
                                   "amount_received": stripes, "currency": currency, "status": "succeeded"})
    assert (payment.amount_minor, payment.currency) == (ours, currency.upper())
    refund = refund_from_object({"id": "re_x", "object": "refund", "amount": stripes, "currency": currency,
                                 "payment_intent": "pi_x", "status": "succeeded"})
    assert refund.amount_minor == ours


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.stem)
def test_other_stripe_objects_are_refused_where_a_payment_or_refund_belongs_and_ignored_elsewhere(path: Path):
    found = _load(path)
    with pytest.raises(MalformedWebhook, match="is not a payment_intent"):
        parse_event(_event("payment_intent.succeeded", found))
    with pytest.raises(MalformedWebhook, match="is not a refund"):
        parse_event(_event("refund.updated", found))
    _, event_type, notice = parse_event(_event(f"{found['object']}.created", found))
    assert notice.payment is None and notice.refunds == () and event_type.endswith(".created")


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'{"object": "list"}', b'{"object": "event", "type": "payment_intent.succeeded"}',
    b'{"object": "event", "id": "evt_1", "type": "payment_intent.succeeded", "data": {}}',
    b'{"object": "event", "id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": []}}',
])
def test_bodies_that_are_not_events_are_malformed(body: bytes):
    with pytest.raises(MalformedWebhook):
        parse_event(body)


@pytest.mark.parametrize("amount", [None, "12.5", -1, True, 10**16])
def test_a_payment_intent_without_a_whole_amount_is_malformed(amount):
    intent = copy.deepcopy(_load(INTENT))
    intent["amount"] = amount
    with pytest.raises(MalformedWebhook):
        payment_from_intent(intent)


def test_a_payment_intent_without_an_id_is_malformed():
    with pytest.raises(MalformedWebhook, match="no id"):
        payment_from_intent({**_load(INTENT), "id": ""})
