"""What an organisation is on at a moment: the subscription and plan version in force, the billing period
containing the moment, the organisation's entitlement overrides and its price override in force on the plan.
Metering reads it (and caches it until ``phase_end`` or the period's end) to check quotas and answer entitlements.

The period is the one period close bills (:func:`billing_inputs.billing_period`, anchored on the latest
subscription's day in the organisation's zone), and the plan in force is the segment of that period containing
the moment (:func:`subscription.segments`, which period close prices), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from billing_runtime.errors import InvalidArgument, NotFound
from services.invoicing.domain.billing_period import BillingPeriod
from services.invoicing.domain.entitlements import EntitlementValue
from services.invoicing.domain.organisation import Organisation
from services.invoicing.domain.plan import PlanVersion
from services.invoicing.domain.price_override import PriceOverride, applies_to, in_force
from services.invoicing.domain.subscription import segments
from services.invoicing.service.billing_inputs import billing_period
from services.invoicing.service.ports import InvoicingTransaction, OrganisationPlans


@dataclass(frozen=True)
class Placement:
    """Where a moment falls: its period, the subscription and plan version in force (empty when none is), and
    ``phase_end``, when that stops holding inside the period: the plan version's phase ends (a scheduled plan
    change or cancellation) or, with nothing in force, a subscription starts. None: it holds to the period's end.
    """

    period: BillingPeriod
    subscription_id: str = ""
    plan_version_id: str = ""
    phase_end: datetime | None = None


@dataclass(frozen=True)
class PlanInForce:
    organisation: Organisation
    period: BillingPeriod
    overrides: Mapping[str, EntitlementValue] = field(default_factory=dict)
    subscription_id: str = ""
    plan_version: PlanVersion | None = None
    phase_end: datetime | None = None
    # The organisation's price override in force at the moment on the plan version's plan (its own prices).
    price_override: PriceOverride | None = None

    @property
    def found(self) -> bool:
        return self.plan_version is not None


def place(plans: OrganisationPlans, at: datetime) -> Placement:
    """The period and phase containing ``at`` (timezone-aware). Without a subscription in force, the period is
    the calendar month in the organisation's zone."""
    period = billing_period(plans.organisation, plans.subscriptions, at=at)
    for subscription in plans.subscriptions:
        for segment in segments(subscription, period):
            if segment.start <= at < segment.end:
                return Placement(
                    period=period,
                    subscription_id=subscription.id,
                    plan_version_id=segment.plan_version_id,
                    phase_end=segment.end if segment.end < period.end else None,
                )
    month = billing_period(plans.organisation, [], at=at)
    starts = [
        segment.start
        for subscription in plans.subscriptions
        for segment in segments(subscription, month)
        if segment.start > at
    ]
    return Placement(period=month, phase_end=min(starts) if starts else None)


async def get_plan_in_force(
    uow: InvoicingTransaction, organisation_id: str, at: datetime | None = None
) -> PlanInForce:
    """What ``organisation_id`` is on at ``at`` (now when None). NotFound for an unknown organisation."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    at = at or datetime.now(UTC)
    async with uow:
        plans = await uow.plans_in_force.read(organisation_id, at)
        if plans is None:
            raise NotFound(f"no organisation with id {organisation_id!r}")
        placement = place(plans, at)
        version = None
        if placement.plan_version_id:
            version = plans.versions.get(placement.plan_version_id)
            if version is None:  # the read joins the covering phase's version; this is only a safety net
                version = await uow.catalog.get_version(placement.plan_version_id)
    price_override = None
    if version is not None:
        found = in_force(plans.price_overrides, version.plan_id, at)
        price_override = found if applies_to(found, version) else None
    return PlanInForce(
        organisation=plans.organisation,
        period=placement.period,
        overrides=plans.overrides,
        subscription_id=placement.subscription_id if version is not None else "",
        plan_version=version,
        phase_end=placement.phase_end,
        price_override=price_override,
    )
