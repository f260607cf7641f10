"""Subscriptions: an organisation on a sequence of plan versions (phases), and the pure transitions between them.

A plan change closes the current phase at the start of a day in the organisation's zone and opens the next one;
a cancellation ends the subscription now or at the end of the current billing period. :func:`segments` cuts a
billing period at those boundaries, so each part is priced on the plan version in force.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.billing_period import (
    MAX_ANCHOR_DAY,
    BillingPeriod,
    days_between,
    is_start_of_day,
    period_containing,
    zone_of,
)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELED = "canceled"


@dataclass(frozen=True)
class PlanPhase:
    """A plan version in force over ``[starts_at, ends_at)``; ``ends_at`` None while it is the open phase."""

    plan_version_id: str
    starts_at: datetime
    ends_at: datetime | None = None


@dataclass(frozen=True)
class Subscription:
    id: str
    organisation_id: str
    billing_anchor_day: int
    status: SubscriptionStatus
    # In time order, each ending where the next starts; the last one is open (or clipped by ``ends_at``).
    phases: tuple[PlanPhase, ...]
    cancel_at_period_end: bool
    # When billing stops: set by a cancellation (now, or the end of the period it was asked in).
    ends_at: datetime | None
    created_at: datetime
    # Set while one of the organisation's invoices is uncollectible (settlement marks and clears it).
    past_due_at: datetime | None = None

    @property
    def current_phase(self) -> PlanPhase:
        return self.phases[-1]


@dataclass(frozen=True)
class Segment:
    """The part ``[start, end)`` of a billing period priced on one plan version; ``days`` are local days."""

    plan_version_id: str
    start: datetime
    end: datetime
    days: int


def _require_aware(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument("must carry a time zone (an aware datetime)", field=field)


def start(
    *,
    subscription_id: str,
    organisation_id: str,
    plan_version_id: str,
    starts_at: datetime,
    created_at: datetime,
    billing_anchor_day: int = 1,
    organisation_created_at: datetime | None = None,
) -> Subscription:
    """A new active subscription on ``plan_version_id`` from ``starts_at``.

    Raises InvalidArgument for an anchor day outside 1..28, a naive datetime, an empty plan version id, or a
    start before the organisation was created (when ``organisation_created_at`` is given)."""
    if not plan_version_id:
        raise InvalidArgument("is required", field="plan_version_id")
    if not 1 <= billing_anchor_day <= MAX_ANCHOR_DAY:
        raise InvalidArgument(
            f"is {billing_anchor_day}; expected a day of the month from 1 to {MAX_ANCHOR_DAY}",
            field="billing_anchor_day",
        )
    _require_aware(starts_at, "starts_at")
    _require_aware(created_at, "created_at")
    if organisation_created_at is not None and starts_at < organisation_created_at:
        raise InvalidArgument(
            f"is {starts_at.isoformat()}, before the organisation was created "
            f"({organisation_created_at.isoformat()}); a subscription cannot start before its organisation exists",
            field="starts_at",
        )
    return Subscription(
        id=subscription_id,
        organisation_id=organisation_id,
        billing_anchor_day=billing_anchor_day,
        status=SubscriptionStatus.ACTIVE,
        phases=(PlanPhase(plan_version_id=plan_version_id, starts_at=starts_at),),
        cancel_at_period_end=False,
        ends_at=None,
        created_at=created_at,
    )


def change_plan(
    subscription: Subscription, new_plan_version_id: str, effective_at: datetime, time_zone: str
) -> Subscription:
    """Move ``subscription`` to ``new_plan_version_id`` from ``effective_at``, the start of a day in ``time_zone``.

    The current (last) phase ends at ``effective_at`` and a new open phase begins there. Raises InvalidArgument
    if ``effective_at`` is not the start of a local day, is not after the current phase's start, or the version
    is the current one; FailedPrecondition if the subscription is canceled or ends at or before ``effective_at``.
    """
    if not new_plan_version_id:
        raise InvalidArgument("is required", field="plan_version_id")
    _require_aware(effective_at, "effective_at")
    zone_of(time_zone)
    if subscription.status is SubscriptionStatus.CANCELED:
        raise FailedPrecondition(f"subscription {subscription.id} is canceled; start a new subscription instead")
    if subscription.ends_at is not None and effective_at >= subscription.ends_at:
        raise FailedPrecondition(
            f"subscription {subscription.id} ends at {subscription.ends_at.isoformat()} (canceled at period end); "
            f"a plan change at {effective_at.isoformat()} would come after it"
        )
    if not is_start_of_day(effective_at, time_zone):
        raise InvalidArgument(
            f"is {effective_at.isoformat()}; a plan change takes effect at the start of a day in the "
            f"organisation's time zone {time_zone}",
            field="effective_at",
        )
    current = subscription.current_phase
    if new_plan_version_id == current.plan_version_id:
        raise InvalidArgument(
            f"is {new_plan_version_id}, the plan version the subscription is already on", field="plan_version_id"
        )
    if effective_at <= current.starts_at:
        raise InvalidArgument(
            f"is {effective_at.isoformat()}; it must be after the current plan version's start "
            f"({current.starts_at.isoformat()})",
            field="effective_at",
        )
    phases = (
        *subscription.phases[:-1],
        replace(current, ends_at=effective_at),
        PlanPhase(plan_version_id=new_plan_version_id, starts_at=effective_at),
    )
    return replace(subscription, phases=phases)


def cancel(subscription: Subscription, at_period_end: bool, now: datetime, time_zone: str) -> Subscription:
    """Cancel ``subscription``: now (billing stops at ``now``, status canceled), or at the end of the billing
    period containing ``now`` (it stays active until then, with ``cancel_at_period_end`` set).

    Raises FailedPrecondition if it is already canceled, or already set to end at period end and asked again."""
    _require_aware(now, "now")
    if subscription.status is SubscriptionStatus.CANCELED:
        raise FailedPrecondition(f"subscription {subscription.id} is already canceled")
    if at_period_end:
        if subscription.cancel_at_period_end:
            raise FailedPrecondition(
                f"subscription {subscription.id} is already set to end at "
                f"{subscription.ends_at.isoformat() if subscription.ends_at else 'period end'}"
            )
        period = period_containing(now, time_zone, subscription.billing_anchor_day)
        return replace(subscription, cancel_at_period_end=True, ends_at=period.end)
    return replace(subscription, status=SubscriptionStatus.CANCELED, cancel_at_period_end=False, ends_at=now)


def segments(subscription: Subscription, period: BillingPeriod) -> list[Segment]:
    """The parts of ``period`` covered by each phase of ``subscription``, clipped to its ``ends_at``.

    Empty when the subscription does not overlap the period (it starts after or ended before)."""
    result: list[Segment] = []
    for phase in subscription.phases:
        seg_start = max(phase.starts_at, period.start)
        ends = [period.end] + [e for e in (phase.ends_at, subscription.ends_at) if e is not None]
        seg_end = min(ends)
        if seg_start < seg_end:
            result.append(
                Segment(
                    plan_version_id=phase.plan_version_id,
                    start=seg_start,
                    end=seg_end,
                    days=days_between(seg_start, seg_end, period.time_zone),
                )
            )
    return result
