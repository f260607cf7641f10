"""Webhooks to organisations' own endpoints, following the Standard Webhooks convention.

A delivery is one webhook message to one endpoint for one event, and exists at most once per (event id, endpoint
id). Its ``webhook-id`` is derived from the same pair, so every retry and every replay carries the same id and a
receiver deduplicates by it: unlike mail, a post whose fate is unknown (a timeout after the request went out) is
simply retried, because the convention makes receivers idempotent.

Signatures are ``v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`` with the endpoint's
secret (computed by the ``standardwebhooks`` package itself, so receivers using it agree byte for byte). During a
rotation's overlap the previous secret signs too and both signatures are sent, space-separated.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from standardwebhooks.webhooks import Webhook

from billing_runtime.errors import InvalidArgument
from services.notification.domain.messages import MessageKind

SECRET_PREFIX = "whsec_"
TEST_EVENT_TYPE = "webhook.test"

# The event types an endpoint can subscribe to, by the mail kind the same event makes.
EVENT_TYPES: dict[MessageKind, str] = {
    MessageKind.INVOICE_ISSUED: "invoice.issued",
    MessageKind.PAYMENT_RECEIPT: "invoice.paid",
    MessageKind.PAYMENT_FAILED: "payment.failed",
    MessageKind.PAYMENT_RETRY: "payment.retry_scheduled",
    MessageKind.INVOICE_OVERDUE: "invoice.overdue",
    MessageKind.REFUND_PROCESSED: "refund.processed",
    MessageKind.INVOICE_REMINDER: "invoice.reminder",
    MessageKind.ALERT_TRIGGERED: "alert.triggered",
}
SUBSCRIBABLE = frozenset(EVENT_TYPES.values())
MAX_ENDPOINTS_PER_ORGANISATION = 20
MAX_DESCRIPTION = 500


def check_event_types(types: list[str] | tuple[str, ...], field: str = "event_types") -> tuple[str, ...]:
    """Known types, deduplicated and sorted; empty means every type."""
    for n, name in enumerate(types):
        if name not in SUBSCRIBABLE:
            raise InvalidArgument(f"unknown event type {name!r}; known: {', '.join(sorted(SUBSCRIBABLE))}",
                                  field=f"{field}[{n}]")
    return tuple(sorted(set(types)))


def new_secret() -> str:
    # 24 random bytes, as Svix makes them: plenty for HMAC-SHA256, and a short enough string to paste.
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_id(event_id: str, endpoint_id: str) -> str:
    """The ``webhook-id`` of the message about an event to an endpoint: the same on every attempt and replay."""
    return "msg_" + hashlib.sha256(f"{event_id}|{endpoint_id}".encode()).hexdigest()[:32]


class EndpointState(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


class DisabledReason(enum.StrEnum):
    BY_USER = "disabled by a user"
    GONE = "gone: the endpoint answered 410"
    FAILING = "failing: a delivery ran out of attempts"


@dataclass(frozen=True)
class Endpoint:
    id: str
    organisation_id: str
    url: str
    secret: str
    event_types: tuple[str, ...] = ()
    description: str = ""
    state: EndpointState = EndpointState.ENABLED
    disabled_reason: str = ""
    previous_secret: str = ""
    previous_secret_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    disabled_at: datetime | None = None

    def __repr__(self) -> str:  # secrets stay out of logs and tracebacks
        return f"Endpoint(id={self.id!r}, organisation_id={self.organisation_id!r}, url={self.url!r})"

    @property
    def enabled(self) -> bool:
        return self.state is EndpointState.ENABLED

    def subscribed_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, then the previous one while its overlap lasts."""
        current = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            current.append(self.previous_secret)
        return current


def signature_header(secrets_: list[str], message_id: str, timestamp: datetime, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets_)


def signed_headers(endpoint: Endpoint, message_id: str, body: bytes, now: datetime) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(endpoint.signing_secrets(now), message_id, now, body),
        "content-type": "application/json",
    }


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class PostOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    # The endpoint answered 410 Gone: it asks not to be called again, so it is disabled.
    GONE = "gone"
    # Any other answer, a timeout, no connection, a refused address: try again on the schedule.
    FAILED = "failed"


def outcome_of_status(status: int) -> PostOutcome:
    if 200 <= status < 300:
        return PostOutcome.DELIVERED
    if status == 410:
        return PostOutcome.GONE
    return PostOutcome.FAILED


# Svix's schedule: the first attempt at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about a day in all).
SVIX_SCHEDULE_SECONDS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class WebhookSchedule:
    """The waits after each failed attempt; one attempt more than waits, then the delivery fails."""

    delays: tuple[timedelta, ...] = tuple(timedelta(seconds=s) for s in SVIX_SCHEDULE_SECONDS)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed ones; None when they are used up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delays[attempts - 1]


@dataclass(frozen=True)
class Delivery:
    """One webhook message to one endpoint for one event, and its attempt chain."""

    id: str
    event_id: str
    endpoint_id: str
    organisation_id: str
    event_type: str
    webhook_id: str
    # The JSON body exactly as posted on every attempt (the signature covers these bytes).
    payload: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_status_code: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    idempotency_key: str | None = None
    created_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: str
    number: int
    started_at: datetime
    ended_at: datetime | None = None
    status_code: int = 0
    response_body: str = ""
    duration_ms: int = 0
    error: str = ""
