"""Price overrides: their terms checked like a plan's charges, the version in force, a plan version as priced for
the organisation, and a period cut where a version starts (prorated like a plan change)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.billing_period import start_of_day, zone_of
from services.invoicing.domain.charges import ChargeModel
from services.invoicing.domain.invoice import LineKind
from services.invoicing.domain.invoice_builder import SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.price_override import (
    PriceOverride,
    PriceOverrideTerms,
    apply_override,
    in_force,
    override_terms_to_dict,
    split_by_overrides,
    validate_override_terms,
)
from tests.unit.services.invoicing.domain.invoice_fixtures import (
    CREATED,
    NOV,
    D,
    billing,
    graduated,
    per_unit,
    plan_version,
    usage,
    whole,
)

PLAN = plan_version("pv", "Standard", "INR", "999", (per_unit("api_calls", "0.50"), graduated(
    "storage_gb", ("100", "2"), (None, "1"))))


def override(version: int, effective_from: datetime, raw: dict | None, plan_id: str = "plan_standard") -> PriceOverride:
    terms = PriceOverrideTerms("INR") if raw is None else validate_override_terms(raw, PLAN.terms)
    return PriceOverride(id=f"pov_{version}", organisation_id="org_1", plan_id=plan_id, plan_code="standard",
                         version=version, effective_from=effective_from, terms=terms, created_at=CREATED)


def day(number: int) -> datetime:
    return start_of_day(NOV.start.astimezone(zone_of(NOV.time_zone)).date() + timedelta(days=number - 1), NOV.time_zone)


AGREED = {"base_fee": "500", "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit",
                                                                                  "unit_price": "0.25"}}]}


def test_terms_are_checked_like_a_plans_charges_and_round_trip() -> None:
    terms = validate_override_terms(AGREED, PLAN.terms)
    assert terms.currency == "INR" and terms.base_fee == D(500)
    assert terms.charges["api_calls"].model is ChargeModel.PER_UNIT
    assert validate_override_terms(override_terms_to_dict(terms), None) == terms


@pytest.mark.parametrize(("raw", "field"), [
    ({"currency": "USD", "base_fee": "1"}, "currency"),
    ({"base_fee": "-1"}, "base_fee"),
    ({}, "charges"),
    ({"charges": [{"metric_code": "gpu_hours", "charge": {"model": "flat", "flat_amount": "1"}}]},
     "charges[0].metric_code"),
    ({"charges": [{"metric_code": "storage_gb", "charge": {"model": "graduated", "tiers": [
        {"up_to": "10", "unit_price": "1"}, {"up_to": "5", "unit_price": "1"}, {"up_to": None}]}}]},
     "charges[0].charge.tiers[1].up_to"),
    ({"charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "1"}},
                  {"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "2"}}]},
     "charges[1].metric_code"),
    ({"base_fee": "1", "seats": 3}, "seats"),
])
def test_a_bad_override_is_refused_naming_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_override_terms(raw, PLAN.terms)
    assert refused.value.field == field


def test_the_latest_version_started_is_in_force_and_a_clearing_means_none() -> None:
    versions = [override(1, day(1), AGREED), override(2, day(11), {"base_fee": "700"}), override(3, day(21), None)]
    assert in_force(versions, "plan_standard", day(1) - timedelta(seconds=1)) is None
    assert in_force(versions, "plan_standard", day(10)).version == 1  # type: ignore[union-attr]
    assert in_force(versions, "plan_standard", day(11)).version == 2  # type: ignore[union-attr]
    assert in_force(versions, "plan_standard", day(25)) is None
    assert in_force(versions, "plan_other", day(12)) is None


def test_applied_it_replaces_what_it_names_only_and_only_on_its_plan_in_its_currency() -> None:
    agreed = override(1, day(1), AGREED)
    priced = apply_override(PLAN, agreed)
    assert priced.terms.base_fee == D(500) and priced.price_override == agreed
    assert priced.terms.charges[0].charge.unit_price == D("0.25")
    assert priced.terms.charges[1] == PLAN.terms.charges[1]
    assert priced.id == PLAN.id and priced.terms.gst_rate == PLAN.terms.gst_rate
    assert apply_override(replace(PLAN, plan_id="plan_other"), agreed).price_override is None
    assert apply_override(replace(PLAN, terms=replace(PLAN.terms, currency="USD")), agreed).price_override is None


def test_the_invoice_says_which_lines_the_override_priced() -> None:
    agreed = override(2, day(1) - timedelta(days=3), AGREED)
    ((segment, version),) = split_by_overrides([(whole(), PLAN)], [agreed], NOV.time_zone)
    invoice = build_invoice("inv", billing((SegmentUsage(segment, version, usage(api_calls="1000",
                                                                                   storage_gb="10")),)))
    validate_invoice(invoice)
    base, calls, storage = invoice.lines
    assert base.kind is LineKind.BASE_FEE and base.amount_minor == 500_00
    assert base.description == "Standard plan base fee, price agreed for this organisation (override v2)"
    assert (base.price_override_id, base.price_override_version) == ("pov_2", 2)
    assert calls.amount_minor == 250_00 and calls.price_override_version == 2
    assert "override v2" in calls.description
    assert storage.amount_minor == 20_00 and storage.price_override_version == 0
    assert "override" not in storage.description


def test_a_change_mid_period_cuts_it_and_prorates_like_a_plan_change() -> None:
    # 30 days of November: the plan's prices for 10 days, v1 for 10, v2 (base fee only) for 10.
    versions = [override(1, day(11), AGREED), override(2, day(21), {"base_fee": "300"})]
    parts = split_by_overrides([(whole(), PLAN)], versions, NOV.time_zone)
    assert [(s.start, s.end, s.days) for s, _ in parts] == [
        (NOV.start, day(11), 10), (day(11), day(21), 10), (day(21), NOV.end, 10)]
    assert [v.price_override.version if v.price_override else 0 for _, v in parts] == [0, 1, 2]
    segments = tuple(SegmentUsage(s, v, usage(api_calls="100", storage_gb="0")) for s, v in parts)
    invoice = build_invoice("inv", billing(segments))
    validate_invoice(invoice)
    bases = [line.amount_minor for line in invoice.lines if line.kind is LineKind.BASE_FEE]
    assert bases == [333_00, 166_67, 100_00]  # 999 x 10/30, 500 x 10/30, 300 x 10/30
    calls = [line.amount_minor for line in invoice.lines if line.metric_code == "api_calls"]
    assert calls == [50_00, 25_00, 50_00]  # v2 names no api_calls price: the plan's again
    assert invoice.lines[1].description == "api_calls (Standard plan, 10 of 30 days)"


def test_versions_that_change_nothing_inside_a_segment_do_not_cut_it() -> None:
    versions = [override(1, day(1) - timedelta(days=40), None), override(2, day(11), None)]
    assert split_by_overrides([(whole(), PLAN)], versions, NOV.time_zone) == ((whole(), PLAN),)
    assert split_by_overrides([(whole(), PLAN)], [], NOV.time_zone) == ((whole(), PLAN),)


def test_the_worked_example_of_docs_pricing_md() -> None:
    plan = plan_version("pv", "Standard", "INR", "999", (per_unit("api_calls", "0.05", display_name="API calls"),))
    v1 = PriceOverride("pov_1", "org_1", plan.plan_id, "standard", 1, day(1), validate_override_terms(
        {"base_fee": "600", "charges": [{"metric_code": "api_calls", "charge": {"model": "graduated", "tiers": [
            {"up_to": "100000", "unit_price": "0.04"}, {"up_to": None, "unit_price": "0.02"}]}}]}, plan.terms), CREATED)
    v2 = PriceOverride("pov_2", "org_1", plan.plan_id, "standard", 2, day(21), validate_override_terms(
        {"base_fee": "450", "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit",
                                                                                "unit_price": "0.03"}}]},
        plan.terms), CREATED)
    parts = split_by_overrides([(whole(), plan)], [v1, v2], NOV.time_zone)
    used = (usage(api_calls="150000"), usage(api_calls="60000"))
    invoice = build_invoice("inv", billing(tuple(SegmentUsage(s, v, u) for (s, v), u in zip(parts, used,
                                                                                            strict=True))))
    validate_invoice(invoice)
    assert [(line.description, line.amount_minor) for line in invoice.lines] == [
        ("Standard plan base fee (20 of 30 days), price agreed for this organisation (override v1)", 400_00),
        ("API calls (Standard plan, 20 of 30 days), price agreed for this organisation (override v1)", 5000_00),
        ("Standard plan base fee (10 of 30 days), price agreed for this organisation (override v2)", 150_00),
        ("API calls (Standard plan, 10 of 30 days), price agreed for this organisation (override v2)", 1800_00),
    ]
    assert (invoice.subtotal_minor, [t.amount_minor for t in invoice.tax_lines], invoice.total_minor) == (
        7350_00, [661_50, 661_50], 8673_00)
    own = build_invoice("inv", billing((SegmentUsage(whole(), plan, usage(api_calls="210000")),)))
    assert own.subtotal_minor == 11499_00
