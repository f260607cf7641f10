"""Webhook endpoints and their deliveries: register, change, rotate secrets, inspect, replay, test.

An endpoint's URL is checked when it is saved (http(s), and a host resolving only to public addresses unless the
operator allows private ones); the sender checks it again before each post, since DNS can change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.notification.domain.endpoint_address import check_addresses, parse_url
from services.notification.domain.webhook_payload import body, webhook_test_payload
from services.notification.domain.webhooks import (
    MAX_DESCRIPTION,
    MAX_ENDPOINTS_PER_ORGANISATION,
    TEST_EVENT_TYPE,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    DisabledReason,
    Endpoint,
    EndpointState,
    check_event_types,
    new_secret,
    webhook_id,
)
from services.notification.service.ports import Resolver, UnitFactory

MAX_OVERLAP = timedelta(days=7)


async def check_url(resolver: Resolver, url: str, allow_private: bool, field: str = "url") -> None:
    """Refuse a URL the platform may not call, naming ``field``."""
    target = parse_url(url, field)
    check_addresses(target.host, await resolver.addresses(target.host, target.port), allow_private, field)


def _organisation(organisation_id: str) -> str:
    if not organisation_id or len(organisation_id) > 64:
        raise InvalidArgument("is required (at most 64 characters)", field="organisation_id")
    return organisation_id


def _description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(f"at most {MAX_DESCRIPTION} characters", field="description")
    return text


async def create_endpoint(uow: UnitFactory, resolver: Resolver, allow_private: bool, *, organisation_id: str,
                          url: str, event_types: list[str], description: str) -> Endpoint:
    """A new enabled endpoint with a fresh secret; the caller shows the secret once."""
    endpoint = Endpoint(id=new_id("wep"), organisation_id=_organisation(organisation_id), url=url,
                        secret=new_secret(), event_types=check_event_types(event_types),
                        description=_description(description))
    # Resolving takes a while: done before the transaction opens, so no connection is held meanwhile.
    await check_url(resolver, url, allow_private)
    async with uow() as unit:
        if await unit.endpoints.count_live(organisation_id) >= MAX_ENDPOINTS_PER_ORGANISATION:
            raise FailedPrecondition(f"an organisation has at most {MAX_ENDPOINTS_PER_ORGANISATION} endpoints")
        await unit.endpoints.add(endpoint)
        return await unit.endpoints.get(endpoint.id)


async def get_endpoint(uow: UnitFactory, endpoint_id: str) -> Endpoint:
    if not endpoint_id:
        raise InvalidArgument("is required", field="endpoint_id")
    async with uow() as unit:
        endpoint: Endpoint | None = await unit.endpoints.get(endpoint_id)
    if endpoint is None or endpoint.state is EndpointState.DELETED:
        raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
    return endpoint


async def list_endpoints(uow: UnitFactory, organisation_id: str, page_size: int,
                         page_token: str) -> tuple[list[Endpoint], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.endpoints.page(_organisation(organisation_id), size + 1, before)
    return paging.split_page(rows, size)


UPDATABLE = frozenset({"url", "event_types", "description", "enabled"})


async def update_endpoint(uow: UnitFactory, resolver: Resolver, allow_private: bool, endpoint_id: str,
                          changes: dict[str, object], now: datetime) -> Endpoint:
    """Change the fields in ``changes`` (keys from UPDATABLE). Enabling clears the reason it was disabled."""
    unknown = set(changes) - UPDATABLE
    if unknown or not changes:
        raise InvalidArgument(f"names fields to change, from {', '.join(sorted(UPDATABLE))}", field="update_mask")
    if "url" in changes:
        await check_url(resolver, str(changes["url"]), allow_private, "endpoint.url")
    event_types = check_event_types(list(changes["event_types"]), "endpoint.event_types") \
        if "event_types" in changes else None  # type: ignore[call-overload]
    async with uow() as unit:
        endpoint: Endpoint | None = await unit.endpoints.get(endpoint_id, for_update=True)
        if endpoint is None or endpoint.state is EndpointState.DELETED:
            raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
        if "url" in changes:
            endpoint = replace(endpoint, url=str(changes["url"]))
        if event_types is not None:
            endpoint = replace(endpoint, event_types=event_types)
        if "description" in changes:
            endpoint = replace(endpoint, description=_description(str(changes["description"])))
        if "enabled" in changes:
            if changes["enabled"] and not endpoint.enabled:
                endpoint = replace(endpoint, state=EndpointState.ENABLED, disabled_reason="", disabled_at=None)
            elif not changes["enabled"] and endpoint.enabled:
                endpoint = replace(endpoint, state=EndpointState.DISABLED, disabled_reason=DisabledReason.BY_USER,
                                   disabled_at=now)
        await unit.endpoints.save(endpoint, now)
        return await unit.endpoints.get(endpoint_id)


async def delete_endpoint(uow: UnitFactory, endpoint_id: str, now: datetime) -> None:
    """Deleted endpoints get nothing more (pending deliveries fail when their turn comes); history stays."""
    endpoint = await get_endpoint(uow, endpoint_id)
    async with uow() as unit:
        await unit.endpoints.save(replace(endpoint, state=EndpointState.DELETED, disabled_at=now), now)


async def rotate_secret(uow: UnitFactory, endpoint_id: str, overlap: timedelta, now: datetime) -> tuple[Endpoint, str]:
    """A new secret; the current one keeps signing alongside it for ``overlap`` (zero: it stops at once)."""
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise InvalidArgument(f"must be between 0 and {MAX_OVERLAP.days} days", field="overlap")
    async with uow() as unit:
        endpoint: Endpoint | None = await unit.endpoints.get(endpoint_id, for_update=True)
        if endpoint is None or endpoint.state is EndpointState.DELETED:
            raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
        secret = new_secret()
        rotated = replace(endpoint, secret=secret, previous_secret=endpoint.secret if overlap else "",
                          previous_secret_until=now + overlap if overlap else None)
        await unit.endpoints.save(rotated, now)
        return await unit.endpoints.get(endpoint_id), secret


async def list_deliveries(uow: UnitFactory, *, endpoint_id: str, organisation_id: str, state: str, page_size: int,
                          page_token: str) -> tuple[list[Delivery], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.deliveries.page(endpoint_id=endpoint_id, organisation_id=organisation_id, state=state,
                                          limit=size + 1, before=before)
    return paging.split_page(rows, size)


async def get_delivery(uow: UnitFactory, delivery_id: str) -> tuple[Delivery, list[DeliveryAttempt]]:
    if not delivery_id:
        raise InvalidArgument("is required", field="delivery_id")
    async with uow() as unit:
        delivery: Delivery | None = await unit.deliveries.get(delivery_id)
        if delivery is None:
            raise NotFound(f"no webhook delivery with id {delivery_id!r}")
        return delivery, await unit.deliveries.attempts(delivery_id)


async def replay(uow: UnitFactory, delivery_id: str, idempotency_key: str, now: datetime) -> tuple[Delivery, bool]:
    """A new attempt chain for the same message: the same webhook-id and body (the receiver deduplicates), due
    now. The same key again returns the chain it made."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidArgument("is required (at most 200 characters): a replay is made once per key",
                              field="idempotency_key")
    original, _ = await get_delivery(uow, delivery_id)
    async with uow() as unit:
        existing: Delivery | None = await unit.deliveries.by_idempotency_key(idempotency_key)
        if existing is not None:
            return existing, False
        endpoint: Endpoint | None = await unit.endpoints.get(original.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            raise FailedPrecondition("the endpoint is disabled or deleted: enable it before replaying")
        copy = replace(original, id=new_id("dlv"), event_id=f"replay:{original.id}:{idempotency_key}",
                       state=DeliveryState.PENDING, attempts=0, last_status_code=0, last_error="",
                       next_attempt_at=now, lease_until=None, idempotency_key=idempotency_key, created_at=None,
                       delivered_at=None)
        await unit.deliveries.add(copy)
        return await unit.deliveries.get(copy.id), True


async def send_test(uow: UnitFactory, endpoint_id: str, now: datetime) -> Delivery:
    """A ``webhook.test`` delivery to one endpoint, due now (it goes even to a disabled endpoint, which is how a
    customer checks a fix before enabling it again)."""
    endpoint = await get_endpoint(uow, endpoint_id)
    event_id = new_id("test")
    delivery = Delivery(id=new_id("dlv"), event_id=event_id, endpoint_id=endpoint.id,
                        organisation_id=endpoint.organisation_id, event_type=TEST_EVENT_TYPE,
                        webhook_id=webhook_id(event_id, endpoint.id),
                        payload=body(webhook_test_payload(endpoint.id, endpoint.organisation_id, now)),
                        next_attempt_at=now)
    async with uow() as unit:
        await unit.deliveries.add(delivery)
        return await unit.deliveries.get(delivery.id)
