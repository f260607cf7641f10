from __future__ import annotations

import pytest

from billing_runtime.errors import InvalidArgument
from services.metering.domain.metric import Aggregation, define_metric


def definition(**overrides):
    values = {
        "organisation_id": "org_1",
        "code": "api.calls",
        "name": " API calls ",
        "unit": "requests",
        "aggregation": Aggregation.SUM,
        "unique_dimension": "",
        "filters": {},
        **overrides,
    }
    return define_metric(**values)


def test_a_valid_definition_is_normalised() -> None:
    metric = definition(filters={"region": ["us", "in", "us"]})
    assert metric.name == "API calls"
    assert metric.filters == {"region": ("in", "us")}


@pytest.mark.parametrize("code", ["a", "api.calls", "gpu-seconds_v2", "x" * 64])
def test_codes_in_the_event_metric_format_are_accepted(code: str) -> None:
    assert definition(code=code).code == code


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"organisation_id": ""}, "organisation_id"),
        ({"code": ""}, "code"),
        ({"code": "Api"}, "code"),
        ({"code": "_api"}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"unit": "u" * 33}, "unit"),
        ({"aggregation": None}, "aggregation"),
        ({"aggregation": Aggregation.UNIQUE_COUNT}, "unique_dimension"),
        ({"unique_dimension": "user"}, "unique_dimension"),
        ({"filters": {"region": []}}, "filters"),
        ({"filters": {"": ["x"]}}, "filters"),
        ({"filters": {f"d{i}": ["x"] for i in range(17)}}, "filters"),
        ({"filters": {"region": ["x" * 257]}}, "filters"),
        # A gauge is one value per project: its carried value comes from aggregates that keep no dimensions.
        ({"aggregation": Aggregation.WEIGHTED_SUM, "filters": {"region": ["eu"]}}, "filters"),
        ({"aggregation": Aggregation.WEIGHTED_SUM, "unique_dimension": "disk"}, "unique_dimension"),
    ],
)
def test_invalid_definitions_name_their_field(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        definition(**overrides)
    assert caught.value.field == field


def test_a_gauge_is_defined_without_filters() -> None:
    gauge = definition(aggregation=Aggregation.WEIGHTED_SUM, unit="GB")
    assert gauge.aggregation is Aggregation.WEIGHTED_SUM and gauge.filters == {}
    assert gauge.fingerprint() != definition(aggregation=Aggregation.LATEST, unit="GB").fingerprint()


def test_the_fingerprint_ignores_the_order_of_filter_values_but_not_their_content() -> None:
    a = definition(filters={"region": ["in", "us"], "tier": ["pro"]})
    b = definition(filters={"tier": ["pro"], "region": ["us", "in"]})
    c = definition(filters={"region": ["in"], "tier": ["pro"]})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert definition().fingerprint() != definition(aggregation=Aggregation.MAX).fingerprint()
