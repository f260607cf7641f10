"""In-memory stand-ins for webhook endpoints and deliveries, an HTTP receiver and DNS."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from services.notification.adapters.webhook_poster import PostResult
from services.notification.domain.webhooks import Delivery, DeliveryAttempt, DeliveryState, Endpoint, EndpointState


class Endpoints:
    def __init__(self, store) -> None:  # noqa: ANN001 - fakes.Store
        self.s = store

    async def add(self, endpoint: Endpoint) -> None:
        self.s.endpoints[endpoint.id] = endpoint

    async def get(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None:
        return self.s.endpoints.get(endpoint_id)

    async def count_live(self, organisation_id: str) -> int:
        return sum(1 for e in self.s.endpoints.values()
                   if e.organisation_id == organisation_id and e.state is not EndpointState.DELETED)

    async def page(self, organisation_id: str, limit: int, before: str | None) -> list[Endpoint]:
        rows = sorted((e for e in self.s.endpoints.values() if e.organisation_id == organisation_id
                       and e.state is not EndpointState.DELETED and (not before or e.id < before)),
                      key=lambda e: e.id, reverse=True)
        return rows[:limit]

    async def subscribed(self, organisation_id: str, event_type: str) -> list[Endpoint]:
        return [e for e in self.s.endpoints.values()
                if e.organisation_id == organisation_id and e.enabled and e.subscribed_to(event_type)]

    async def save(self, endpoint: Endpoint, now: datetime) -> None:
        self.s.endpoints[endpoint.id] = replace(endpoint, updated_at=now)

    async def disable(self, endpoint_id: str, reason: str, now: datetime) -> bool:
        endpoint = self.s.endpoints[endpoint_id]
        if not endpoint.enabled:
            return False
        self.s.endpoints[endpoint_id] = replace(endpoint, state=EndpointState.DISABLED, disabled_reason=reason,
                                                disabled_at=now)
        return True


class Deliveries:
    def __init__(self, store) -> None:  # noqa: ANN001
        self.s = store

    async def add(self, delivery: Delivery) -> bool:
        for other in self.s.deliveries.values():
            if (other.event_id, other.endpoint_id) == (delivery.event_id, delivery.endpoint_id):
                return False
            if delivery.idempotency_key and other.idempotency_key == delivery.idempotency_key:
                return False
        self.s.deliveries[delivery.id] = delivery
        return True

    async def get(self, delivery_id: str) -> Delivery | None:
        return self.s.deliveries.get(delivery_id)

    async def by_idempotency_key(self, key: str) -> Delivery | None:
        return next((d for d in self.s.deliveries.values() if d.idempotency_key == key), None)

    async def page(self, *, endpoint_id: str, organisation_id: str, state: str, limit: int,
                   before: str | None) -> list[Delivery]:
        rows = [d for d in self.s.deliveries.values() if (not endpoint_id or d.endpoint_id == endpoint_id)
                and (not organisation_id or d.organisation_id == organisation_id) and (not state or d.state == state)]
        return sorted(rows, key=lambda d: d.id, reverse=True)[:limit]

    async def requeue_lost(self, now: datetime) -> list[str]:
        lost = [d for d in self.s.deliveries.values() if d.state is DeliveryState.SENDING and d.lease_until < now]
        for d in lost:
            self.s.deliveries[d.id] = replace(d, state=DeliveryState.PENDING, lease_until=None, next_attempt_at=now)
        return [d.id for d in lost]

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        due = [d for d in self.s.deliveries.values() if d.state is DeliveryState.PENDING and d.next_attempt_at <= now]
        claimed = []
        for d in due[:limit]:
            d = replace(d, state=DeliveryState.SENDING, attempts=d.attempts + 1, lease_until=now + lease)
            self.s.deliveries[d.id] = d
            self.s.delivery_attempts.append(DeliveryAttempt(d.id, d.attempts, now))
            claimed.append(d)
        return claimed

    async def finish(self, delivery: Delivery, state: DeliveryState, attempt: DeliveryAttempt,
                     next_attempt_at: datetime | None = None) -> None:
        current = self.s.deliveries[delivery.id]
        if current.attempts != delivery.attempts:
            return
        self.s.deliveries[delivery.id] = replace(
            current, state=state, lease_until=None, next_attempt_at=next_attempt_at,
            last_status_code=attempt.status_code, last_error=attempt.error,
            delivered_at=attempt.ended_at if state is DeliveryState.DELIVERED else current.delivered_at)
        self.s.delivery_attempts = [attempt if (a.delivery_id, a.number) == (delivery.id, delivery.attempts) else a
                                    for a in self.s.delivery_attempts]

    async def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        return [a for a in self.s.delivery_attempts if a.delivery_id == delivery_id]


class FakeResolver:
    """Hosts to addresses; an unknown host does not resolve."""

    def __init__(self, hosts: dict[str, list[str]] | None = None) -> None:
        self.hosts = hosts or {}

    async def addresses(self, host: str, port: int) -> list[str]:
        if host.replace(".", "").isdigit() or ":" in host:  # an IP literal resolves to itself
            return [host]
        return list(self.hosts.get(host, []))


class FakeReceiver:
    """Answers queued status codes in turn, then 200; keeps every request it was given."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[int] = []

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostResult:
        self.requests.append((url, headers, body))
        status = self.answers.pop(0) if self.answers else 200
        if status == 0:
            return PostResult(0, "", 10_000, "timed out: ReadTimeout")
        return PostResult(status, "ok" if status < 300 else "nope", 12)
