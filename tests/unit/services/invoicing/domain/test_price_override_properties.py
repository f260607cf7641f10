"""An override that repeats the plan's own prices, in force over the whole period, gives the same invoice to the
minor unit as the plan itself (hypothesis, in JPY, INR and KWD): the lines differ only in saying who agreed the
price."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.charge_rules import charge_to_dict
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel, Tier
from services.invoicing.domain.currencies import minor_units
from services.invoicing.domain.invoice_builder import MetricUsage, SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.plan import PlanCharge
from services.invoicing.domain.price_override import PriceOverride, split_by_overrides, validate_override_terms
from tests.unit.services.invoicing.domain.invoice_fixtures import CREATED, NOV, D, billing, plan_version, whole

CURRENCIES = ("JPY", "INR", "KWD")


def money(currency: str) -> st.SearchStrategy:
    return st.decimals(min_value=0, max_value=100_000, places=minor_units(currency) + 2, allow_nan=False,
                       allow_infinity=False)


@st.composite
def charges(draw: st.DrawFn, currency: str, metric: str) -> PlanCharge:
    model = draw(st.sampled_from([ChargeModel.PER_UNIT, ChargeModel.GRADUATED, ChargeModel.VOLUME, ChargeModel.FLAT]))
    if model is ChargeModel.PER_UNIT:
        charge = ChargeDefinition(model=model, unit_price=draw(money(currency)))
    elif model is ChargeModel.FLAT:
        charge = ChargeDefinition(model=model, flat_amount=draw(money(currency)))
    else:
        bounds = sorted(set(draw(st.lists(st.integers(1, 10_000), min_size=0, max_size=3))))
        tiers = tuple(Tier(up_to=D(b), unit_price=draw(money(currency)), flat_fee=draw(money(currency)))
                      for b in bounds) + (Tier(up_to=None, unit_price=draw(money(currency))),)
        charge = ChargeDefinition(model=model, tiers=tiers)
    return PlanCharge(metric, charge)


@given(st.sampled_from(CURRENCIES), st.data())
def test_an_override_equal_to_the_plans_price_gives_the_identical_invoice(currency: str, data: st.DataObject) -> None:
    metrics = ("api_calls", "storage_gb", "seats")[: data.draw(st.integers(1, 3))]
    plan = plan_version("pv", "Standard", currency, str(data.draw(money(currency))),
                        tuple(data.draw(charges(currency, metric)) for metric in metrics))
    named = data.draw(st.lists(st.sampled_from(metrics), unique=True))
    raw = {"charges": [{"metric_code": c.metric_code, "charge": charge_to_dict(c.charge)}
                       for c in plan.terms.charges if c.metric_code in named]}
    if data.draw(st.booleans()) or not named:
        raw["base_fee"] = str(plan.terms.base_fee)
    override = PriceOverride("pov_1", "org_1", plan.plan_id, plan.plan_code, 1, NOV.start - timedelta(days=5),
                             validate_override_terms(raw, plan.terms), CREATED)
    used = {m: MetricUsage(data.draw(st.decimals(min_value=0, max_value=10**6, places=3))) for m in metrics}
    ((segment, priced),) = split_by_overrides([(whole(), plan)], [override], NOV.time_zone)
    own = build_invoice("inv", billing((SegmentUsage(whole(), plan, used),), currency=currency))
    agreed = build_invoice("inv", billing((SegmentUsage(segment, priced, used),), currency=currency))
    validate_invoice(agreed)
    assert (agreed.subtotal_minor, agreed.tax_minor, agreed.total_minor, agreed.tax_lines) == (
        own.subtotal_minor, own.tax_minor, own.total_minor, own.tax_lines)
    plain = [replace(line, description="", price_override_id="", price_override_version=0) for line in agreed.lines]
    assert plain == [replace(line, description="") for line in own.lines]
    assert any(line.price_override_version == 1 for line in agreed.lines) or plan.terms.base_fee == 0 and not named
