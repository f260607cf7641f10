"""The catalog: plans, their versions, charges and quotas. Values only; validation is in ``plan_rules``.

Editing a plan makes a new version; a subscription stays on its version until it is moved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import TYPE_CHECKING

from services.invoicing.domain.charges import ZERO, ChargeDefinition
from services.invoicing.domain.entitlements import EntitlementValue
from services.invoicing.domain.money import EXACT

if TYPE_CHECKING:
    from services.invoicing.domain.price_override import PriceOverride

DEFAULT_SAC_CODE = "998314"  # IT design and development services; operators set their own per plan or charge


class QuotaCap(StrEnum):
    HARD = "hard"  # usage beyond the limit (and its grace) is refused where the plan enforces quotas
    SOFT = "soft"  # usage beyond the limit is allowed and billed; alerts may fire


class BillingInterval(StrEnum):
    """How often a plan's base fee recurs. Usage is always invoiced monthly, in arrears
    (``domain/billing_interval``)."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.value]


class BaseFeeTiming(StrEnum):
    """Which monthly invoice carries an interval's base fee: the one of the interval's first month (in advance) or
    of its last (in arrears). For a monthly plan both are the month itself."""

    IN_ADVANCE = "in_advance"
    IN_ARREARS = "in_arrears"


@dataclass(frozen=True)
class Quota:
    """Usage of a metric per billing period. A hard cap may allow ``grace_percent`` over the limit, for
    ``grace_hours`` after usage first went over it in the period (0: for the rest of the period)."""

    metric_code: str
    limit: Decimal
    cap: QuotaCap
    grace_percent: Decimal = ZERO
    grace_hours: int = 0


@dataclass(frozen=True)
class PlanCharge:
    """One charge per metric: how the metric's usage in a period is priced."""

    metric_code: str
    charge: ChargeDefinition
    display_name: str = ""
    # None: the plan version's rate / code applies.
    gst_rate: Decimal | None = None
    sac_code: str = ""


@dataclass(frozen=True)
class IngestRateLimit:
    """How fast each project of an organisation on the plan may send events: ``burst`` at once from idle, then
    ``events_per_second`` (ingest enforces it; ``plan_rules`` bounds both)."""

    events_per_second: int
    burst: int


@dataclass(frozen=True)
class PlanVersionTerms:
    """What a client supplies for a plan version (validated by ``plan_rules.validate_terms``)."""

    currency: str
    base_fee: Decimal = ZERO
    charges: tuple[PlanCharge, ...] = ()
    quotas: tuple[Quota, ...] = ()
    # GST rate in percent for every line of the plan unless a charge says otherwise.
    gst_rate: Decimal = Decimal(18)
    sac_code: str = DEFAULT_SAC_CODE
    description: str = ""
    # Whether ingest refuses events over the plan's hard caps (soft caps never refuse).
    enforce_quotas_at_ingest: bool = False
    # Whether customers see the plan in their plan picker and may move to it themselves.
    listed: bool = False
    # Features the plan grants, by key (sorted).
    entitlements: Mapping[str, EntitlementValue] = field(default_factory=dict)
    # None: ingest's default rate applies.
    ingest_rate_limit: IngestRateLimit | None = None
    # ``base_fee`` is per month; a quarter's fee is 3 of it, a year's 12 less ``annual_discount_percent``.
    billing_interval: BillingInterval = BillingInterval.MONTH
    base_fee_timing: BaseFeeTiming = BaseFeeTiming.IN_ARREARS
    annual_discount_percent: Decimal = ZERO

    def interval_fee(self) -> Decimal:
        """The base fee of one whole interval, exact (rounding to minor units is the invoice's, once per line):
        ``base_fee`` x months x (1 - ``annual_discount_percent`` / 100)."""
        with localcontext(EXACT):
            fee = self.base_fee * self.billing_interval.months
            if self.annual_discount_percent:
                fee = fee * (100 - self.annual_discount_percent) / 100
            return fee


@dataclass(frozen=True)
class PlanVersion:
    id: str
    plan_id: str
    plan_code: str
    plan_name: str
    version: int
    terms: PlanVersionTerms
    created_at: datetime
    # Set only on a version as priced for one organisation: its terms carry the organisation's price override
    # (``price_override.apply_override``); the catalog's versions never have one.
    price_override: PriceOverride | None = None

    def charge_for(self, metric_code: str) -> PlanCharge | None:
        return next((c for c in self.terms.charges if c.metric_code == metric_code), None)


@dataclass(frozen=True)
class Plan:
    id: str
    code: str
    name: str
    latest_version: PlanVersion
    created_at: datetime
