"""What the invoicing horizon is computed from: active subscriptions with their organisation's time zone and
the periods already invoiced, and the earliest draft invoice's period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class OpenSubscription:
    organisation_id: str
    time_zone: str
    anchor_day: int
    created_at: datetime
    invoiced_keys: frozenset[str]


async def open_subscriptions(conn: AsyncConnection) -> list[OpenSubscription]:
    rows = (
        await conn.execute(
            sa.text(
                """
                SELECT s.organisation_id, o.timezone, s.billing_anchor_day, s.created_at,
                    COALESCE((SELECT array_agg(i.period_key) FROM invoicing.invoices i
                              WHERE i.organisation_id = s.organisation_id AND i.status <> 'void'), '{}') AS keys
                FROM invoicing.subscriptions s JOIN invoicing.organisations o ON o.id = s.organisation_id
                WHERE s.state = 'active'
                """
            )
        )
    ).all()
    return [OpenSubscription(r[0], r[1], r[2], r[3], frozenset(r[4])) for r in rows]


async def earliest_draft_period(conn: AsyncConnection) -> datetime | None:
    return (
        await conn.execute(sa.text("SELECT min(period_start) FROM invoicing.invoices WHERE status = 'draft'"))
    ).scalar()
