"""When usage first went over a quota in a billing period, in ``metering.quota_overages`` (the ``OverageLog``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metering.adapters.tables import quota_overages
from services.metering.service.quota_book import UsageKey


class QuotaOverages:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, observed: Sequence[tuple[UsageKey, Decimal, datetime]]) -> dict[UsageKey, datetime]:
        """Insert each pair's moment unless one is stored for its limit (the first stored wins, whichever replica
        wrote it), then read back what is stored: one transaction, two statements."""
        if not observed:
            return {}
        rows = [
            {"organisation_id": key.organisation_id, "metric_code": key.metric_code,
             "period_start": key.period_start, "quota_limit": limit, "first_over_at": moment}
            for key, limit, moment in observed
        ]
        wanted = {(key.organisation_id, key.metric_code, key.period_start, limit): key for key, limit, _ in observed}
        table = quota_overages
        columns = (table.c.organisation_id, table.c.metric_code, table.c.period_start, table.c.quota_limit)
        async with self._engine.begin() as conn:
            await conn.execute(insert(table).on_conflict_do_nothing(), rows)
            stored = await conn.execute(
                sa.select(*columns, table.c.first_over_at).where(sa.tuple_(*columns).in_(list(wanted)))
            )
            return {wanted[(row.organisation_id, row.metric_code, row.period_start, row.quota_limit)]:
                    row.first_over_at for row in stored}
