"""Webhook endpoints and their deliveries: the admin routes under /api/v1/admin (any organisation's endpoints,
every delivery, replays), and the key holder's own organisation's endpoints and deliveries under /api/v1.
Notification owns endpoints, secrets and deliveries, and the rules about them (event types, which URLs may be
called); these routes translate.

An endpoint's signing secret is in two answers only, create and rotate-secret, and nowhere else: not in a read, a
list, a log line or the audit log (whose entries name the endpoint, never its secret).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from google.protobuf.duration_pb2 import Duration

from billing.notification.v1 import notification_pb2
from billing_runtime import clients
from billing_runtime.errors import InvalidArgument, NotFound
from services.gateway.entrypoints.http import field_paths, schemas
from services.gateway.entrypoints.http import webhook_endpoint_schemas as ws
from services.gateway.entrypoints.http.admin import (
    IdempotencyKey,
    PageSize,
    PageToken,
    audit,
    require_admin,
    staff_actor,
)
from services.gateway.entrypoints.http.api_key import OrgScope, Scope
from services.gateway.entrypoints.http.notifications import known_organisation, notification_of

_ERRORS = {code: {"model": schemas.Error} for code in (400, 401, 404, 503)}
# Saving a URL makes notification resolve its host (to refuse private addresses), and a slow DNS server can take
# longer than the lookup timeout of the other calls.
RESOLVING_TIMEOUT_SECONDS = 20.0
_REPLAYED = {200: {"model": ws.Delivery, "description": "Replayed before with this key: that delivery, with "
                                                        "`Idempotent-Replayed: true`"}}
_PRECONDITION = {422: {"model": schemas.Error, "description": "The endpoint is disabled or deleted, or the "
                                                             "organisation has as many endpoints as it may"}}

admin_router = APIRouter(prefix="/api/v1/admin", tags=["webhook endpoints"], dependencies=[Depends(require_admin)],
                         responses=_ERRORS)
router = APIRouter(prefix="/api/v1", tags=["webhook endpoints (API key)"],
                   responses={**_ERRORS, 403: {"model": schemas.Error}})

StateFilter = Annotated[ws.DeliveryStateName | None, Query(description="Only deliveries in this state")]
EndpointFilter = Annotated[str, Query(description="Only this endpoint's deliveries")]
OptionalRotation = Annotated[ws.SecretRotation | None, Body()]


def _update_field(field: str) -> str:
    # Notification names the fields of its request's endpoint (endpoint.url); the body has them at the top.
    return field.removeprefix("endpoint.")


# --- what the admin and the key holder share -----------------------------------------------------------------


async def _create(request: Request, organisation_id: str, body: ws.EndpointCreate,
                  actor: str) -> ws.EndpointWithSecret:
    reply = await clients.call(notification_of(request).CreateEndpoint, body.to_pb(organisation_id),
                               timeout=RESOLVING_TIMEOUT_SECONDS)
    # The entry names the endpoint; the secret goes to the caller alone.
    await audit(request, "webhook_endpoint.create", "webhook_endpoint", reply.endpoint.id, actor=actor)
    return ws.EndpointWithSecret.from_reply(reply.endpoint, reply.secret)


async def _list_endpoints(request: Request, organisation_id: str, page_size: int,
                          page_token: str) -> schemas.Page[ws.Endpoint]:
    reply = await clients.call(notification_of(request).ListEndpoints, notification_pb2.ListEndpointsRequest(
        organisation_id=organisation_id, page_size=page_size, page_token=page_token))
    return schemas.Page[ws.Endpoint](data=[ws.Endpoint.from_pb(e) for e in reply.endpoints],
                                     next_page_token=reply.next_page_token)


async def _get_endpoint(request: Request, endpoint_id: str) -> notification_pb2.WebhookEndpoint:
    reply = await clients.call(notification_of(request).GetEndpoint,
                               notification_pb2.GetEndpointRequest(endpoint_id=endpoint_id))
    return reply.endpoint


async def _update(request: Request, endpoint_id: str, body: ws.EndpointUpdate, actor: str) -> ws.Endpoint:
    if not body.model_fields_set:
        # An empty mask would be notification's 400 about update_mask, a name the client never sent.
        raise InvalidArgument("the body names no field to change: give url, event_types, description or enabled")
    reply = await field_paths.call(notification_of(request).UpdateEndpoint, body.to_pb(endpoint_id), _update_field,
                                   timeout=RESOLVING_TIMEOUT_SECONDS)
    await audit(request, "webhook_endpoint.update", "webhook_endpoint", endpoint_id, actor=actor)
    return ws.Endpoint.from_pb(reply.endpoint)


async def _delete(request: Request, endpoint_id: str, actor: str) -> Response:
    await clients.call(notification_of(request).DeleteEndpoint,
                       notification_pb2.DeleteEndpointRequest(endpoint_id=endpoint_id))
    await audit(request, "webhook_endpoint.delete", "webhook_endpoint", endpoint_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _rotate(request: Request, endpoint_id: str, body: ws.SecretRotation | None,
                  actor: str) -> ws.EndpointWithSecret:
    message = notification_pb2.RotateEndpointSecretRequest(endpoint_id=endpoint_id)
    if body is not None and body.overlap_seconds is not None:
        # Left unset, notification uses its configured overlap; a zero Duration means "stop at once".
        message.overlap.CopyFrom(Duration(seconds=body.overlap_seconds))
    reply = await field_paths.call(notification_of(request).RotateEndpointSecret, message,
                                   field_paths.renamed({"overlap": "overlap_seconds"}))
    await audit(request, "webhook_endpoint.rotate_secret", "webhook_endpoint", endpoint_id, actor=actor)
    return ws.EndpointWithSecret.from_reply(reply.endpoint, reply.secret)


async def _test(request: Request, endpoint_id: str) -> ws.Delivery:
    reply = await clients.call(notification_of(request).SendTestWebhook,
                               notification_pb2.SendTestWebhookRequest(endpoint_id=endpoint_id))
    return ws.Delivery.from_pb(reply.delivery)


async def _list_deliveries(request: Request, endpoint_id: str, organisation_id: str, state: str | None,
                           page_size: int, page_token: str) -> schemas.Page[ws.Delivery]:
    reply = await clients.call(notification_of(request).ListDeliveries, notification_pb2.ListDeliveriesRequest(
        endpoint_id=endpoint_id, organisation_id=organisation_id,
        state=ws.DELIVERY_STATES.number(state) if state else notification_pb2.WEBHOOK_DELIVERY_STATE_UNSPECIFIED,
        page_size=page_size, page_token=page_token))
    return schemas.Page[ws.Delivery](data=[ws.Delivery.from_pb(d) for d in reply.deliveries],
                                     next_page_token=reply.next_page_token)


# --- endpoints (admin) ---------------------------------------------------------------------------------------


@admin_router.post("/organisations/{organisation_id}/webhook-endpoints", status_code=status.HTTP_201_CREATED,
                   response_model=ws.EndpointWithSecret, responses=_PRECONDITION,
                   summary="Register a webhook endpoint for an organisation")
async def create_endpoint(organisation_id: str, body: ws.EndpointCreate, request: Request):
    """A new enabled endpoint (201). The answer carries its signing `secret` (whsec_...) this once: it is never
    shown again, so give it to the receiver now. 400 names the field notification refuses: `url` (not http(s), or
    a host resolving to a private, loopback or link-local address), `event_types[0]` (an unknown type),
    `description`. 404 for an organisation invoicing does not have; 422 when it already has 20 endpoints."""
    await known_organisation(request, organisation_id)
    return await _create(request, organisation_id, body, staff_actor(request))


@admin_router.get("/webhook-endpoints", response_model=schemas.Page[ws.Endpoint],
                  summary="List an organisation's webhook endpoints")
async def list_endpoints(
    request: Request,
    organisation_id: Annotated[str, Query(description="The organisation whose endpoints to list")],
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Enabled and disabled endpoints, newest first (deleted ones are not listed), without their secrets."""
    return await _list_endpoints(request, organisation_id, page_size, page_token)


@admin_router.get("/webhook-endpoints/{endpoint_id}", response_model=ws.Endpoint, summary="Get a webhook endpoint")
async def get_endpoint(endpoint_id: str, request: Request):
    """The endpoint without its secret; 404 once it is deleted."""
    return ws.Endpoint.from_pb(await _get_endpoint(request, endpoint_id))


@admin_router.patch("/webhook-endpoints/{endpoint_id}", response_model=ws.Endpoint,
                    summary="Change a webhook endpoint")
async def update_endpoint(endpoint_id: str, body: ws.EndpointUpdate, request: Request):
    """Changes the fields the body has (`url`, `event_types`, `description`, `enabled`) and keeps the others;
    `null` is refused. `"enabled": true` enables an endpoint disabled for failing or answering 410, once its
    receiver is fixed. 400 names the field notification refuses."""
    return await _update(request, endpoint_id, body, staff_actor(request))


@admin_router.delete("/webhook-endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT,
                     response_class=Response, summary="Delete a webhook endpoint")
async def delete_endpoint(endpoint_id: str, request: Request) -> Response:
    """Stops every delivery to it for good (pending ones fail without being sent); its delivery history stays."""
    return await _delete(request, endpoint_id, staff_actor(request))


@admin_router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=ws.EndpointWithSecret,
                   summary="Give a webhook endpoint a new signing secret")
async def rotate_secret(endpoint_id: str, request: Request, body: OptionalRotation = None):
    """The previous secret keeps signing alongside the new one for `overlap_seconds` (default 24 hours, at most
    7 days; 0 for a leaked secret), so the receiver can switch without missing a delivery. The answer carries
    the new `secret` this once: it is never shown again."""
    return await _rotate(request, endpoint_id, body, staff_actor(request))


@admin_router.post("/webhook-endpoints/{endpoint_id}/test", status_code=status.HTTP_201_CREATED,
                   response_model=ws.Delivery, summary="Send a test webhook to an endpoint")
async def test_endpoint(endpoint_id: str, request: Request):
    """Queues a `webhook.test` delivery, posted at once, even to a disabled endpoint (to check a fix before
    enabling it); a failing test disables nothing. Follow it with GET /webhook-deliveries/{id}."""
    return await _test(request, endpoint_id)


# --- deliveries (admin) --------------------------------------------------------------------------------------


@admin_router.get("/webhook-deliveries", response_model=schemas.Page[ws.Delivery], summary="List webhook deliveries")
async def list_deliveries(
    request: Request,
    endpoint_id: EndpointFilter = "",
    organisation_id: Annotated[str, Query(description="Only this organisation's deliveries")] = "",
    state: StateFilter = None,
    page_size: PageSize = 0,
    page_token: PageToken = "",
):
    """Deliveries newest first; `failed` ones are those to look at (and replay once the receiver is fixed)."""
    return await _list_deliveries(request, endpoint_id, organisation_id, state, page_size, page_token)


@admin_router.get("/webhook-deliveries/{delivery_id}", response_model=ws.DeliveryWithAttempts,
                  summary="Get a webhook delivery with its attempts")
async def get_delivery(delivery_id: str, request: Request):
    """The delivery, its body as posted, and every attempt: the endpoint's status code, the first 1 KiB of its
    answer, how long it took, or the error when no answer came."""
    reply = await clients.call(notification_of(request).GetDelivery,
                               notification_pb2.GetDeliveryRequest(delivery_id=delivery_id))
    return ws.DeliveryWithAttempts.from_reply(reply)


@admin_router.post("/webhook-deliveries/{delivery_id}/replay", status_code=status.HTTP_201_CREATED,
                   response_model=ws.Delivery, responses={**_REPLAYED, **_PRECONDITION},
                   summary="Post a delivery again")
async def replay_delivery(delivery_id: str, request: Request, response: Response,
                          idempotency_key: IdempotencyKey = ""):
    """A new attempt chain for the same message (201): the same `webhook-id` and body, so a receiver that has it
    already drops it. The `Idempotency-Key` header is required: the same key again returns the delivery it made
    (200, `Idempotent-Replayed: true`), so a retried request posts once. 422 while the endpoint is disabled or
    deleted: enable it first."""
    if not idempotency_key:
        raise InvalidArgument("is required: a replay is made once per key", field="Idempotency-Key")
    reply = await field_paths.call(
        notification_of(request).ReplayDelivery,
        notification_pb2.ReplayDeliveryRequest(delivery_id=delivery_id, idempotency_key=idempotency_key),
        field_paths.renamed({"idempotency_key": "Idempotency-Key"}))
    if reply.created:
        await audit(request, "webhook_delivery.replay", "webhook_delivery", reply.delivery.id)
    else:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return ws.Delivery.from_pb(reply.delivery)


# --- the key holder's own organisation -----------------------------------------------------------------------


async def own_endpoint(request: Request, scope: Scope, endpoint_id: str) -> notification_pb2.WebhookEndpoint:
    """The endpoint if it is the key's organisation's; another organisation's is 'not found', exactly as a missing
    one, so a key cannot probe for other organisations' endpoint ids. An endpoint never changes organisation, so
    a write after this check acts on the endpoint it checked."""
    try:
        endpoint = await _get_endpoint(request, endpoint_id)
    except NotFound:
        endpoint = None
    if endpoint is None or endpoint.organisation_id != scope.organisation_id:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field="endpoint_id")
    return endpoint


@router.get("/webhook-endpoints", response_model=schemas.Page[ws.Endpoint],
            summary="Your organisation's webhook endpoints")
async def my_endpoints(request: Request, scope: OrgScope, page_size: PageSize = 0, page_token: PageToken = ""):
    """The API key's organisation's endpoints, newest first, without their secrets."""
    return await _list_endpoints(request, scope.organisation_id, page_size, page_token)


@router.post("/webhook-endpoints", status_code=status.HTTP_201_CREATED, response_model=ws.EndpointWithSecret,
             responses=_PRECONDITION, summary="Register a webhook endpoint for your organisation")
async def my_create_endpoint(body: ws.EndpointCreate, request: Request, scope: OrgScope):
    """A new enabled endpoint of the API key's organisation (201). The answer carries its signing `secret`
    (whsec_...) this once: it is never shown again. 400 names the field refused (`url`, `event_types[0]`,
    `description`); 422 when the organisation already has 20 endpoints."""
    return await _create(request, scope.organisation_id, body, scope.actor)


@router.get("/webhook-endpoints/{endpoint_id}", response_model=ws.Endpoint,
            summary="One of your organisation's webhook endpoints")
async def my_endpoint(endpoint_id: str, request: Request, scope: OrgScope):
    """404 for an endpoint of another organisation, as for one that does not exist."""
    return ws.Endpoint.from_pb(await own_endpoint(request, scope, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=ws.Endpoint,
              summary="Change one of your organisation's webhook endpoints")
async def my_update_endpoint(endpoint_id: str, body: ws.EndpointUpdate, request: Request, scope: OrgScope):
    """Changes the fields the body has and keeps the others, as the admin's route does. 404 for another
    organisation's endpoint."""
    await own_endpoint(request, scope, endpoint_id)
    return await _update(request, endpoint_id, body, scope.actor)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete one of your organisation's webhook endpoints")
async def my_delete_endpoint(endpoint_id: str, request: Request, scope: OrgScope) -> Response:
    """Stops its deliveries for good; its delivery history stays. 404 for another organisation's endpoint."""
    await own_endpoint(request, scope, endpoint_id)
    return await _delete(request, endpoint_id, scope.actor)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=ws.EndpointWithSecret,
             summary="Give one of your organisation's webhook endpoints a new signing secret")
async def my_rotate_secret(endpoint_id: str, request: Request, scope: OrgScope, body: OptionalRotation = None):
    """As the admin's route: the previous secret signs too for `overlap_seconds`. The answer carries the new
    `secret` this once: it is never shown again. 404 for another organisation's endpoint."""
    await own_endpoint(request, scope, endpoint_id)
    return await _rotate(request, endpoint_id, body, scope.actor)


@router.post("/webhook-endpoints/{endpoint_id}/test", status_code=status.HTTP_201_CREATED,
             response_model=ws.Delivery, summary="Send a test webhook to one of your organisation's endpoints")
async def my_test_endpoint(endpoint_id: str, request: Request, scope: OrgScope):
    """Queues a `webhook.test` delivery, posted at once. 404 for another organisation's endpoint."""
    await own_endpoint(request, scope, endpoint_id)
    return await _test(request, endpoint_id)


@router.get("/webhook-deliveries", response_model=schemas.Page[ws.Delivery],
            summary="Your organisation's webhook deliveries")
async def my_deliveries(request: Request, scope: OrgScope, endpoint_id: EndpointFilter = "",
                        state: StateFilter = None, page_size: PageSize = 0, page_token: PageToken = ""):
    """Deliveries to the API key's organisation's endpoints, newest first. There is no organisation filter: it
    is always the key's, so another organisation's endpoint id lists nothing."""
    return await _list_deliveries(request, endpoint_id, scope.organisation_id, state, page_size, page_token)
