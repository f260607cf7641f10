"""What an organisation is on at a moment, read in two queries (metering asks often): the organisation with its
entitlement overrides and the price override versions started by the moment, then its subscriptions with their
phases, each phase joined to its plan version only when it covers the moment (so one version's terms are read, not
every version the organisation was ever on)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.invoicing.adapters.catalog_repository import version_from_row
from services.invoicing.adapters.repository import organisation_from_row
from services.invoicing.adapters.subscription_repository import subscription_from_row
from services.invoicing.adapters.tables import (
    entitlement_overrides,
    organisations,
    plan_versions,
    plans,
    price_overrides,
    subscription_phases,
    subscriptions,
)
from services.invoicing.domain.entitlements import validate_entitlements
from services.invoicing.domain.plan import PlanVersion
from services.invoicing.domain.price_override import PriceOverride, validate_override_terms
from services.invoicing.domain.subscription import PlanPhase
from services.invoicing.service.ports import OrganisationPlans

_OVERRIDES = (
    sa.select(
        sa.func.coalesce(
            sa.func.jsonb_object_agg(entitlement_overrides.c.feature, entitlement_overrides.c.value),
            sa.text("'{}'::jsonb"),
        )
    )
    .where(entitlement_overrides.c.organisation_id == organisations.c.id)
    .scalar_subquery()
    .label("entitlement_overrides")
)

_VERSION = plan_versions.alias("version_in_force")
_OVERRIDE_PLAN = plans.alias("override_plan")


def _price_overrides(at: datetime) -> sa.ScalarSelect[Any]:
    """The organisation's price override versions started by ``at`` (the one in force on each plan is among them),
    as a JSON array."""
    row = sa.func.jsonb_build_object(
        "id", price_overrides.c.id, "plan_id", price_overrides.c.plan_id, "plan_code", _OVERRIDE_PLAN.c.code,
        "version", price_overrides.c.version, "effective_from", price_overrides.c.effective_from,
        "terms", price_overrides.c.terms, "created_at", price_overrides.c.created_at,
    )
    return (
        sa.select(sa.func.coalesce(sa.func.jsonb_agg(row), sa.text("'[]'::jsonb")))
        .select_from(price_overrides.join(_OVERRIDE_PLAN, _OVERRIDE_PLAN.c.id == price_overrides.c.plan_id))
        .where(price_overrides.c.organisation_id == organisations.c.id, price_overrides.c.effective_from <= at)
        .scalar_subquery()
    )


def _price_override(organisation_id: str, raw: dict[str, Any]) -> PriceOverride:
    return PriceOverride(
        id=raw["id"], organisation_id=organisation_id, plan_id=raw["plan_id"], plan_code=raw["plan_code"],
        version=raw["version"], effective_from=datetime.fromisoformat(raw["effective_from"]),
        terms=validate_override_terms(raw["terms"], None), created_at=datetime.fromisoformat(raw["created_at"]),
    )


class _VersionRow:
    """A joined row's plan-version columns under the names ``version_from_row`` reads."""

    def __init__(self, row: sa.Row[Any]) -> None:
        self.id = row.v_id
        self.plan_id = row.v_plan_id
        self.plan_code = row.v_plan_code
        self.name = row.v_name
        self.version = row.v_version
        self.terms = row.v_terms
        self.created_at = row.v_created_at


class PlanInForceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def read(self, organisation_id: str, at: datetime) -> OrganisationPlans | None:
        head = (
            await self._conn.execute(
                sa.select(organisations, _OVERRIDES, _price_overrides(at).label("price_overrides")).where(
                    organisations.c.id == organisation_id
                )
            )
        ).one_or_none()
        if head is None:
            return None
        phase = subscription_phases
        covers = sa.and_(
            _VERSION.c.id == phase.c.plan_version_id,
            phase.c.starts_at <= at,
            sa.or_(phase.c.ends_at.is_(None), phase.c.ends_at > at),
        )
        rows = (
            await self._conn.execute(
                sa.select(
                    subscriptions,
                    phase.c.plan_version_id.label("p_plan_version_id"),
                    phase.c.starts_at.label("p_starts_at"),
                    phase.c.ends_at.label("p_ends_at"),
                    _VERSION.c.id.label("v_id"),
                    _VERSION.c.plan_id.label("v_plan_id"),
                    plans.c.code.label("v_plan_code"),
                    _VERSION.c.name.label("v_name"),
                    _VERSION.c.version.label("v_version"),
                    _VERSION.c.terms.label("v_terms"),
                    _VERSION.c.created_at.label("v_created_at"),
                )
                .join(phase, phase.c.subscription_id == subscriptions.c.id)
                .outerjoin(_VERSION, covers)
                .outerjoin(plans, plans.c.id == _VERSION.c.plan_id)
                .where(subscriptions.c.organisation_id == organisation_id)
                .order_by(subscriptions.c.id, phase.c.starts_at)
            )
        ).all()
        heads: dict[str, sa.Row[Any]] = {}
        phases: dict[str, list[PlanPhase]] = defaultdict(list)
        versions: dict[str, PlanVersion] = {}
        for row in rows:
            heads.setdefault(row.id, row)
            phases[row.id].append(PlanPhase(row.p_plan_version_id, row.p_starts_at, row.p_ends_at))
            if row.v_id is not None and row.v_id not in versions:
                versions[row.v_id] = version_from_row(_VersionRow(row))  # type: ignore[arg-type]
        return OrganisationPlans(
            organisation=organisation_from_row(head),
            subscriptions=[subscription_from_row(row, phases[row_id]) for row_id, row in heads.items()],
            versions=versions,
            overrides=validate_entitlements(head.entitlement_overrides, "entitlement_overrides"),
            price_overrides=[_price_override(organisation_id, raw) for raw in head.price_overrides],
        )
