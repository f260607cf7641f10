"""Which provider each organisation collects through, and the customers made for it at a provider."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payments.adapters import tables as t
from services.payments.domain.payment import Provider


class ProviderChoiceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, organisation_id: str) -> Provider | None:
        found = (await self._conn.execute(
            sa.select(t.organisation_providers.c.provider)
            .where(t.organisation_providers.c.organisation_id == organisation_id))).scalar_one_or_none()
        return Provider(found) if found else None

    async def set(self, organisation_id: str, provider: Provider | None) -> None:
        """Choose ``provider`` for the organisation, or (None) forget its choice."""
        if provider is None:
            await self._conn.execute(sa.delete(t.organisation_providers)
                                     .where(t.organisation_providers.c.organisation_id == organisation_id))
            return
        statement = insert(t.organisation_providers).values(organisation_id=organisation_id, provider=provider.value)
        await self._conn.execute(statement.on_conflict_do_update(
            index_elements=["organisation_id"],
            set_={"provider": statement.excluded.provider, "updated_at": sa.func.now()}))


class CustomerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, provider: Provider, organisation_id: str) -> str | None:
        return (await self._conn.execute(
            sa.select(t.provider_customers.c.customer_id)
            .where(t.provider_customers.c.provider == provider.value,
                   t.provider_customers.c.organisation_id == organisation_id))).scalar_one_or_none()

    async def add(self, provider: Provider, organisation_id: str, customer_id: str) -> str:
        """Keep the customer made for the organisation; if one was kept meanwhile, that one stands and is
        returned (a concurrent maker asked the provider with the same idempotency key, so it is the same one)."""
        await self._conn.execute(
            insert(t.provider_customers)
            .values(provider=provider.value, organisation_id=organisation_id, customer_id=customer_id)
            .on_conflict_do_nothing(index_elements=["provider", "organisation_id"]))
        kept = await self.get(provider, organisation_id)
        assert kept is not None
        return kept
