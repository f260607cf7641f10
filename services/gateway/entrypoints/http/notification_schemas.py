"""The REST shapes of email messages: a message as recorded (with its delivery attempts), its preview as it
would be sent, and an organisation's recipient settings.

Kinds and states are the protobuf enums' lower-case names (``invoice_issued``, ``queued``). Which kinds an
organisation may opt out of, and what an address may look like, is notification's rule: the gateway only checks
that a kind is one of the names, and names the field notification refuses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.notification.v1 import notification_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

MESSAGE_KINDS = EnumNames.of(notification_pb2.MessageKind, "MESSAGE_KIND_")
MESSAGE_STATES = EnumNames.of(notification_pb2.MessageState, "MESSAGE_STATE_")

MessageKindName = Literal["invoice_issued", "payment_receipt", "payment_failed", "payment_retry", "invoice_overdue",
                          "refund_processed", "endpoint_disabled", "invoice_reminder", "alert_triggered",
                          "autodebit_link"]
MessageStateName = Literal["queued", "sending", "sent", "failed", "unknown", "suppressed"]


class Message(BaseModel):
    """One email of one kind to one recipient for one event, recorded before it was sent."""

    id: str
    organisation_id: str
    invoice_id: str
    kind: MessageKindName | None
    recipient: str = Field(description="The organisation's billing email when the event arrived")
    cc: list[str]
    subject: str
    state: MessageStateName | None = Field(
        description="queued: waiting to be sent (or retried); sending: with the mail server now; sent; failed: "
                    "refused for good (see last_reply); unknown: its fate is unknown after a crash or a broken "
                    "transfer, an operator decides (never resent by itself); suppressed: the organisation opted "
                    "out of this kind")
    event_id: str = Field(description="The event that caused it, or resend:<message id>:<key> for a resend")
    message_id_header: str = Field(description="The Message-ID header: derived from the event, so a receiver can "
                                               "deduplicate too")
    attempts: int = Field(description="Delivery attempts so far")
    last_reply: str = Field(description="The mail server's last reply, or the error",
                            examples=["250 2.0.0 queued as 4F1A"])
    created_at: datetime | None
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a queued message is (re)tried; null otherwise")

    @classmethod
    def fields_of(cls, message: notification_pb2.Message) -> dict:
        return dict(
            id=message.id, organisation_id=message.organisation_id, invoice_id=message.invoice_id,
            kind=MESSAGE_KINDS.name(message.kind), recipient=message.recipient, cc=list(message.cc),
            subject=message.subject, state=MESSAGE_STATES.name(message.state), event_id=message.event_id,
            message_id_header=message.message_id_header, attempts=message.attempts, last_reply=message.last_reply,
            created_at=from_timestamp(message.create_time), sent_at=from_timestamp(message.sent_time),
            next_attempt_at=from_timestamp(message.next_attempt_time),
        )

    @classmethod
    def from_pb(cls, message: notification_pb2.Message) -> Message:
        return cls(**cls.fields_of(message))


class Attempt(BaseModel):
    number: int
    started_at: datetime | None
    ended_at: datetime | None = Field(description="Null while the attempt is under way (or its sender died)")
    outcome: str = Field(description='"sent", "transient" (retried), "permanent" (failed), "unknown"; empty while '
                                     'under way', examples=["sent"])
    reply: str = Field(description="The mail server's reply, or the error", examples=["451 4.3.0 try later"])

    @classmethod
    def from_pb(cls, attempt: notification_pb2.Attempt) -> Attempt:
        return cls(number=attempt.number, started_at=from_timestamp(attempt.start_time),
                   ended_at=from_timestamp(attempt.end_time), outcome=attempt.outcome, reply=attempt.reply)


class MessageWithAttempts(Message):
    delivery_attempts: list[Attempt] = Field(description="Every attempt to hand the message to the mail server, "
                                                         "first first")

    @classmethod
    def from_reply(cls, reply: notification_pb2.GetMessageResponse) -> MessageWithAttempts:
        return cls(**Message.fields_of(reply.message),
                   delivery_attempts=[Attempt.from_pb(a) for a in reply.attempts])


class Preview(BaseModel):
    """A message rendered exactly as it would be sent (today's templates), without sending it."""

    subject: str
    html: str
    text: str
    attachments: list[str] = Field(description="Names of the files that would be attached",
                                   examples=[["INV-2026-0001.pdf"]])

    @classmethod
    def from_pb(cls, reply: notification_pb2.PreviewMessageResponse) -> Preview:
        return cls(subject=reply.subject, html=reply.html, text=reply.text, attachments=list(reply.attachments))


class Recipients(BaseModel):
    """Who besides the billing email gets an organisation's messages, and the reminders it does not want."""

    organisation_id: str
    cc: list[str] = Field(description="Copied on every message to the organisation")
    opted_out: list[MessageKindName] = Field(description="Kinds it does not want: reminders only (payment_failed, "
                                                         "payment_retry, invoice_overdue)")

    @classmethod
    def from_pb(cls, message: notification_pb2.Recipients) -> Recipients:
        kinds = [name for name in (MESSAGE_KINDS.name(k) for k in message.opted_out) if name is not None]
        return cls(organisation_id=message.organisation_id, cc=list(message.cc), opted_out=kinds)


class RecipientsSet(Request):
    """Replaces the organisation's settings: a field left out is emptied."""

    cc: list[str] = Field([], description="At most 10 addresses", examples=[["accounts@acme.example"]])
    opted_out: list[MessageKindName] = Field(
        [], description="Transactional kinds (invoice_issued, payment_receipt, refund_processed) cannot be opted "
                        "out of", examples=[["payment_retry", "invoice_overdue"]])

    def to_pb(self, organisation_id: str) -> notification_pb2.Recipients:
        return notification_pb2.Recipients(organisation_id=organisation_id, cc=self.cc,
                                           opted_out=[MESSAGE_KINDS.number(k) for k in self.opted_out])
