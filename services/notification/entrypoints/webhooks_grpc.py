"""The webhook RPCs of NotificationService: protobuf in, use case, protobuf out. Secrets appear only in the
replies of CreateEndpoint and RotateEndpointSecret."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration

from billing.notification.v1 import notification_pb2 as pb
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import from_duration, to_timestamp
from services.notification.domain.webhooks import Delivery, DeliveryAttempt, DeliveryState, Endpoint
from services.notification.service import endpoints as use_cases
from services.notification.service.ports import Resolver, UnitFactory


def _time(value):  # noqa: ANN001, ANN202 - a datetime or None -> a Timestamp or None
    return to_timestamp(value) if value is not None else None


def endpoint_to_pb(endpoint: Endpoint, now: datetime | None = None) -> pb.WebhookEndpoint:
    now = now or datetime.now(UTC)
    overlapping = endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now
    return pb.WebhookEndpoint(
        id=endpoint.id, organisation_id=endpoint.organisation_id, url=endpoint.url,
        event_types=list(endpoint.event_types), description=endpoint.description, enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason, create_time=_time(endpoint.created_at),
        update_time=_time(endpoint.updated_at), disable_time=_time(endpoint.disabled_at),
        previous_secret_expire_time=_time(endpoint.previous_secret_until) if overlapping else None,
    )


def delivery_to_pb(delivery: Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        id=delivery.id, endpoint_id=delivery.endpoint_id, organisation_id=delivery.organisation_id,
        event_id=delivery.event_id, event_type=delivery.event_type, webhook_id=delivery.webhook_id,
        state=pb.WebhookDeliveryState.Value(f"WEBHOOK_DELIVERY_STATE_{delivery.state.upper()}"),
        attempts=delivery.attempts, last_status_code=delivery.last_status_code, last_error=delivery.last_error,
        payload=delivery.payload, create_time=_time(delivery.created_at), delivered_time=_time(delivery.delivered_at),
        next_attempt_time=_time(delivery.next_attempt_at) if delivery.state is DeliveryState.PENDING else None,
    )


def attempt_to_pb(attempt: DeliveryAttempt) -> pb.WebhookAttempt:
    return pb.WebhookAttempt(
        number=attempt.number, start_time=_time(attempt.started_at), end_time=_time(attempt.ended_at),
        status_code=attempt.status_code, response_body=attempt.response_body,
        duration=Duration(seconds=attempt.duration_ms // 1000, nanos=attempt.duration_ms % 1000 * 1_000_000),
        error=attempt.error,
    )


def _state_name(number: int) -> str:
    if number == pb.WEBHOOK_DELIVERY_STATE_UNSPECIFIED:
        return ""
    try:
        return pb.WebhookDeliveryState.Name(number).removeprefix("WEBHOOK_DELIVERY_STATE_").lower()
    except ValueError:
        raise InvalidArgument("is not a delivery state", field="state") from None


@dataclass(frozen=True)
class WebhookRpcSettings:
    resolver: Resolver
    allow_private_addresses: bool
    rotation_overlap: timedelta
    # Wakes the webhook sender when a delivery was queued (test, replay).
    wake: Callable[[], None] = lambda: None


class WebhookRpcs:
    """Mixed into NotificationServicer, which sets ``_uow`` and ``_webhooks``."""

    _uow: UnitFactory
    _webhooks: WebhookRpcSettings

    async def CreateEndpoint(self, request, context):  # noqa: N802 - gRPC method names
        endpoint = await use_cases.create_endpoint(
            self._uow, self._webhooks.resolver, self._webhooks.allow_private_addresses,
            organisation_id=request.organisation_id, url=request.url, event_types=list(request.event_types),
            description=request.description)
        return pb.CreateEndpointResponse(endpoint=endpoint_to_pb(endpoint), secret=endpoint.secret)

    async def ListEndpoints(self, request, context):  # noqa: N802
        page, token = await use_cases.list_endpoints(self._uow, request.organisation_id, request.page_size,
                                                     request.page_token)
        return pb.ListEndpointsResponse(endpoints=[endpoint_to_pb(e) for e in page], next_page_token=token)

    async def GetEndpoint(self, request, context):  # noqa: N802
        return pb.GetEndpointResponse(endpoint=endpoint_to_pb(await use_cases.get_endpoint(self._uow,
                                                                                         request.endpoint_id)))

    async def UpdateEndpoint(self, request, context):  # noqa: N802
        given = request.endpoint
        values = {"url": given.url, "event_types": list(given.event_types), "description": given.description,
                  "enabled": given.enabled}
        paths = list(request.update_mask.paths)
        unknown = [p for p in paths if p not in values]
        if unknown or not paths:
            raise InvalidArgument(f"names fields to change, from {', '.join(values)}", field="update_mask")
        endpoint = await use_cases.update_endpoint(
            self._uow, self._webhooks.resolver, self._webhooks.allow_private_addresses, given.id,
            {p: values[p] for p in paths}, datetime.now(UTC))
        return pb.UpdateEndpointResponse(endpoint=endpoint_to_pb(endpoint))

    async def DeleteEndpoint(self, request, context):  # noqa: N802
        await use_cases.delete_endpoint(self._uow, request.endpoint_id, datetime.now(UTC))
        return pb.DeleteEndpointResponse()

    async def RotateEndpointSecret(self, request, context):  # noqa: N802
        overlap = (from_duration(request.overlap, "overlap") if request.HasField("overlap")
                   else self._webhooks.rotation_overlap)
        endpoint, secret = await use_cases.rotate_secret(self._uow, request.endpoint_id, overlap, datetime.now(UTC))
        return pb.RotateEndpointSecretResponse(endpoint=endpoint_to_pb(endpoint), secret=secret)

    async def ListDeliveries(self, request, context):  # noqa: N802
        page, token = await use_cases.list_deliveries(
            self._uow, endpoint_id=request.endpoint_id, organisation_id=request.organisation_id,
            state=_state_name(request.state), page_size=request.page_size, page_token=request.page_token)
        return pb.ListDeliveriesResponse(deliveries=[delivery_to_pb(d) for d in page], next_page_token=token)

    async def GetDelivery(self, request, context):  # noqa: N802
        delivery, attempts = await use_cases.get_delivery(self._uow, request.delivery_id)
        return pb.GetDeliveryResponse(delivery=delivery_to_pb(delivery), attempts=[attempt_to_pb(a) for a in attempts])

    async def ReplayDelivery(self, request, context):  # noqa: N802
        delivery, created = await use_cases.replay(self._uow, request.delivery_id, request.idempotency_key,
                                                   datetime.now(UTC))
        if created:
            self._webhooks.wake()
        return pb.ReplayDeliveryResponse(delivery=delivery_to_pb(delivery), created=created)

    async def SendTestWebhook(self, request, context):  # noqa: N802
        delivery = await use_cases.send_test(self._uow, request.endpoint_id, datetime.now(UTC))
        self._webhooks.wake()
        return pb.SendTestWebhookResponse(delivery=delivery_to_pb(delivery))
