"""SQL of entitlement overrides: features granted to one organisation, each value in its tagged JSON form."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.invoicing.adapters.tables import entitlement_overrides
from services.invoicing.domain.entitlements import EntitlementValue, validate_entitlements, value_to_dict


class EntitlementOverrideRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def of(self, organisation_id: str) -> dict[str, EntitlementValue]:
        """The organisation's overrides by feature (sorted); {} when it has none."""
        rows = (
            await self._conn.execute(
                sa.select(entitlement_overrides.c.feature, entitlement_overrides.c.value).where(
                    entitlement_overrides.c.organisation_id == organisation_id
                )
            )
        ).all()
        return validate_entitlements({row.feature: row.value for row in rows}, "entitlement_overrides")

    async def put(self, organisation_id: str, feature: str, value: EntitlementValue) -> None:
        """Insert the override, or replace the feature's value."""
        statement = insert(entitlement_overrides).values(
            organisation_id=organisation_id, feature=feature, value=value_to_dict(value)
        )
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[entitlement_overrides.c.organisation_id, entitlement_overrides.c.feature],
                set_={"value": statement.excluded.value, "updated_at": sa.func.now()},
            )
        )

    async def remove(self, organisation_id: str, feature: str) -> None:
        await self._conn.execute(
            sa.delete(entitlement_overrides).where(
                entitlement_overrides.c.organisation_id == organisation_id,
                entitlement_overrides.c.feature == feature,
            )
        )
