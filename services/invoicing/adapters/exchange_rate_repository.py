"""SQL of the exchange-rate table admins manage."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.invoicing.adapters.tables import exchange_rates
from services.invoicing.domain.invoice import ExchangeRate


def to_rate(row: sa.Row[Any]) -> ExchangeRate:
    return ExchangeRate(
        base_currency=row.base_currency,
        quote_currency=row.quote_currency,
        rate=row.rate,
        source=row.source,
        effective_at=row.effective_at,
    )


class ExchangeRateRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, rate_id: str, rate: ExchangeRate) -> tuple[sa.Row[Any], bool]:
        """Insert, or return the row already there for the pair and effective time. (row, created)"""
        row = (
            await self._conn.execute(
                insert(exchange_rates)
                .values(
                    id=rate_id,
                    base_currency=rate.base_currency,
                    quote_currency=rate.quote_currency,
                    rate=rate.rate,
                    source=rate.source,
                    effective_at=rate.effective_at,
                )
                .on_conflict_do_nothing(index_elements=["base_currency", "quote_currency", "effective_at"])
                .returning(exchange_rates)
            )
        ).one_or_none()
        if row is not None:
            return row, True
        existing = (
            await self._conn.execute(
                sa.select(exchange_rates).where(
                    exchange_rates.c.base_currency == rate.base_currency,
                    exchange_rates.c.quote_currency == rate.quote_currency,
                    exchange_rates.c.effective_at == rate.effective_at,
                )
            )
        ).one()
        return existing, False

    async def list(self, *, base_currency: str = "", quote_currency: str = "") -> list[sa.Row[Any]]:
        query = sa.select(exchange_rates).order_by(
            exchange_rates.c.effective_at.desc(), exchange_rates.c.base_currency, exchange_rates.c.quote_currency
        )
        if base_currency:
            query = query.where(exchange_rates.c.base_currency == base_currency)
        if quote_currency:
            query = query.where(exchange_rates.c.quote_currency == quote_currency)
        return list((await self._conn.execute(query)).all())

    async def all_rates(self) -> list[ExchangeRate]:
        return [to_rate(row) for row in await self.list()]
