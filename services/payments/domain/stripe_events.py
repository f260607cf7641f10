"""Stripe's events and API objects, read into the shapes every provider shares (:mod:`.reports`).

We collect an invoice through one **PaymentIntent** (not a Stripe-hosted invoice: our invoices, numbering and GST
stay ours, and Stripe only moves the money). The PaymentIntent is both the invoice's "order" and its payment:
its id is kept as the order's and the payment's provider id, and every attempt on it (a decline, then a success)
moves that one payment forward. Its statuses are read into our words:

=========================================================  ============
Stripe PaymentIntent status                                 ours
=========================================================  ============
``succeeded``                                               captured
``requires_capture`` (authorized, manual capture)           authorized
``requires_payment_method`` after an attempt (an error)     failed
``canceled``                                                failed
``requires_payment_method`` (no attempt yet), ``requires_   created
confirmation``, ``requires_action``, ``processing``
=========================================================  ============

Refunds: ``succeeded`` -> processed, ``pending`` / ``requires_action`` -> pending, ``failed`` / ``canceled`` ->
failed. Amounts come back from Stripe's units to ISO minor units (:mod:`.stripe_money`); currencies are upper-cased.

Events acted on: ``payment_intent.succeeded``, ``payment_intent.payment_failed``,
``payment_intent.amount_capturable_updated``, ``payment_intent.canceled`` (data.object a PaymentIntent);
``refund.created``, ``refund.updated``, ``refund.failed``, ``charge.refund.updated`` (data.object a Refund); and
``charge.refunded`` (data.object a Charge, whose embedded ``refunds.data`` are read when present: API versions
since 2022-11-15 leave them out, and ``refund.*`` carries them instead). Anything else is logged and ignored.
"""

from __future__ import annotations

import json
from typing import Any

from services.payments.domain import stripe_money
from services.payments.domain.reports import (
    MalformedWebhook,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    WebhookNotice,
    read_amount,
    read_text,
    read_time,
)

PAYMENT_INTENT_CANCELED = "payment_intent.canceled"
PAYMENT_INTENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed",
                         "payment_intent.amount_capturable_updated", PAYMENT_INTENT_CANCELED)
REFUND_EVENTS = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
CHARGE_REFUNDED = "charge.refunded"

_REFUND_STATUSES = {"succeeded": "processed", "pending": "pending", "requires_action": "pending",
                    "failed": "failed", "canceled": "failed"}


def parse_event(body: bytes) -> tuple[str, str, WebhookNotice]:
    """(event id, event type, notice) of one Stripe event body."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWebhook("the body is not JSON") from None
    if not isinstance(document, dict) or document.get("object") != "event":
        raise MalformedWebhook("the body is not a Stripe event")
    event_id, event = read_text(document.get("id"), 255), read_text(document.get("type"), 100)
    if not event_id or not event:
        raise MalformedWebhook("the event has no id or no type")
    data = document.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise MalformedWebhook("the event carries no data.object")
    created = read_time(document.get("created"))
    if event in PAYMENT_INTENT_EVENTS:
        return event_id, event, WebhookNotice(event, payment=_kind(found, "payment_intent", payment_from_intent),
                                              created_at=created)
    if event in REFUND_EVENTS:
        return event_id, event, WebhookNotice(event, refund=_kind(found, "refund", refund_from_object),
                                              created_at=created)
    if event == CHARGE_REFUNDED:
        refunds = tuple(_kind(found, "charge", refunds_of_charge))
        return event_id, event, WebhookNotice(event, refund=refunds[0] if refunds else None,
                                              more_refunds=refunds[1:], created_at=created)
    return event_id, event, WebhookNotice(event, created_at=created)


def _kind(found: dict[str, Any], kind: str, read):  # noqa: ANN001, ANN202 - one of the readers below
    if found.get("object") != kind:
        raise MalformedWebhook(f"the event's data.object is not a {kind}")
    return read(found)


def _required_id(entity: dict[str, Any], name: str) -> str:
    value = read_text(entity.get("id"))
    if not value:
        raise MalformedWebhook(f"the {name} has no id")
    return value


def _currency(entity: dict[str, Any]) -> str | None:
    return read_text(entity.get("currency")).upper() or None


def _amount(entity: dict[str, Any], key: str, currency: str | None, what: str, required: bool = True) -> int:
    """Stripe's amount in ISO minor units of ``currency`` (an optional one missing is 0)."""
    value = entity.get(key)
    amount = read_amount(0 if value is None and not required else value, what)
    if currency is None or amount == 0:
        return amount
    try:
        return stripe_money.from_stripe(amount, currency)
    except stripe_money.NotConvertible as error:
        raise MalformedWebhook(f"the {what}: {error}") from None


def _status(intent: dict[str, Any]) -> tuple[str, bool]:
    """(status in our words, captured) of a PaymentIntent."""
    status = read_text(intent.get("status"))
    if status == "succeeded":
        return "captured", True
    if status == "requires_capture":
        return "authorized", False
    if status == "canceled":
        return "failed", False
    if status == "requires_payment_method" and isinstance(intent.get("last_payment_error"), dict):
        return "failed", False
    if status in ("requires_payment_method", "requires_confirmation", "requires_action", "processing"):
        return "created", False
    return status, False  # a status we do not know: kept as Stripe said it, and not applied


def _latest_charge(intent: dict[str, Any]) -> dict[str, Any]:
    """The PaymentIntent's latest charge when it is in the body (expanded, or the older ``charges`` list)."""
    latest = intent.get("latest_charge")
    if isinstance(latest, dict):
        return latest
    charges = intent.get("charges")
    listed = charges.get("data") if isinstance(charges, dict) else None
    if isinstance(listed, list) and listed and isinstance(listed[-1], dict):
        return listed[-1]
    return {}


def payment_from_intent(intent: dict[str, Any]) -> ProviderPayment:
    """A PaymentIntent as a payment (its id is also the order's id: one PaymentIntent per invoice)."""
    intent_id = _required_id(intent, "payment intent")
    currency = _currency(intent)
    status, captured = _status(intent)
    charge = _latest_charge(intent)
    amount_key = "amount_received" if captured and intent.get("amount_received") else "amount"
    details = charge.get("payment_method_details")
    method = read_text(details.get("type")) if isinstance(details, dict) else ""
    types = intent.get("payment_method_types")
    if not method and isinstance(types, list) and len(types) == 1:
        method = read_text(types[0])
    billing = charge.get("billing_details")
    error = intent.get("last_payment_error") if status == "failed" else None
    error = error if isinstance(error, dict) else {}
    return ProviderPayment(
        id=intent_id,
        order_id=intent_id,
        amount_minor=_amount(intent, amount_key, currency, "payment intent amount"),
        currency=currency,
        status=status,
        captured=captured,
        method=method,
        email=read_text(intent.get("receipt_email")) or (read_text(billing.get("email"))
                                                         if isinstance(billing, dict) else ""),
        amount_refunded_minor=_amount(charge, "amount_refunded", currency, "amount_refunded", required=False),
        error_code=read_text(error.get("code")) or read_text(error.get("type")),
        error_description=read_text(error.get("message")),
        error_reason=read_text(error.get("decline_code")),
        created_at=read_time(intent.get("created")),
        notes=_metadata(intent.get("metadata")),
    )


def order_from_intent(intent: dict[str, Any]) -> ProviderOrder:
    """A PaymentIntent as the invoice's order."""
    payment = payment_from_intent(intent)
    return ProviderOrder(
        id=payment.id, amount_minor=_amount(intent, "amount", payment.currency, "payment intent amount"),
        amount_paid_minor=payment.amount_minor if payment.captured else 0, currency=payment.currency,
        receipt=payment.notes.get("invoice_number", ""), status=read_text(intent.get("status")),
        notes=payment.notes, created_at=payment.created_at, client_secret=read_text(intent.get("client_secret"), 500),
        cancelled=intent.get("status") == "canceled",
    )


def refund_from_object(refund: dict[str, Any], payment_intent: str = "") -> ProviderRefund:
    currency = _currency(refund)
    notes = _metadata(refund.get("metadata"))
    intent = refund.get("payment_intent")
    intent_id = read_text(intent.get("id")) if isinstance(intent, dict) else read_text(intent)
    status = read_text(refund.get("status"))
    return ProviderRefund(
        id=_required_id(refund, "refund"),
        payment_id=intent_id or payment_intent,
        amount_minor=_amount(refund, "amount", currency, "refund amount"),
        currency=currency,
        status=_REFUND_STATUSES.get(status, status),
        created_at=read_time(refund.get("created")),
        notes=notes,
        receipt=notes.get("receipt", ""),
    )


def refunds_of_charge(charge: dict[str, Any]) -> list[ProviderRefund]:
    """The refunds a Charge carries (``refunds.data``), each tied to the charge's PaymentIntent."""
    intent = charge.get("payment_intent")
    intent_id = read_text(intent.get("id")) if isinstance(intent, dict) else read_text(intent)
    listed = charge.get("refunds")
    items = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        return []
    return [refund_from_object(item, intent_id) for item in items[:100] if isinstance(item, dict)]


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k)[:40]: read_text(v, 500) for k, v in list(value.items())[:50]}
