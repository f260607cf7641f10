"""The REST shapes of webhook endpoints and their deliveries: an endpoint (its secret only in the answers that
make one), a delivery with its attempts, and the bodies that create, change and rotate an endpoint.

Which event types exist and what a URL may be is notification's rule (the types are strings in its contract): the
gateway passes them on, and names the field notification refuses. Delivery states are the protobuf enum's
lower-case names (``pending``, ``delivered``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool, field_validator

from billing.notification.v1 import notification_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

DELIVERY_STATES = EnumNames.of(notification_pb2.WebhookDeliveryState, "WEBHOOK_DELIVERY_STATE_")
DeliveryStateName = Literal["pending", "sending", "delivered", "failed"]

_EVENT_TYPES = ("invoice.issued, invoice.paid, payment.failed, payment.retry_scheduled, invoice.overdue, "
                "invoice.reminder, refund.processed, alert.triggered")
_URL = ("http(s); its host must resolve to public addresses only (unless the operator allows private ones), or "
        "400 names url")
_URL_EXAMPLE = ["https://hooks.acme.example/billing"]


class Endpoint(BaseModel):
    """An organisation's endpoint. Its signing secret is never part of it: it is shown once, by the answers of
    create and rotate-secret."""

    id: str
    organisation_id: str
    url: str
    event_types: list[str] = Field(description=f"What it receives, from {_EVENT_TYPES}; empty: all of them")
    description: str
    enabled: bool
    disabled_reason: str = Field(description='Why it is disabled: by a user, "gone" (it answered 410) or "failing" '
                                             "(a delivery ran out of attempts); empty while enabled")
    created_at: datetime | None
    updated_at: datetime | None
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until when the previous secret signs too (null when it no longer does)")

    @classmethod
    def fields_of(cls, endpoint: notification_pb2.WebhookEndpoint) -> dict:
        return dict(
            id=endpoint.id, organisation_id=endpoint.organisation_id, url=endpoint.url,
            event_types=list(endpoint.event_types), description=endpoint.description, enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason, created_at=from_timestamp(endpoint.create_time),
            updated_at=from_timestamp(endpoint.update_time), disabled_at=from_timestamp(endpoint.disable_time),
            previous_secret_expires_at=from_timestamp(endpoint.previous_secret_expire_time),
        )

    @classmethod
    def from_pb(cls, endpoint: notification_pb2.WebhookEndpoint) -> Endpoint:
        return cls(**cls.fields_of(endpoint))


class EndpointWithSecret(Endpoint):
    """The answer of create and rotate-secret: the only two that carry the secret."""

    secret: str = Field(description="whsec_ followed by base64: give it to the receiver now, it is not shown again",
                        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])

    @classmethod
    def from_reply(cls, endpoint: notification_pb2.WebhookEndpoint, secret: str) -> EndpointWithSecret:
        return cls(**Endpoint.fields_of(endpoint), secret=secret)


class EndpointCreate(Request):
    url: str = Field(description=_URL, examples=_URL_EXAMPLE)
    event_types: list[str] = Field([], description=f"From {_EVENT_TYPES}; empty or left out: all of them",
                                   examples=[["invoice.issued", "invoice.paid"]])
    description: str = Field("", description="At most 500 characters", examples=["ERP sync"])

    def to_pb(self, organisation_id: str) -> notification_pb2.CreateEndpointRequest:
        return notification_pb2.CreateEndpointRequest(organisation_id=organisation_id, url=self.url,
                                                      event_types=self.event_types, description=self.description)


class EndpointUpdate(Request):
    """Only the fields present change (a JSON merge patch without nulls): they make the update mask."""

    url: str | None = Field(None, description=_URL, examples=_URL_EXAMPLE)
    event_types: list[str] | None = Field(None, description=f"From {_EVENT_TYPES}; [] for all of them")
    description: str | None = None
    enabled: StrictBool | None = Field(None, description="true enables it again (clearing disabled_reason) after the "
                                                   "receiver was fixed; false stops its deliveries")

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Validators run only on fields the body has, so this refuses an explicit null, whose meaning ("empty"?
        # "unchanged"?) would be a guess.
        if value is None:
            raise ValueError("may not be null: leave the field out to keep it as it is")
        return value

    def to_pb(self, endpoint_id: str) -> notification_pb2.UpdateEndpointRequest:
        paths = sorted(self.model_fields_set)  # sorted: the same body always makes the same mask
        request = notification_pb2.UpdateEndpointRequest(endpoint=notification_pb2.WebhookEndpoint(
            id=endpoint_id, url=self.url or "", event_types=self.event_types or [],
            description=self.description or "", enabled=bool(self.enabled)))
        request.update_mask.paths.extend(paths)
        return request


class SecretRotation(Request):
    overlap_seconds: int | None = Field(
        None, description="How long the previous secret keeps signing alongside the new one (at most 7 days); "
                          "left out: the service's default (24 hours); 0: it stops at once (a leaked secret)",
        examples=[3600])


class Attempt(BaseModel):
    number: int
    started_at: datetime | None
    ended_at: datetime | None = Field(description="Null while the attempt is under way (or its sender died)")
    status_code: int = Field(description="The endpoint's HTTP status; 0 when no answer came (timeout, refused "
                                         "connection, an address refused before sending)")
    response_body: str = Field(description="The first bytes (at most 1 KiB) of the endpoint's answer")
    duration_ms: int
    error: str

    @classmethod
    def from_pb(cls, attempt: notification_pb2.WebhookAttempt) -> Attempt:
        return cls(number=attempt.number, started_at=from_timestamp(attempt.start_time),
                   ended_at=from_timestamp(attempt.end_time), status_code=attempt.status_code,
                   response_body=attempt.response_body,
                   duration_ms=attempt.duration.seconds * 1000 + attempt.duration.nanos // 1_000_000,
                   error=attempt.error)


class Delivery(BaseModel):
    """One webhook message about one event to one endpoint, with where its posting stands."""

    id: str
    endpoint_id: str
    organisation_id: str
    event_id: str = Field(description='The event it reports; "test:..." for a test, "replay:<delivery id>:<key>" '
                                      "for a replay")
    event_type: str = Field(examples=["invoice.paid"])
    webhook_id: str = Field(description="The webhook-id header: the same on every retry and replay, so the "
                                        "receiver deduplicates by it")
    state: DeliveryStateName | None = Field(
        description="pending: waiting for its first attempt or a retry (next_attempt_at); sending: being posted; "
                    "delivered: the endpoint answered 2xx; failed: out of attempts, 410 Gone, or the endpoint was "
                    "disabled or deleted meanwhile")
    attempts: int
    last_status_code: int
    last_error: str
    payload: str = Field(description="The JSON body exactly as posted")
    created_at: datetime | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def fields_of(cls, delivery: notification_pb2.WebhookDelivery) -> dict:
        return dict(
            id=delivery.id, endpoint_id=delivery.endpoint_id, organisation_id=delivery.organisation_id,
            event_id=delivery.event_id, event_type=delivery.event_type, webhook_id=delivery.webhook_id,
            state=DELIVERY_STATES.name(delivery.state), attempts=delivery.attempts,
            last_status_code=delivery.last_status_code, last_error=delivery.last_error, payload=delivery.payload,
            created_at=from_timestamp(delivery.create_time), delivered_at=from_timestamp(delivery.delivered_time),
            next_attempt_at=from_timestamp(delivery.next_attempt_time),
        )

    @classmethod
    def from_pb(cls, delivery: notification_pb2.WebhookDelivery) -> Delivery:
        return cls(**cls.fields_of(delivery))


class DeliveryWithAttempts(Delivery):
    delivery_attempts: list[Attempt] = Field(description="Every post of it, first first")

    @classmethod
    def from_reply(cls, reply: notification_pb2.GetDeliveryResponse) -> DeliveryWithAttempts:
        return cls(**Delivery.fields_of(reply.delivery),
                   delivery_attempts=[Attempt.from_pb(a) for a in reply.attempts])
