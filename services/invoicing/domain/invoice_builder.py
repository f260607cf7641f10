"""Building a draft invoice from one billing period's segments and usage. Pure: the same input gives the same
invoice, which is what lets an invoice run recompute an invoice from scratch and compare before storing it.

Lines, in order, per segment (a plan change splits a period into segments): the base fee, prorated by days when
the segment is shorter than the period; then per charge of the segment's plan version its usage line (kept at
zero, so the customer sees the metric) followed by its minimum-spend or maximum-cap line when that is not zero.
Every amount is converted to the invoice currency at full precision and rounded once, on its line. A line priced by
the organisation's price override (the segment's plan version as priced for it, ``domain/price_override.py``) says
so in its description and carries the override's id and version. Then, before
tax, a discount line per coupon that applies and GST rate of the lines it discounts (``discounts``), so GST is
computed on the discounted amounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain import currencies, gst
from services.invoicing.domain.billing_interval import IntervalFee
from services.invoicing.domain.billing_period import BillingPeriod, days, zone_of
from services.invoicing.domain.charges import ZERO, ChargeModel, TierAmount
from services.invoicing.domain.coupon import CouponRedemption
from services.invoicing.domain.discounts import AppliedDiscount, DiscountBase, apply_coupons
from services.invoicing.domain.invoice import (
    ExchangeRate,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Party,
    TaxRegime,
)
from services.invoicing.domain.late_usage import LateUsage
from services.invoicing.domain.money import EXACT, decimal_text, minor_to_decimal, round_minor
from services.invoicing.domain.plan import BillingInterval, PlanCharge, PlanVersion
from services.invoicing.domain.price_override import overrides_base_fee, overrides_charge
from services.invoicing.domain.pricing import line_amounts, price_charge
from services.invoicing.domain.subscription import Segment

ONE = Decimal(1)
# Proration and unit prices divide, and a division need not terminate (999 / 31); this precision keeps far more
# digits than any rounding to minor units can see. The amounts themselves are multiplied exactly (money.EXACT).
_DIVISION = Context(prec=60)
_AVERAGE_PLACES = Decimal("1e-10")


@dataclass(frozen=True)
class MetricUsage:
    """A metric's aggregated usage in a segment; ``event_amounts`` only for percentage charges priced per event.
    ``aggregation`` is how metering aggregates the metric ("sum", "max", ...; "" when unknown): pricing ignores
    it, the usage forecast extrapolates only running totals."""

    quantity: Decimal
    event_amounts: tuple[Decimal, ...] = ()
    aggregation: str = ""


@dataclass(frozen=True)
class SegmentUsage:
    """A segment of the period, the plan version in force over it, and the usage per metric code within it."""

    segment: Segment
    plan_version: PlanVersion
    usage: Mapping[str, MetricUsage] = field(default_factory=dict)


@dataclass(frozen=True)
class BillingInput:
    """Everything an invoice is computed from; the invoice run gathers it (usage from metering, rates, config)."""

    organisation_id: str
    customer: Party
    currency: str  # the organisation's billing currency: the invoice's
    customer_country: str
    customer_state_code: str
    supplier: Party
    supplier_state_code: str
    period: BillingPeriod
    segments: tuple[SegmentUsage, ...]
    # From the plan currency to ``currency``; needed only when they differ.
    exchange_rate: ExchangeRate | None = None
    # The organisation's coupon redemptions (any state): those that apply to the period discount it.
    coupons: tuple[CouponRedemption, ...] = ()
    # Earlier periods' usage received after their invoices were priced (``domain/late_usage.py``).
    late_usage: tuple[LateUsage, ...] = ()
    # Quarterly and yearly base fees (and credits) due on this period's invoice (``domain/billing_interval``).
    interval_fees: tuple[IntervalFee, ...] = ()


def _rate_for(plan_currency: str, billing: BillingInput) -> tuple[Decimal, ExchangeRate | None]:
    if plan_currency == billing.currency:
        return ONE, None
    rate = billing.exchange_rate
    if rate is None or (rate.base_currency, rate.quote_currency) != (plan_currency, billing.currency):
        given = f"; the rate given is {rate.base_currency} to {rate.quote_currency}" if rate else ""
        raise FailedPrecondition(
            f"no exchange rate from {plan_currency} to {billing.currency} for the invoice of period "
            f"{billing.period.key}{given}; add a {plan_currency} to {billing.currency} rate effective at or before "
            f"{billing.period.end.isoformat()}"
        )
    return rate.rate, rate


def _convert(breakdown: tuple[TierAmount, ...], rate: Decimal) -> tuple[TierAmount, ...]:
    if rate == ONE:
        return breakdown
    with localcontext(EXACT):
        return tuple(
            replace(row, unit_price=row.unit_price * rate, flat_fee=row.flat_fee * rate, amount=row.amount * rate)
            for row in breakdown
        )


def _check_segment(index: int, segment: Segment, period: BillingPeriod, period_days: int) -> None:
    if not (period.start <= segment.start < segment.end <= period.end) or not 0 < segment.days <= period_days:
        raise InvalidArgument(
            f"[{segment.start.isoformat()}, {segment.end.isoformat()}) over {segment.days} days is not a part of "
            f"period {period.key} [{period.start.isoformat()}, {period.end.isoformat()}) of {period_days} days",
            field=f"segments[{index}]",
        )


class _Lines:
    """Accumulates numbered lines for one invoice."""

    def __init__(self) -> None:
        self.lines: list[InvoiceLine] = []

    def add(self, **fields: object) -> None:
        self.lines.append(InvoiceLine(number=len(self.lines) + 1, **fields))  # type: ignore[arg-type]


def _base_fee_line(out: _Lines, part: SegmentUsage, period_days: int, rate: Decimal, currency: str) -> None:
    terms = part.plan_version.terms
    if terms.base_fee == ZERO or terms.billing_interval is not BillingInterval.MONTH:
        return  # a free plan has no base fee to show; a quarter's or year's is an interval fee
    segment = part.segment
    name = f"{part.plan_version.plan_name} plan base fee"
    with localcontext(EXACT):
        fee = terms.base_fee * rate
    if segment.days >= period_days:
        quantity, unit_price, amount, description = ONE, fee, fee, name
    else:
        with localcontext(_DIVISION):
            # A day's share, shown to 10 places; the amount divides once, last.
            unit_price = (fee / period_days).quantize(_AVERAGE_PLACES, ROUND_HALF_UP).normalize()
            amount = fee * segment.days / period_days
        quantity = Decimal(segment.days)
        description = f"{name} ({segment.days} of {period_days} days)"
    by_override = overrides_base_fee(part.plan_version)
    out.add(
        kind=LineKind.BASE_FEE, description=description + _agreed(part.plan_version, by_override), quantity=quantity,
        unit_price=unit_price, amount_minor=round_minor(amount, currency), plan_version_id=part.plan_version.id,
        period_start=segment.start, period_end=segment.end, gst_rate=terms.gst_rate, sac_code=terms.sac_code,
        **_override_marks(part.plan_version, by_override),
    )


def _local_day(instant: datetime, time_zone: str) -> str:
    return instant.astimezone(zone_of(time_zone)).date().isoformat()


def _interval_fee_line(out: _Lines, item: IntervalFee, rate: Decimal, currency: str, time_zone: str) -> None:
    """A quarter's or year's base fee, or the part of it for ``item.days``; a credit is the same, negative."""
    version = item.plan_version
    terms = version.terms
    with localcontext(EXACT):
        fee = terms.interval_fee() * rate
    if fee == ZERO:
        return
    last_day = _local_day(item.interval_end - timedelta(microseconds=1), time_zone)
    interval = f"{terms.billing_interval.value} {_local_day(item.interval_start, time_zone)} to {last_day}"
    name = f"{version.plan_name} plan base fee, {interval}"
    if terms.annual_discount_percent:
        name += f", {decimal_text(terms.annual_discount_percent)}% annual discount"
    sign = -1 if item.credit else 1
    if item.whole and not item.credit:
        quantity, unit_price, description = ONE, fee, name
    else:
        with localcontext(_DIVISION):
            unit_price = (sign * fee / item.interval_days).quantize(_AVERAGE_PLACES, ROUND_HALF_UP).normalize()
        quantity = Decimal(item.days)
        what = "unused, credited" if item.credit else "charged"
        description = f"{name} ({item.days} of {item.interval_days} days {what})"
    out.add(
        kind=LineKind.BASE_FEE, description=description, quantity=quantity, unit_price=unit_price,
        amount_minor=item.amount_minor(rate, currency), plan_version_id=version.id,
        period_start=item.start, period_end=item.end, gst_rate=terms.gst_rate, sac_code=terms.sac_code,
    )


def _agreed(version: PlanVersion, priced_by_override: bool) -> str:
    """The note a line priced by the organisation's override carries (empty when the plan's price applies)."""
    override = version.price_override
    return f", {override.label}" if override is not None and priced_by_override else ""


def _override_marks(version: PlanVersion, priced_by_override: bool) -> dict[str, object]:
    override = version.price_override
    if override is None or not priced_by_override:
        return {}
    return {"price_override_id": override.id, "price_override_version": override.version}


def _charge_lines(
    out: _Lines, part: SegmentUsage, plan_charge: PlanCharge, rate: Decimal, currency: str, label: str
) -> None:
    terms = part.plan_version.terms
    charge = plan_charge.charge
    usage = part.usage.get(plan_charge.metric_code, MetricUsage(ZERO))
    price = price_charge(charge, usage.quantity, usage.event_amounts)
    amounts = line_amounts(price, charge, currency, rate)
    quantity = price.quantity
    with localcontext(_DIVISION):
        if charge.model is ChargeModel.FLAT:
            # A fixed amount per period: one of it, whatever the metric's usage was.
            quantity, unit_price = ONE, price.amount * rate
        elif quantity:
            # The average, for reading (tiers, packages and per-event terms make no single unit price); the
            # amount is exact and its breakdown explains it.
            unit_price = (price.amount * rate / quantity).quantize(_AVERAGE_PLACES, ROUND_HALF_UP).normalize()
        else:
            unit_price = charge.unit_price * rate
    by_override = overrides_charge(part.plan_version, plan_charge.metric_code)
    name = (plan_charge.display_name or plan_charge.metric_code) + label + _agreed(part.plan_version, by_override)
    common = {
        **_override_marks(part.plan_version, by_override),
        "metric_code": plan_charge.metric_code,
        "charge_model": str(charge.model),
        "plan_version_id": part.plan_version.id,
        "period_start": part.segment.start,
        "period_end": part.segment.end,
        "gst_rate": plan_charge.gst_rate if plan_charge.gst_rate is not None else terms.gst_rate,
        "sac_code": plan_charge.sac_code or terms.sac_code,
    }
    out.add(kind=LineKind.USAGE, description=name, quantity=quantity, unit_price=unit_price,
            amount_minor=amounts.usage_minor, breakdown=_convert(price.breakdown, rate), **common)
    for kind, minor, what in (
        (LineKind.MINIMUM_SPEND, amounts.minimum_spend_minor, "minimum spend"),
        (LineKind.MAXIMUM_CAP, amounts.maximum_cap_minor, "maximum amount cap"),
    ):
        if minor:
            out.add(kind=kind, description=f"{name}: {what}", quantity=ONE,
                    unit_price=minor_to_decimal(minor, currency), amount_minor=minor, **common)


_ADJUSTMENTS = (LineKind.MINIMUM_SPEND, LineKind.MAXIMUM_CAP)


def discount_bases(lines: tuple[InvoiceLine, ...], plan_codes: Mapping[str, str]) -> list[DiscountBase]:
    """The items coupons take from: each base fee line, and each usage line with the minimum-spend or maximum-cap
    line that follows it folded in (a charge's net, never negative). ``plan_codes`` by plan version id."""
    bases: list[DiscountBase] = []
    for line in lines:
        if line.kind in _ADJUSTMENTS and bases:
            bases[-1] = replace(bases[-1], amount_minor=bases[-1].amount_minor + line.amount_minor)
        else:
            bases.append(DiscountBase(line.amount_minor, line.gst_rate, line.sac_code,
                                      plan_codes.get(line.plan_version_id, "")))
    return bases


def _discount_lines(out: _Lines, bases: list[DiscountBase], applied: AppliedDiscount, currency: str) -> None:
    """One line per GST rate and SAC code of the items the discount was allocated to, in the items' order."""
    groups: dict[tuple[Decimal, str], int] = {}
    for base, taken in zip(bases, applied.allocations, strict=True):
        if taken:
            groups[(base.gst_rate, base.sac_code)] = groups.get((base.gst_rate, base.sac_code), 0) + taken
    terms = applied.redemption.coupon.terms
    name = f"{terms.name} ({terms.code}): {terms.discount.describe()}"
    rates = {rate for rate, _ in groups}
    for (rate, sac_code), taken in groups.items():
        description = name
        if len(groups) > 1:
            description += f", on the lines at GST {rate.normalize():f}%"
            description += f" with SAC {sac_code}" if len(rates) < len(groups) else ""
        out.add(kind=LineKind.DISCOUNT, description=description, quantity=ONE,
                unit_price=minor_to_decimal(-taken, currency), amount_minor=-taken, gst_rate=rate,
                sac_code=sac_code, coupon_code=terms.code, coupon_redemption_id=applied.redemption.id)


def _late_usage_lines(out: _Lines, late: tuple[LateUsage, ...], currency: str) -> None:
    """A line per earlier period, metric, GST rate and SAC code, after the discounts: a coupon of this period
    does not discount another period's usage."""
    for item in late:
        unit_price = ZERO
        if item.quantity:
            with localcontext(_DIVISION):
                unit_price = (minor_to_decimal(item.amount_minor, currency) / item.quantity).quantize(
                    _AVERAGE_PLACES, ROUND_HALF_UP).normalize()
        out.add(kind=LineKind.USAGE_ADJUSTMENT, description=f"{item.name}: late usage of period {item.period_key}",
                quantity=item.quantity, unit_price=unit_price, amount_minor=item.amount_minor,
                metric_code=item.metric_code, gst_rate=item.gst_rate, sac_code=item.sac_code,
                adjusts_period_key=item.period_key)


def build_invoice(invoice_id: str, billing: BillingInput) -> Invoice:
    """The draft invoice (no number, no dates) for ``billing``.

    Raises InvalidArgument for an invoice currency one cannot invoice in or a customer in India without a GST
    state, and FailedPrecondition when a plan's currency differs from the invoice's and ``billing`` carries no
    rate for that pair."""
    currency = billing.currency
    if not currencies.is_invoiceable(currency):
        raise InvalidArgument(f"{currency!r} is not an ISO 4217 currency one can invoice in",
                              field="billing_currency")
    regime = gst.tax_regime(billing.supplier_state_code, billing.customer_country, billing.customer_state_code)
    period_days = days(billing.period)
    used_rate: ExchangeRate | None = None
    out = _Lines()
    for item in billing.interval_fees:
        rate, row = _rate_for(item.plan_version.terms.currency, billing)
        used_rate = row or used_rate
        _interval_fee_line(out, item, rate, currency, billing.period.time_zone)
    for index, part in enumerate(billing.segments):
        _check_segment(index, part.segment, billing.period, period_days)
        rate, row = _rate_for(part.plan_version.terms.currency, billing)
        used_rate = row or used_rate
        _base_fee_line(out, part, period_days, rate, currency)
        # With a plan change, each segment's usage lines say which plan and how much of the period they cover.
        label = (
            f" ({part.plan_version.plan_name} plan, {part.segment.days} of {period_days} days)"
            if len(billing.segments) > 1
            else ""
        )
        for plan_charge in part.plan_version.terms.charges:
            _charge_lines(out, part, plan_charge, rate, currency, label)
    if billing.coupons:
        plan_codes = {part.plan_version.id: part.plan_version.plan_code for part in billing.segments}
        plan_codes |= {item.plan_version.id: item.plan_version.plan_code for item in billing.interval_fees}
        bases = discount_bases(tuple(out.lines), plan_codes)
        for applied in apply_coupons(bases, billing.coupons, billing.period.key, currency):
            _discount_lines(out, bases, applied, currency)
    _late_usage_lines(out, billing.late_usage, currency)
    lines = tuple(out.lines)
    taxes = gst.tax_lines(lines, regime)
    subtotal = sum(line.amount_minor for line in lines)
    tax = sum(t.amount_minor for t in taxes)
    return Invoice(
        id=invoice_id,
        organisation_id=billing.organisation_id,
        status=InvoiceStatus.DRAFT,
        currency=currency,
        period_start=billing.period.start,
        period_end=billing.period.end,
        period_key=billing.period.key,
        lines=lines,
        tax_lines=taxes,
        subtotal_minor=subtotal,
        tax_minor=tax,
        total_minor=subtotal + tax,
        tax_regime=regime,
        place_of_supply=gst.place_of_supply(billing.customer_country, billing.customer_state_code),
        supplier=billing.supplier,
        customer=billing.customer,
        exchange_rate=used_rate,
        notes=(gst.EXPORT_NOTE,) if regime is TaxRegime.EXPORT else (),
        time_zone=billing.period.time_zone,
    )
