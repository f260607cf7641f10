"""Email messages: the admin routes under /api/v1/admin (list, inspect with attempts, preview as sent, resend,
an organisation's recipients), and the key holder's own organisation's messages under /api/v1. Notification owns
the messages and the rules about them; these routes translate.

A preview is mail HTML shown in a browser: the page is served with a Content-Security-Policy that lets it draw
(inline styles, images) and nothing else, so a template or a customer's name that carries markup can never run
script in the gateway's origin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from billing.invoicing.v1 import invoicing_pb2
from billing.notification.v1 import notification_pb2
from billing_runtime import clients
from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http import notification_schemas as ns
from services.gateway.entrypoints.http.admin import IdempotencyKey, PageSize, PageToken, audit, require_admin
from services.gateway.entrypoints.http.api_key import OrgScope
from services.gateway.entrypoints.http.invoices import invoicing_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 503)}
# Mail HTML styles itself inline and may show a hosted logo; nothing else is allowed: no script (not even inline,
# and `sandbox` without allow-scripts forbids it twice over), no fetches, no forms, no plugins, no <base>, and no
# framing by another site (clickjacking a page behind the admin token).
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'; sandbox")
_HTML_PREVIEW = {200: {"content": {"text/html": {"schema": {"type": "string"}}},
                       "description": "The message's HTML part as a page, under a Content-Security-Policy that "
                                      "lets no script run"}}
_REPLAYED = {200: {"model": ns.Message, "description": "Resent before with this key: that copy, with "
                                                      "`Idempotent-Replayed: true`"}}

admin_router = APIRouter(prefix="/api/v1/admin", tags=["notifications"], dependencies=[Depends(require_admin)],
                         responses=_ERRORS)
router = APIRouter(prefix="/api/v1", tags=["notifications (API key)"],
                   responses={**_ERRORS, 403: {"model": schemas.Error}})

KindFilter = Annotated[ns.MessageKindName | None, Query(description="Only messages of this kind")]
StateFilter = Annotated[ns.MessageStateName | None, Query(description="Only messages in this state")]
InvoiceFilter = Annotated[str, Query(description="Only this invoice's messages")]


def notification_of(request: Request):
    """The notification service's stub (for this module and :mod:`.webhook_endpoints`)."""
    return request.app.state.clients.notification


async def _list(request: Request, organisation_id: str, invoice_id: str, kind: str | None, state: str | None,
                page_size: int, page_token: str) -> schemas.Page[ns.Message]:
    reply = await clients.call(notification_of(request).ListMessages, notification_pb2.ListMessagesRequest(
        organisation_id=organisation_id, invoice_id=invoice_id,
        kind=ns.MESSAGE_KINDS.number(kind) if kind else notification_pb2.MESSAGE_KIND_UNSPECIFIED,
        state=ns.MESSAGE_STATES.number(state) if state else notification_pb2.MESSAGE_STATE_UNSPECIFIED,
        page_size=page_size, page_token=page_token))
    return schemas.Page[ns.Message](data=[ns.Message.from_pb(m) for m in reply.messages],
                                    next_page_token=reply.next_page_token)


async def _preview(request: Request, message_id: str) -> notification_pb2.PreviewMessageResponse:
    return await clients.call(notification_of(request).PreviewMessage,
                              notification_pb2.PreviewMessageRequest(message_id=message_id))


async def known_organisation(request: Request, organisation_id: str) -> None:
    """404 for an organisation invoicing does not have: notification keeps recipients (and webhook endpoints, see
    :mod:`.webhook_endpoints`) by id alone, and would otherwise answer empty settings for a typo, or keep settings
    and endpoints no organisation's events will ever use."""
    await clients.call(invoicing_of(request).GetOrganisation,
                       invoicing_pb2.GetOrganisationRequest(organisation_id=organisation_id))


# --- messages (admin) ----------------------------------------------------------------------------------------


@admin_router.get("/messages", response_model=schemas.Page[ns.Message], summary="List email messages")
async def list_messages(
    request: Request,
    organisation_id: Annotated[str, Query(description="Only this organisation's messages")] = "",
    invoice_id: InvoiceFilter = "",
    kind: KindFilter = None,
    state: StateFilter = None,
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Messages newest first, in every state: `failed` and `unknown` are the ones needing an operator."""
    return await _list(request, organisation_id, invoice_id, kind, state, page_size, page_token)


@admin_router.get("/messages/{message_id}", response_model=ns.MessageWithAttempts,
                  summary="Get a message with its delivery attempts")
async def get_message(message_id: str, request: Request):
    """The message and each attempt to hand it to the mail server, with the server's reply."""
    reply = await clients.call(notification_of(request).GetMessage,
                               notification_pb2.GetMessageRequest(message_id=message_id))
    return ns.MessageWithAttempts.from_reply(reply)


@admin_router.get("/messages/{message_id}/preview", response_model=ns.Preview,
                  summary="A message rendered as it would be sent")
async def preview_message(message_id: str, request: Request):
    """Subject, HTML and text from today's templates, and the names of the files that would be attached.
    Nothing is sent."""
    return ns.Preview.from_pb(await _preview(request, message_id))


@admin_router.get("/messages/{message_id}/preview.html", response_class=Response, responses=_HTML_PREVIEW,
                  summary="A message's HTML as a page")
async def preview_message_page(message_id: str, request: Request) -> Response:
    """The HTML part, to look at in a browser. Served with a Content-Security-Policy under which no script runs
    and nothing is fetched but images."""
    rendered = await _preview(request, message_id)
    return Response(rendered.html, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": PREVIEW_CSP, "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


@admin_router.post("/messages/{message_id}/resend", status_code=status.HTTP_201_CREATED, response_model=ns.Message,
                   responses=_REPLAYED, summary="Send a new copy of a message")
async def resend_message(message_id: str, request: Request, response: Response,
                         idempotency_key: IdempotencyKey = ""):
    """Queues a copy with its own Message-ID (201): after a permanent failure was fixed, or once an operator has
    checked that a message in the `unknown` state never arrived. The `Idempotency-Key` header is required, so a
    retried request never mails the customer twice: the same key again returns the first copy (200,
    `Idempotent-Replayed: true`)."""
    if not idempotency_key:
        raise InvalidArgument("is required: a resend is made once per key", field="Idempotency-Key")
    reply = await field_paths.call(
        notification_of(request).ResendMessage,
        notification_pb2.ResendMessageRequest(message_id=message_id, idempotency_key=idempotency_key),
        field_paths.renamed({"idempotency_key": "Idempotency-Key"}))
    if reply.created:
        await audit(request, "message.resend", "message", reply.message.id)
    else:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return ns.Message.from_pb(reply.message)


# --- recipients (admin) --------------------------------------------------------------------------------------


@admin_router.get("/organisations/{organisation_id}/recipients", response_model=ns.Recipients,
                  summary="An organisation's email recipients")
async def get_recipients(organisation_id: str, request: Request):
    """Addresses copied on its messages and the reminder kinds it opted out of (both empty until set)."""
    await known_organisation(request, organisation_id)
    reply = await clients.call(notification_of(request).GetRecipients,
                               notification_pb2.GetRecipientsRequest(organisation_id=organisation_id))
    return ns.Recipients.from_pb(reply.recipients)


@admin_router.put("/organisations/{organisation_id}/recipients", response_model=ns.Recipients,
                  summary="Set an organisation's email recipients")
async def set_recipients(organisation_id: str, body: ns.RecipientsSet, request: Request):
    """Replaces both lists; messages recorded from now on follow them. 400 names the field notification refuses:
    `cc[1]` for an address that is not one, `cc` for more than 10, `opted_out` for a transactional kind
    (invoices, receipts and refunds are always sent)."""
    await known_organisation(request, organisation_id)
    reply = await field_paths.call(
        notification_of(request).SetRecipients,
        notification_pb2.SetRecipientsRequest(recipients=body.to_pb(organisation_id)),
        # Notification names them in its request (recipients.opted_out); the body has them at the top.
        lambda field: field.removeprefix("recipients."))
    await audit(request, "recipients.set", "organisation", organisation_id)
    return ns.Recipients.from_pb(reply.recipients)


# --- the key holder's own organisation -----------------------------------------------------------------------


@router.get("/messages", response_model=schemas.Page[ns.Message], summary="Your organisation's email messages")
async def my_messages(
    request: Request, scope: OrgScope, invoice_id: InvoiceFilter = "", kind: KindFilter = None,
    state: StateFilter = None, page_size: PageSize = 0, page_token: PageToken = "",
):
    """The messages sent (or to be sent) to the API key's organisation, newest first. There is no organisation
    filter: it is always the key's, so another organisation's invoice id lists nothing."""
    return await _list(request, scope.organisation_id, invoice_id, kind, state, page_size, page_token)
