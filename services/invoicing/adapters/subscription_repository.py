"""SQL of subscriptions and their plan phases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import invoices, subscription_phases, subscriptions
from services.invoicing.domain.subscription import PlanPhase, Subscription, SubscriptionStatus


def subscription_from_row(row: sa.Row[Any], phases: list[PlanPhase]) -> Subscription:
    return Subscription(
        id=row.id,
        organisation_id=row.organisation_id,
        billing_anchor_day=row.billing_anchor_day,
        status=SubscriptionStatus(row.state),
        phases=tuple(phases),
        cancel_at_period_end=row.cancel_at_period_end,
        ends_at=row.ends_at,
        created_at=row.created_at,
        past_due_at=row.past_due_at,
    )


class SubscriptionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, subscription: Subscription, *, idempotency_key: str, fingerprint: str) -> tuple[str, bool]:
        """Insert a new subscription with its phases; returns (id, created). An organisation's second active
        subscription violates ``subscriptions_one_active_key`` (the caller turns that into a clear error)."""
        row, created = await insert_once(
            self._conn,
            subscriptions,
            {
                "id": subscription.id,
                "organisation_id": subscription.organisation_id,
                "billing_anchor_day": subscription.billing_anchor_day,
                "state": subscription.status.value,
                "cancel_at_period_end": subscription.cancel_at_period_end,
                "ends_at": subscription.ends_at,
                "created_at": subscription.created_at,
            },
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        if created:
            await self._write_phases(subscription)
        return row.id, created

    async def save(self, subscription: Subscription) -> None:
        """Store a changed subscription (state, end, phases)."""
        await self._conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == subscription.id)
            .values(
                state=subscription.status.value,
                cancel_at_period_end=subscription.cancel_at_period_end,
                ends_at=subscription.ends_at,
            )
        )
        await self._conn.execute(
            sa.delete(subscription_phases).where(subscription_phases.c.subscription_id == subscription.id)
        )
        await self._write_phases(subscription)

    async def _write_phases(self, subscription: Subscription) -> None:
        await self._conn.execute(
            sa.insert(subscription_phases),
            [
                {
                    "subscription_id": subscription.id,
                    "plan_version_id": phase.plan_version_id,
                    "starts_at": phase.starts_at,
                    "ends_at": phase.ends_at,
                }
                for phase in subscription.phases
            ],
        )

    async def made_with_key(self, idempotency_key: str) -> bool:
        found = await self._conn.execute(
            sa.select(subscriptions.c.id).where(subscriptions.c.idempotency_key == idempotency_key)
        )
        return found.scalar_one_or_none() is not None

    async def active_for(self, organisation_id: str) -> str | None:
        return (
            await self._conn.execute(
                sa.select(subscriptions.c.id).where(
                    subscriptions.c.organisation_id == organisation_id, subscriptions.c.state == "active"
                )
            )
        ).scalar_one_or_none()

    async def get(self, subscription_id: str, *, for_update: bool = False) -> Subscription | None:
        query = sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
        if for_update:
            query = query.with_for_update()
        found = await self._load((await self._conn.execute(query)).all())
        return found[0] if found else None

    async def list(self, *, organisation_id: str, limit: int, after: str | None) -> list[Subscription]:
        query = sa.select(subscriptions).order_by(subscriptions.c.id).limit(limit)
        if organisation_id:
            query = query.where(subscriptions.c.organisation_id == organisation_id)
        if after:
            query = query.where(subscriptions.c.id > after)
        return await self._load((await self._conn.execute(query)).all())

    async def for_organisations(self, organisation_ids: Sequence[str]) -> dict[str, list[Subscription]]:
        """Every subscription (any state) of these organisations, oldest first."""
        if not organisation_ids:
            return {}
        rows = (
            await self._conn.execute(
                sa.select(subscriptions)
                .where(subscriptions.c.organisation_id.in_(list(organisation_ids)))
                .order_by(subscriptions.c.id)
            )
        ).all()
        result: dict[str, list[Subscription]] = defaultdict(list)
        for subscription in await self._load(rows):
            result[subscription.organisation_id].append(subscription)
        return result

    async def mark_past_due(self, organisation_id: str, since: datetime) -> None:
        """Mark the organisation's subscription past due (its active one, else its latest), unless it already is:
        the first uncollectible invoice says since when."""
        target = (
            sa.select(subscriptions.c.id)
            .where(subscriptions.c.organisation_id == organisation_id)
            .order_by((subscriptions.c.state == "active").desc(), subscriptions.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        await self._conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == target, subscriptions.c.past_due_at.is_(None))
            .values(past_due_at=since)
        )

    async def clear_past_due(self, organisation_id: str) -> None:
        """Clear the organisation's past-due mark once none of its invoices is uncollectible any more."""
        still_uncollectible = sa.exists().where(
            invoices.c.organisation_id == organisation_id, invoices.c.status == "uncollectible"
        )
        await self._conn.execute(
            sa.update(subscriptions)
            .where(
                subscriptions.c.organisation_id == organisation_id,
                subscriptions.c.past_due_at.is_not(None),
                ~still_uncollectible,
            )
            .values(past_due_at=None)
        )

    async def _load(self, rows: Sequence[sa.Row[Any]]) -> list[Subscription]:
        if not rows:
            return []
        phase_rows = (
            await self._conn.execute(
                sa.select(subscription_phases)
                .where(subscription_phases.c.subscription_id.in_([row.id for row in rows]))
                .order_by(subscription_phases.c.subscription_id, subscription_phases.c.starts_at)
            )
        ).all()
        phases: dict[str, list[PlanPhase]] = defaultdict(list)
        for phase in phase_rows:
            phases[phase.subscription_id].append(PlanPhase(phase.plan_version_id, phase.starts_at, phase.ends_at))
        return [subscription_from_row(row, phases[row.id]) for row in rows]
