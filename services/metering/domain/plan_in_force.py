"""What an organisation is on at a moment, as metering needs it: the billing period, the plan's quotas and
entitlements, and the organisation's entitlement overrides.

Invoicing owns all of it (``GetPlanInForce``); metering keeps a short-lived copy to check quotas, answer
entitlements and place alert levels in billing periods. Values only: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class Cap(StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True)
class QuotaTerms:
    """A plan's quota for one metric: ``limit`` per billing period, hard or soft, with an optional grace
    allowance (hard caps only): up to ``grace_percent`` over the limit, for ``grace_hours`` after usage first went
    over it in the period (0: for the rest of the period)."""

    metric_code: str
    limit: Decimal
    cap: Cap
    grace_percent: Decimal = Decimal(0)
    grace_hours: int = 0


# A feature's value: granted or not, a number (seats), or a word (support tier).
EntitlementValue = bool | Decimal | str


@dataclass(frozen=True)
class PlanInForce:
    """An organisation at a moment. ``found`` is False when no subscription is in force: then there are no
    quotas or plan entitlements, only overrides, and the period is the calendar month in the organisation's time
    zone (so alert levels still have a period to fire once in)."""

    organisation_id: str
    currency: str
    timezone: str
    found: bool
    period_start: datetime
    period_end: datetime
    # Until when this answer holds at the latest: the period's end, or earlier when the plan version in force
    # ends inside the period (a scheduled change or cancellation).
    valid_until: datetime
    subscription_id: str = ""
    plan_code: str = ""
    plan_version: int = 0
    plan_version_id: str = ""
    enforce_quotas_at_ingest: bool = False
    quotas: Mapping[str, QuotaTerms] = field(default_factory=dict)
    entitlements: Mapping[str, EntitlementValue] = field(default_factory=dict)
    overrides: Mapping[str, EntitlementValue] = field(default_factory=dict)

    def quota(self, metric_code: str) -> QuotaTerms | None:
        return self.quotas.get(metric_code)

    def holds_at(self, moment: datetime) -> bool:
        return self.period_start <= moment < self.valid_until


class PlanDirectory(Protocol):
    """Asks invoicing what an organisation is on (cached by the adapter; invalidated when invoicing announces a
    change)."""

    async def plan_in_force(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        """None when invoicing does not know the organisation. Raises Unavailable when invoicing cannot answer
        and nothing cached covers ``at``."""
        ...
