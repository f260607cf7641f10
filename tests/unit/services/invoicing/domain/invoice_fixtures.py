"""Plan versions and billing inputs shared by the invoice builder tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from services.invoicing.domain.billing_period import BillingPeriod, period_for_key
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel, Tier
from services.invoicing.domain.invoice import ExchangeRate, Party
from services.invoicing.domain.invoice_builder import BillingInput, MetricUsage, SegmentUsage
from services.invoicing.domain.plan import PlanCharge, PlanVersion, PlanVersionTerms
from services.invoicing.domain.subscription import Segment

D = Decimal
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
NOV = period_for_key("2026-11", "Asia/Kolkata")  # 30 days
SUPPLIER = Party(name="Billing Platform Demo Pvt Ltd", country="IN", state_code="29")


def plan_version(
    version_id: str, name: str, currency: str, base_fee: str, charges: tuple[PlanCharge, ...],
    gst_rate: str = "18",
) -> PlanVersion:
    terms = PlanVersionTerms(currency=currency, base_fee=D(base_fee), charges=charges, gst_rate=D(gst_rate))
    return PlanVersion(id=version_id, plan_id=f"plan_{name.lower()}", plan_code=name.lower(), plan_name=name,
                       version=1, terms=terms, created_at=CREATED)


def per_unit(metric: str, unit_price: str, **options: object) -> PlanCharge:
    extra = {k: v for k, v in options.items() if k in ("display_name", "gst_rate", "sac_code")}
    charge_options = {k: v for k, v in options.items() if k not in extra}
    return PlanCharge(metric, ChargeDefinition(model=ChargeModel.PER_UNIT, unit_price=D(unit_price), **charge_options),
                      **extra)


def flat(metric: str, amount: str) -> PlanCharge:
    return PlanCharge(metric, ChargeDefinition(model=ChargeModel.FLAT, flat_amount=D(amount)))


def graduated(metric: str, *tiers: tuple[str | None, str]) -> PlanCharge:
    return PlanCharge(metric, ChargeDefinition(
        model=ChargeModel.GRADUATED,
        tiers=tuple(Tier(up_to=None if up_to is None else D(up_to), unit_price=D(price)) for up_to, price in tiers),
    ))


def whole(period: BillingPeriod = NOV, version: str = "pv") -> Segment:
    return Segment(version, period.start, period.end, 30)


def billing(
    segments: tuple[SegmentUsage, ...], *, currency: str = "INR", country: str = "IN", state: str = "29",
    rate: ExchangeRate | None = None, period: BillingPeriod = NOV,
) -> BillingInput:
    return BillingInput(
        organisation_id="org_1", customer=Party(name="Acme", country=country, state_code=state), currency=currency,
        customer_country=country, customer_state_code=state, supplier=SUPPLIER, supplier_state_code="29",
        period=period, segments=segments, exchange_rate=rate,
    )


def usage(**quantities: str) -> Mapping[str, MetricUsage]:
    return {metric: MetricUsage(D(quantity)) for metric, quantity in quantities.items()}
