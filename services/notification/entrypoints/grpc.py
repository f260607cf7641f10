"""NotificationService over gRPC: protobuf in, use case, protobuf out."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.notification.v1 import notification_pb2 as pb
from billing.notification.v1 import notification_pb2_grpc
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp
from services.notification.domain.messages import Message, MessageKind, MessageState, Recipients
from services.notification.entrypoints.webhooks_grpc import WebhookRpcs, WebhookRpcSettings
from services.notification.service import queries
from services.notification.service.ports import Renderer, UnitFactory


def _time(value):  # noqa: ANN001, ANN202 - a datetime or None -> a Timestamp or None
    return to_timestamp(value) if value is not None else None


def _kind_name(number: int, field: str, *, required: bool = False) -> str:
    """A MessageKind's name ("" for unspecified, unless ``required``); InvalidArgument for an unknown number."""
    if number == pb.MESSAGE_KIND_UNSPECIFIED:
        if required:
            raise InvalidArgument("must name a message kind (not MESSAGE_KIND_UNSPECIFIED)", field=field)
        return ""
    try:
        return pb.MessageKind.Name(number).removeprefix("MESSAGE_KIND_").lower()
    except ValueError:
        raise InvalidArgument("is not a message kind", field=field) from None


def _state_name(number: int, field: str) -> str:
    """A MessageState's name ("" for unspecified); InvalidArgument for an unknown number (proto3 enums are open:
    a client may send any)."""
    if number == pb.MESSAGE_STATE_UNSPECIFIED:
        return ""
    try:
        return pb.MessageState.Name(number).removeprefix("MESSAGE_STATE_").lower()
    except ValueError:
        raise InvalidArgument("is not a message state", field=field) from None


def _kind_number(kind: MessageKind) -> int:
    return pb.MessageKind.Value(f"MESSAGE_KIND_{kind.upper()}")


def message_to_pb(message: Message) -> pb.Message:
    return pb.Message(
        id=message.id, organisation_id=message.organisation_id, invoice_id=message.invoice_id,
        kind=_kind_number(message.kind), recipient=message.recipient,
        cc=list(message.cc), subject=message.subject,
        state=pb.MessageState.Value(f"MESSAGE_STATE_{message.state.upper()}"), event_id=message.event_id,
        message_id_header=message.message_id_header, attempts=message.attempts, last_reply=message.last_reply,
        create_time=_time(message.created_at), sent_time=_time(message.sent_at),
        next_attempt_time=_time(message.next_attempt_at) if message.state is MessageState.QUEUED else None,
    )


def recipients_to_pb(settings: Recipients) -> pb.Recipients:
    kinds = [pb.MessageKind.Value(f"MESSAGE_KIND_{k.upper()}") for k in sorted(settings.opted_out)]
    return pb.Recipients(organisation_id=settings.organisation_id, cc=list(settings.cc), opted_out=kinds)


class NotificationServicer(WebhookRpcs, notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, uow: UnitFactory, renderer: Renderer, webhooks: WebhookRpcSettings) -> None:
        self._uow = uow
        self._renderer = renderer
        self._webhooks = webhooks

    async def ListMessages(self, request, context):  # noqa: N802 - gRPC method names
        state = _state_name(request.state, "state")
        page, token = await queries.list_messages(
            self._uow, organisation_id=request.organisation_id, invoice_id=request.invoice_id,
            kind=_kind_name(request.kind, "kind"), state=state, page_size=request.page_size,
            page_token=request.page_token)
        return pb.ListMessagesResponse(messages=[message_to_pb(m) for m in page], next_page_token=token)

    async def GetMessage(self, request, context):  # noqa: N802
        message, attempts = await queries.get_message(self._uow, request.message_id)
        return pb.GetMessageResponse(message=message_to_pb(message), attempts=[
            pb.Attempt(number=a.number, start_time=_time(a.started_at), end_time=_time(a.ended_at),
                       outcome=a.outcome, reply=a.reply) for a in attempts])

    async def PreviewMessage(self, request, context):  # noqa: N802
        rendered, attachments = await queries.preview(self._uow, self._renderer, request.message_id)
        return pb.PreviewMessageResponse(subject=rendered.subject, html=rendered.html, text=rendered.text,
                                         attachments=attachments)

    async def ResendMessage(self, request, context):  # noqa: N802
        message, created = await queries.resend(self._uow, request.message_id, request.idempotency_key,
                                                datetime.now(UTC))
        return pb.ResendMessageResponse(message=message_to_pb(message), created=created)

    async def GetRecipients(self, request, context):  # noqa: N802
        return pb.GetRecipientsResponse(recipients=recipients_to_pb(
            await queries.recipients(self._uow, request.organisation_id)))

    async def SetRecipients(self, request, context):  # noqa: N802
        given = request.recipients
        kinds = frozenset(MessageKind(_kind_name(k, "recipients.opted_out", required=True)) for k in given.opted_out)
        settings = await queries.set_recipients(self._uow, Recipients(given.organisation_id, tuple(given.cc), kinds))
        return pb.SetRecipientsResponse(recipients=recipients_to_pb(settings))
