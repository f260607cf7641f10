"""Alert rule validation: every bound refused at the door, naming the field."""

from __future__ import annotations

import hashlib
import json

import pytest

from billing_runtime.errors import InvalidArgument
from services.metering.domain.alerts import AlertKind, CostBasis, RuleRequest, ThresholdBasis, define_rule


def threshold(**fields) -> RuleRequest:
    base = dict(organisation_id="org_1", kind=AlertKind.THRESHOLD, name="API calls", metric_code="api.calls",
                basis=ThresholdBasis.ABSOLUTE, levels=("1000", "5000"))
    return RuleRequest(**{**base, **fields})


def spike(**fields) -> RuleRequest:
    base = dict(organisation_id="org_1", kind=AlertKind.SPIKE, name="spike", metric_code="api.calls",
                window_seconds=3600, baseline_seconds=7 * 86400, factor="3", min_volume="100")
    return RuleRequest(**{**base, **fields})


def cost(**fields) -> RuleRequest:
    base = dict(organisation_id="org_1", kind=AlertKind.COST, name="budget", budget="5000.50")
    return RuleRequest(**{**base, **fields})


def define(request: RuleRequest, currency: str = "INR", minor: int = 2):
    return define_rule(request, currency=currency, currency_minor_units=minor)


def refused(request: RuleRequest, field: str, currency: str = "INR", minor: int = 2) -> str:
    with pytest.raises(InvalidArgument) as caught:
        define(request, currency, minor)
    assert caught.value.field == field
    return caught.value.message


def test_a_threshold_rule_keeps_its_levels_normalised() -> None:
    rule = define(threshold(levels=("1000.0", " 5e3 ")))
    assert rule.levels == ("1000", "5000")
    assert rule.kind is AlertKind.THRESHOLD and rule.currency == ""


@pytest.mark.parametrize(
    ("levels", "why"),
    [
        ((), "at least one"),
        (tuple(str(n) for n in range(1, 12)), "at most 10"),
        (("10", "5"), "ascending"),
        (("5", "5"), "ascending"),
        (("0",), "greater than 0"),
        (("-1",), "greater than 0"),
        (("NaN",), "finite"),
        (("ten",), "decimal"),
        (("1" * 41,), "at most 40 characters"),
    ],
)
def test_threshold_levels_out_of_bounds_are_refused(levels, why) -> None:
    assert why in refused(threshold(levels=levels), "rule.levels")


def test_quota_percent_levels_go_up_to_1000() -> None:
    assert define(threshold(basis=ThresholdBasis.QUOTA_PERCENT, levels=("80", "100", "1000"))).levels[-1] == "1000"
    assert "1000" in refused(threshold(basis=ThresholdBasis.QUOTA_PERCENT, levels=("80", "1000.5")), "rule.levels")
    # Absolute levels are amounts, not percents: above 1000 is fine.
    assert define(threshold(levels=("5000",))).levels == ("5000",)


def test_threshold_needs_metric_and_basis_and_refuses_other_kinds_fields() -> None:
    refused(threshold(metric_code=""), "rule.metric_code")
    refused(threshold(metric_code="API"), "rule.metric_code")
    refused(threshold(basis=None), "rule.basis")
    refused(threshold(budget="10"), "rule.budget")
    refused(threshold(window_seconds=900), "rule.window_seconds")


def test_common_fields() -> None:
    refused(threshold(organisation_id=""), "rule.organisation_id")
    refused(threshold(kind=None), "rule.kind")
    refused(threshold(name="  "), "rule.name")
    refused(threshold(name="x" * 101), "rule.name")
    refused(threshold(project_id="p" * 65), "rule.project_id")


def test_spike_bounds() -> None:
    rule = define(spike())
    assert (rule.window_seconds, rule.baseline_seconds, rule.factor, rule.min_volume) == (3600, 604800, "3", "100")
    assert define(spike(min_volume="")).min_volume == "0"
    for window in (0, 600, 899, 1000, 86400 + 900):
        refused(spike(window_seconds=window, baseline_seconds=86400 * 2), "rule.window_seconds")
    refused(spike(baseline_seconds=1800), "rule.baseline_seconds")  # shorter than the window
    refused(spike(baseline_seconds=3600 * 24 * 35 + 3600), "rule.baseline_seconds")  # past 35 days
    refused(spike(baseline_seconds=5400), "rule.baseline_seconds")  # not a whole number of windows
    assert define(spike(baseline_seconds=35 * 86400)).baseline_seconds == 35 * 86400
    for factor in ("1", "0.5", "1000.01", ""):
        refused(spike(factor=factor), "rule.factor")
    assert define(spike(factor="1000")).factor == "1000"
    refused(spike(min_volume="-1"), "rule.min_volume")
    refused(spike(levels=("1",)), "rule.levels")


def test_cost_budget_in_the_organisations_currency() -> None:
    rule = define(cost())
    assert (rule.budget, rule.currency, rule.levels) == ("5000.5", "INR", ("100",))
    assert define(cost(levels=("50", "80", "100"))).levels == ("50", "80", "100")
    assert "JPY" in refused(cost(budget="10.5"), "rule.budget", "JPY", 0)
    refused(cost(budget="10.505"), "rule.budget")
    assert define(cost(budget="10.500")).budget == "10.5"  # trailing zeros are not decimals that carry value
    refused(cost(budget="0"), "rule.budget")
    refused(cost(budget=""), "rule.budget")
    refused(cost(project_id="prj_1"), "rule.project_id")
    refused(cost(metric_code="api.calls"), "rule.metric_code")
    refused(cost(levels=("2000",)), "rule.levels")


def test_a_cost_rule_compares_the_invoice_so_far_unless_it_asks_for_the_forecast() -> None:
    assert define(cost()).cost_basis is CostBasis.TO_DATE
    assert define(cost(cost_basis=CostBasis.FORECAST)).cost_basis is CostBasis.FORECAST
    assert define(cost(cost_basis=CostBasis.TO_DATE)).cost_basis is CostBasis.TO_DATE
    refused(threshold(cost_basis=CostBasis.FORECAST), "rule.cost_basis")
    refused(spike(cost_basis=CostBasis.TO_DATE), "rule.cost_basis")
    assert define(threshold()).cost_basis is None and define(spike()).cost_basis is None


def test_the_default_cost_basis_keeps_the_fingerprint_of_rules_made_before_it_existed() -> None:
    # The fingerprint of a cost rule as it was computed before cost_basis existed (no such key).
    before = hashlib.sha256(json.dumps({
        "organisation_id": "org_1", "project_id": "", "kind": "cost", "name": "budget", "metric_code": "",
        "basis": "", "levels": ["100"], "window_seconds": 0, "baseline_seconds": 0, "factor": "", "min_volume": "",
        "budget": "5000.5"}, sort_keys=True).encode()).hexdigest()
    assert define(cost()).fingerprint() == before
    assert define(cost(cost_basis=CostBasis.FORECAST)).fingerprint() != before


def test_fingerprint_tells_requests_apart() -> None:
    assert define(threshold()).fingerprint() == define(threshold()).fingerprint()
    assert define(threshold()).fingerprint() != define(threshold(levels=("1000",))).fingerprint()
