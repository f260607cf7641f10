"""Razorpay's webhook bodies and API entities, read tolerantly into typed values.

Razorpay's own samples carry quirks a strict parser would choke on: empty strings for a currency, email or
contact, numbers sent as strings (``"captured": "1"``, ``"amount": "50000"``), ``notes`` as an empty list
instead of an object, nulls for most optional fields. We read what we need, normalise those, and refuse only
what makes a body unusable (no event name, a payment without an id or an amount): that is a
:class:`MalformedWebhook`, which is recorded and acknowledged, never retried for ever.
"""

from __future__ import annotations

import json
from typing import Any

from services.payments.domain.reports import (
    LinkRequest,
    MalformedWebhook,
    ProviderLink,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    WebhookNotice,
)
from services.payments.domain.reports import read_amount as _amount
from services.payments.domain.reports import read_flag as _flag
from services.payments.domain.reports import read_notes as _notes
from services.payments.domain.reports import read_text as _text
from services.payments.domain.reports import read_time as _time

# The shapes live in reports (one for every provider); they are named here too, where Razorpay's code finds them.
__all__ = ["LinkRequest", "MalformedWebhook", "ProviderLink", "ProviderOrder", "ProviderPayment", "ProviderRefund",
           "WebhookNotice", "event_type", "parse_webhook"]


def parse_webhook(body: bytes) -> WebhookNotice:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWebhook("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedWebhook("the body is not a JSON object")
    event = document.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedWebhook("the body names no event")
    payload = document.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    return WebhookNotice(
        event=event[:100],
        payment=_entity(payload, "payment", payment_from_entity),
        refund=_entity(payload, "refund", refund_from_entity),
        order=_entity(payload, "order", order_from_entity),
        link=_entity(payload, "payment_link", link_from_entity),
        created_at=_time(document.get("created_at")),
    )


def event_type(body: bytes) -> str:
    """The event a body names ('' if none), for logs and routing before the full parse."""
    try:
        return parse_webhook(body).event
    except MalformedWebhook:
        return ""


def payment_from_entity(entity: dict[str, Any]) -> ProviderPayment:
    return ProviderPayment(
        id=_required_id(entity, "payment"),
        order_id=_text(entity.get("order_id")),
        amount_minor=_amount(entity.get("amount"), "payment amount"),
        currency=_text(entity.get("currency")) or None,
        status=_text(entity.get("status")),
        captured=_flag(entity.get("captured")),
        method=_text(entity.get("method")),
        email=_text(entity.get("email")),
        contact=_text(entity.get("contact")),
        amount_refunded_minor=_amount(entity.get("amount_refunded") or 0, "amount_refunded"),
        error_code=_text(entity.get("error_code")),
        error_description=_text(entity.get("error_description")),
        error_reason=_text(entity.get("error_reason")),
        created_at=_time(entity.get("created_at")),
        notes=_notes(entity.get("notes")),
    )


def refund_from_entity(entity: dict[str, Any]) -> ProviderRefund:
    return ProviderRefund(
        id=_required_id(entity, "refund"),
        payment_id=_text(entity.get("payment_id")),
        amount_minor=_amount(entity.get("amount"), "refund amount"),
        currency=_text(entity.get("currency")) or None,
        status=_text(entity.get("status")),
        created_at=_time(entity.get("created_at")),
        notes=_notes(entity.get("notes")),
        receipt=_text(entity.get("receipt")),
    )


def order_from_entity(entity: dict[str, Any]) -> ProviderOrder:
    return ProviderOrder(
        id=_required_id(entity, "order"),
        amount_minor=_amount(entity.get("amount"), "order amount"),
        amount_paid_minor=_amount(entity.get("amount_paid") or 0, "amount_paid"),
        currency=_text(entity.get("currency")) or None,
        receipt=_text(entity.get("receipt")),
        status=_text(entity.get("status")),
        notes=_notes(entity.get("notes")),
        created_at=_time(entity.get("created_at")),
    )


def link_from_entity(entity: dict[str, Any]) -> ProviderLink:
    return ProviderLink(id=_required_id(entity, "payment link"), short_url=_text(entity.get("short_url"), 500),
                        status=_text(entity.get("status")), reference_id=_text(entity.get("reference_id")))


def _entity(payload: dict[str, Any], name: str, read):  # noqa: ANN001, ANN202 - one of the readers above
    wrapper = payload.get(name)
    if not isinstance(wrapper, dict):
        return None
    entity = wrapper.get("entity")
    if not isinstance(entity, dict):
        raise MalformedWebhook(f"the {name} in the payload has no entity")
    return read(entity)


def _required_id(entity: dict[str, Any], name: str) -> str:
    value = _text(entity.get("id"))
    if not value:
        raise MalformedWebhook(f"the {name} has no id")
    return value
