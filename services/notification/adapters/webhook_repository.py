"""All SQL of webhooks: endpoints, deliveries and their attempts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notification.adapters import tables as t
from services.notification.domain.webhooks import Delivery, DeliveryAttempt, DeliveryState, Endpoint, EndpointState

_E, _D, _A = t.webhook_endpoints, t.webhook_deliveries, t.webhook_attempts


def _endpoint(row: sa.Row[Any]) -> Endpoint:
    values = {k: v for k, v in row._mapping.items() if k in Endpoint.__dataclass_fields__}
    return Endpoint(**{**values, "state": EndpointState(row.state), "event_types": tuple(row.event_types)})


def _delivery(row: sa.Row[Any]) -> Delivery:
    values = {k: v for k, v in row._mapping.items() if k in Delivery.__dataclass_fields__}
    return Delivery(**{**values, "state": DeliveryState(row.state)})


class EndpointRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, endpoint: Endpoint) -> None:
        values = {k: v for k, v in endpoint.__dict__.items() if k not in ("created_at", "updated_at")}
        values.update(state=endpoint.state.value, event_types=list(endpoint.event_types))
        await self._conn.execute(sa.insert(_E).values(**values))

    async def get(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None:
        statement = sa.select(_E).where(_E.c.id == endpoint_id)
        if for_update:
            statement = statement.with_for_update()
        row = (await self._conn.execute(statement)).first()
        return _endpoint(row) if row else None

    async def count_live(self, organisation_id: str) -> int:
        return int((await self._conn.execute(sa.select(sa.func.count()).where(
            _E.c.organisation_id == organisation_id, _E.c.state != EndpointState.DELETED.value))).scalar_one())

    async def page(self, organisation_id: str, limit: int, before: str | None) -> list[Endpoint]:
        statement = (sa.select(_E).where(_E.c.organisation_id == organisation_id,
                                         _E.c.state != EndpointState.DELETED.value)
                     .order_by(_E.c.id.desc()).limit(limit))
        if before:
            statement = statement.where(_E.c.id < before)
        return [_endpoint(row) for row in (await self._conn.execute(statement)).all()]

    async def subscribed(self, organisation_id: str, event_type: str) -> list[Endpoint]:
        """Enabled endpoints of the organisation taking this event type (an empty list of types takes all)."""
        rows = (await self._conn.execute(sa.select(_E).where(
            _E.c.organisation_id == organisation_id, _E.c.state == EndpointState.ENABLED.value,
            sa.or_(_E.c.event_types == sa.text("'[]'::jsonb"), _E.c.event_types.contains([event_type])),
        ).order_by(_E.c.id))).all()
        return [_endpoint(row) for row in rows]

    async def save(self, endpoint: Endpoint, now: datetime) -> None:
        await self._conn.execute(sa.update(_E).where(_E.c.id == endpoint.id).values(
            url=endpoint.url, secret=endpoint.secret, event_types=list(endpoint.event_types),
            description=endpoint.description, state=endpoint.state.value, disabled_reason=endpoint.disabled_reason,
            previous_secret=endpoint.previous_secret, previous_secret_until=endpoint.previous_secret_until,
            disabled_at=endpoint.disabled_at, updated_at=now))

    async def disable(self, endpoint_id: str, reason: str, now: datetime) -> bool:
        """Disable an enabled endpoint; False when it was not enabled (another delivery got there first), so the
        organisation is told once."""
        row = (await self._conn.execute(
            sa.update(_E).where(_E.c.id == endpoint_id, _E.c.state == EndpointState.ENABLED.value)
            .values(state=EndpointState.DISABLED.value, disabled_reason=reason, disabled_at=now, updated_at=now)
            .returning(_E.c.id))).first()
        return row is not None


class DeliveryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, delivery: Delivery) -> bool:
        """Record a delivery; False when its (event, endpoint), or its idempotency key, was recorded already."""
        values = {k: v for k, v in delivery.__dict__.items() if k not in ("created_at", "delivered_at")}
        values["state"] = delivery.state.value
        statement = insert(_D).values(**values).on_conflict_do_nothing().returning(_D.c.id)
        return (await self._conn.execute(statement)).first() is not None

    async def get(self, delivery_id: str) -> Delivery | None:
        row = (await self._conn.execute(sa.select(_D).where(_D.c.id == delivery_id))).first()
        return _delivery(row) if row else None

    async def by_idempotency_key(self, key: str) -> Delivery | None:
        row = (await self._conn.execute(sa.select(_D).where(_D.c.idempotency_key == key))).first()
        return _delivery(row) if row else None

    async def page(self, *, endpoint_id: str, organisation_id: str, state: str, limit: int,
                   before: str | None) -> list[Delivery]:
        statement = sa.select(_D).order_by(_D.c.id.desc()).limit(limit)
        for column, value in ((_D.c.endpoint_id, endpoint_id), (_D.c.organisation_id, organisation_id),
                              (_D.c.state, state)):
            if value:
                statement = statement.where(column == value)
        if before:
            statement = statement.where(_D.c.id < before)
        return [_delivery(row) for row in (await self._conn.execute(statement)).all()]

    async def requeue_lost(self, now: datetime) -> list[str]:
        """Deliveries whose sender stopped mid-post (its lease ran out): due again at once. A receiver may have
        had the post already; it deduplicates by webhook-id, as the convention asks of it."""
        rows = (await self._conn.execute(
            sa.update(_D).where(_D.c.state == DeliveryState.SENDING.value, _D.c.lease_until < now)
            .values(state=DeliveryState.PENDING.value, lease_until=None, next_attempt_at=now,
                    last_error="the sender stopped before it knew the answer")
            .returning(_D.c.id, _D.c.attempts))).all()
        for delivery_id, number in rows:
            await self._conn.execute(sa.update(_A).where(
                _A.c.delivery_id == delivery_id, _A.c.number == number, _A.c.ended_at.is_(None),
            ).values(ended_at=now, error="the sender stopped before it knew the answer"))
        return [row[0] for row in rows]

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Pending deliveries due now, marked SENDING with a lease and one more attempt, the attempt recorded:
        committed before anything is posted."""
        due = (
            sa.select(_D.c.id)
            .where(_D.c.state == DeliveryState.PENDING.value, _D.c.next_attempt_at <= now)
            .order_by(_D.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalar_subquery()
        rows = (await self._conn.execute(
            sa.update(_D).where(_D.c.id.in_(due))
            .values(state=DeliveryState.SENDING.value, attempts=_D.c.attempts + 1, lease_until=now + lease)
            .returning(_D))).all()
        claimed = [_delivery(row) for row in rows]
        if claimed:
            await self._conn.execute(sa.insert(_A), [
                {"delivery_id": d.id, "number": d.attempts, "started_at": now} for d in claimed])
        return claimed

    async def finish(self, delivery: Delivery, state: DeliveryState, attempt: DeliveryAttempt,
                     next_attempt_at: datetime | None = None) -> None:
        """Record how attempt ``delivery.attempts`` ended (even if its lease ran out meanwhile: the truth wins)."""
        values: dict[str, Any] = {"state": state.value, "lease_until": None, "next_attempt_at": next_attempt_at,
                                  "last_status_code": attempt.status_code, "last_error": attempt.error[:1000]}
        if state is DeliveryState.DELIVERED:
            values["delivered_at"] = attempt.ended_at
        await self._conn.execute(sa.update(_D).where(
            _D.c.id == delivery.id, _D.c.attempts == delivery.attempts).values(**values))
        await self._conn.execute(sa.update(_A).where(
            _A.c.delivery_id == delivery.id, _A.c.number == delivery.attempts,
        ).values(ended_at=attempt.ended_at, status_code=attempt.status_code, response_body=attempt.response_body,
                 duration_ms=attempt.duration_ms, error=attempt.error[:1000]))

    async def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        rows = (await self._conn.execute(sa.select(_A).where(_A.c.delivery_id == delivery_id)
                                         .order_by(_A.c.number))).all()
        return [DeliveryAttempt(**dict(row._mapping)) for row in rows]
