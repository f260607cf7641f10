"""Gathering what an invoice is computed from: the organisation, its subscriptions' segments in the period, the
plan versions in force, usage from metering and the exchange rate. The computation itself is the domain's
(:func:`services.invoicing.domain.invoice_builder.build_invoice`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from billing_runtime.errors import DomainError
from services.invoicing.domain import exchange
from services.invoicing.domain.billing_interval import IntervalFee, interval_fees
from services.invoicing.domain.billing_period import BillingPeriod, period_containing, period_for_key
from services.invoicing.domain.charges import ChargeModel
from services.invoicing.domain.coupon import CouponRedemption
from services.invoicing.domain.invoice import ExchangeRate, Party
from services.invoicing.domain.invoice_builder import BillingInput, MetricUsage, SegmentUsage
from services.invoicing.domain.late_usage import LateUsage
from services.invoicing.domain.organisation import Organisation
from services.invoicing.domain.plan import PlanVersion
from services.invoicing.domain.price_override import PriceOverride, split_by_overrides
from services.invoicing.domain.subscription import Segment, Subscription, segments


@dataclass(frozen=True)
class UsageTotalQuery:
    """An organisation's metric (by code) over [start, end); both ends timezone-aware."""

    organisation_id: str
    metric_code: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # A naive datetime would silently be read as UTC, which is not the organisation's month.
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware datetimes")


@dataclass(frozen=True)
class UsageTotal:
    """The answer to one UsageTotalQuery: QueryUsage's whole-range value. When ``metric_found`` is False the
    organisation has no active metric with the code, and value is 0 (no usage)."""

    organisation_id: str
    metric_code: str
    metric_found: bool
    metric_id: str
    # "sum", "count", "max", "min", "unique_count", "latest", "weighted_sum" (value-hours); "" when not found
    aggregation: str
    value: Decimal
    event_count: int


class UsageSource(Protocol):
    """Metering, as invoicing sees it; ``services.invoicing.adapters.metering_usage.MeteringUsage`` asks it over
    gRPC."""

    async def usage_totals(self, queries: Sequence[UsageTotalQuery]) -> list[UsageTotal]: ...

    async def event_values(
        self, organisation_id: str, metric_code: str, start: datetime, end: datetime
    ) -> list[Decimal]: ...

    async def daily_usage(
        self, organisation_id: str, metric_code: str, start: datetime, end: datetime, time_zone: str
    ) -> dict[date, Decimal]:
        """Usage per local day of ``time_zone`` over [start, end); days without usage may be absent."""
        ...


@dataclass(frozen=True)
class Supplier:
    party: Party
    state_code: str


@dataclass(frozen=True)
class PlannedInvoice:
    """An organisation's period with the segments to bill, before usage is read, and its coupon redemptions;
    the draft it prices again (a period in its grace period, or stored by a run that stopped before issuing it),
    and earlier periods' late usage to bill with it."""

    organisation: Organisation
    period: BillingPeriod
    segments: tuple[tuple[Segment, PlanVersion], ...]
    coupons: tuple[CouponRedemption, ...] = ()
    # Quarterly and yearly base fees due on this period's invoice (``domain/billing_interval``).
    interval_fees: tuple[IntervalFee, ...] = ()
    draft_id: str = ""
    late_usage: tuple[LateUsage, ...] = ()


def customer_party(organisation: Organisation) -> Party:
    details = organisation.details
    return Party(
        name=details.name,
        email=details.billing_email,
        country=details.country,
        state_code=details.state_code,
        gstin=details.gstin,
        address=details.billing_address,
    )


def billing_period(organisation: Organisation, subscriptions: Sequence[Subscription], *, period_key: str = "",
                   at: datetime | None = None) -> BillingPeriod:
    """The organisation's period keyed ``period_key`` (or containing ``at``), anchored on its latest
    subscription's anchor day."""
    anchor = subscriptions[-1].billing_anchor_day if subscriptions else 1
    time_zone = organisation.details.timezone
    if at is not None:
        return period_containing(at, time_zone, anchor)
    return period_for_key(period_key, time_zone, anchor)


def planned_invoice(
    organisation: Organisation,
    period: BillingPeriod,
    subscriptions: Sequence[Subscription],
    versions: Mapping[str, PlanVersion],
    segments: tuple[tuple[Segment, PlanVersion], ...],
    coupons: Sequence[CouponRedemption] = (),
) -> PlannedInvoice:
    """The organisation's period to bill: its plan segments (``plan_segments``, priced with its price overrides),
    its coupons, and the quarterly or yearly base fees (charges and credits) that fall on it."""
    return PlannedInvoice(
        organisation, period, segments, tuple(coupons), interval_fees(subscriptions, period, versions),
    )


def plan_segments(
    subscriptions: Sequence[Subscription],
    period: BillingPeriod,
    versions: Mapping[str, PlanVersion],
    price_overrides: Sequence[PriceOverride] = (),
) -> tuple[tuple[Segment, PlanVersion], ...]:
    """Every subscription's segments inside the period, in time order, each with its plan version as priced for
    the organisation: cut again where a version of its ``price_overrides`` starts, as at a plan change."""
    found = [segment for subscription in subscriptions for segment in segments(subscription, period)]
    found.sort(key=lambda segment: segment.start)
    parts = tuple((segment, versions[segment.plan_version_id]) for segment in found)
    return split_by_overrides(parts, price_overrides, period.time_zone)


async def read_usage(
    planned: Sequence[PlannedInvoice], usage: UsageSource, *, until: datetime | None = None
) -> list[dict[tuple[int, str], MetricUsage]]:
    """Usage per (segment index, metric code) for each planned invoice, with one call to metering for all the
    totals (and one per percentage charge that is priced event by event). ``until`` cuts ranges short (a
    projected invoice reads usage so far)."""
    queries: list[UsageTotalQuery] = []
    slots: list[tuple[int, int, str]] = []
    per_event: list[tuple[int, int, str, datetime, datetime]] = []
    for index, plan in enumerate(planned):
        for position, (segment, version) in enumerate(plan.segments):
            end = min(segment.end, until) if until is not None else segment.end
            if end <= segment.start:
                continue
            for plan_charge in version.terms.charges:
                if plan_charge.charge.model is ChargeModel.FLAT:
                    continue
                code = plan_charge.metric_code
                queries.append(UsageTotalQuery(plan.organisation.id, code, segment.start, end))
                slots.append((index, position, code))
                if plan_charge.charge.priced_per_event:
                    per_event.append((index, position, code, segment.start, end))
    result: list[dict[tuple[int, str], MetricUsage]] = [{} for _ in planned]
    totals = await usage.usage_totals(queries) if queries else []
    for (index, position, code), total in zip(slots, totals, strict=True):
        result[index][(position, code)] = MetricUsage(quantity=total.value, aggregation=total.aggregation)
    for index, position, code, start, end in per_event:
        amounts = await usage.event_values(planned[index].organisation.id, code, start, end)
        found = result[index][(position, code)]
        result[index][(position, code)] = replace(found, event_amounts=tuple(amounts))
    return result


def billing_input(
    plan: PlannedInvoice,
    usage: Mapping[tuple[int, str], MetricUsage],
    supplier: Supplier,
    rates: Sequence[ExchangeRate],
) -> BillingInput:
    """The builder's input for one organisation. FailedPrecondition when a plan's currency needs a rate that the
    rate table does not have at the end of the period."""
    organisation = plan.organisation
    currency = organisation.details.billing_currency
    rate = None
    for version in [version for _, version in plan.segments] + [fee.plan_version for fee in plan.interval_fees]:
        if version.terms.currency != currency:
            rate = exchange.require_rate(rates, version.terms.currency, currency, plan.period.end)
    return BillingInput(
        organisation_id=organisation.id,
        customer=customer_party(organisation),
        currency=currency,
        customer_country=organisation.details.country,
        customer_state_code=organisation.details.state_code,
        supplier=supplier.party,
        supplier_state_code=supplier.state_code,
        period=plan.period,
        segments=tuple(
            SegmentUsage(
                segment=segment,
                plan_version=version,
                usage={code: value for (position, code), value in usage.items() if position == index},
            )
            for index, (segment, version) in enumerate(plan.segments)
        ),
        exchange_rate=rate,
        coupons=plan.coupons,
        interval_fees=plan.interval_fees,
        late_usage=plan.late_usage,
    )


def describe(error: Exception) -> str:
    """A failure as an invoice run reports it: the domain's message, or the exception's type for the rest."""
    return str(error) if isinstance(error, DomainError) else f"internal error ({type(error).__name__})"
