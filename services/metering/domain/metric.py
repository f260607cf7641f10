"""Billable metrics: what an organisation's events add up to (code, unit, aggregation, dimension filters)."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from billing_runtime.errors import InvalidArgument

# The same format as an event's metric, so a metric's code is exactly what its events carry.
CODE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_NAME_LENGTH = 100
MAX_UNIT_LENGTH = 32
MAX_DIMENSION_LENGTH = 64
MAX_FILTERS = 16
MAX_FILTER_VALUES = 100
MAX_FILTER_VALUE_LENGTH = 256


class Aggregation(enum.StrEnum):
    SUM = "sum"
    COUNT = "count"
    MAX = "max"
    MIN = "min"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    # A gauge integrated over time in value-hours (docs/metering.md, "Gauges").
    WEIGHTED_SUM = "weighted_sum"


@dataclass(frozen=True)
class Metric:
    id: str
    organisation_id: str
    code: str
    name: str
    unit: str
    aggregation: Aggregation
    unique_dimension: str
    # dimension -> allowed values; an event counts only if it matches every entry.
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    created_at: datetime | None = None
    archived_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.archived_at is None


@dataclass(frozen=True)
class MetricDefinition:
    """A validated request to define a metric (everything but the server-assigned id and times)."""

    organisation_id: str
    code: str
    name: str
    unit: str
    aggregation: Aggregation
    unique_dimension: str
    filters: Mapping[str, tuple[str, ...]]

    def fingerprint(self) -> str:
        """Same definition, same fingerprint: what makes a retry with an idempotency key the same request."""
        canonical = {
            "organisation_id": self.organisation_id,
            "code": self.code,
            "name": self.name,
            "unit": self.unit,
            "aggregation": self.aggregation.value,
            "unique_dimension": self.unique_dimension,
            "filters": {key: sorted(values) for key, values in sorted(self.filters.items())},
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def validate_code(code: str, field_name: str = "code") -> str:
    if not code:
        raise InvalidArgument("is required", field=field_name)
    if not CODE.fullmatch(code):
        raise InvalidArgument(
            "must be a lowercase letter followed by at most 63 lowercase letters, digits, '_', '.' or '-'",
            field=field_name,
        )
    return code


def validate_dimension_name(name: str, field_name: str) -> str:
    if not name:
        raise InvalidArgument("is required", field=field_name)
    if len(name) > MAX_DIMENSION_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_DIMENSION_LENGTH} characters", field=field_name)
    return name


def _validate_filters(filters: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    if len(filters) > MAX_FILTERS:
        raise InvalidArgument(f"at most {MAX_FILTERS} dimensions may be filtered", field="filters")
    checked: dict[str, tuple[str, ...]] = {}
    for dimension, values in filters.items():
        validate_dimension_name(dimension, "filters")
        if not values:
            raise InvalidArgument(f"dimension {dimension!r} needs at least one allowed value", field="filters")
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidArgument(
                f"dimension {dimension!r} has more than {MAX_FILTER_VALUES} allowed values", field="filters"
            )
        for value in values:
            if len(value) > MAX_FILTER_VALUE_LENGTH:
                raise InvalidArgument(
                    f"values of {dimension!r} must be at most {MAX_FILTER_VALUE_LENGTH} characters", field="filters"
                )
        checked[dimension] = tuple(sorted(set(values)))
    return checked


def define_metric(
    *,
    organisation_id: str,
    code: str,
    name: str,
    unit: str,
    aggregation: Aggregation | None,
    unique_dimension: str,
    filters: Mapping[str, Sequence[str]],
) -> MetricDefinition:
    """Validate a metric definition; raises InvalidArgument naming the field at fault."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    code = validate_code(code)
    name = name.strip()
    if not name:
        raise InvalidArgument("is required", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_NAME_LENGTH} characters", field="name")
    unit = unit.strip()
    if len(unit) > MAX_UNIT_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_UNIT_LENGTH} characters", field="unit")
    if aggregation is None:
        raise InvalidArgument(
            "is required: one of " + ", ".join(a.value for a in Aggregation), field="aggregation"
        )
    if aggregation is Aggregation.UNIQUE_COUNT:
        validate_dimension_name(unique_dimension, "unique_dimension")
    elif unique_dimension:
        raise InvalidArgument("is only for the unique_count aggregation", field="unique_dimension")
    if aggregation is Aggregation.WEIGHTED_SUM and filters:
        # The value a gauge carries into a range is read from the per-project usage aggregates, which keep no
        # dimensions (and outlive the archived events): a filtered gauge could not be carried exactly.
        raise InvalidArgument(
            "are not allowed for weighted_sum: a gauge is one value per project; send each gauge under its own code",
            field="filters",
        )
    return MetricDefinition(
        organisation_id=organisation_id,
        code=code,
        name=name,
        unit=unit,
        aggregation=aggregation,
        unique_dimension=unique_dimension,
        filters=_validate_filters(filters),
    )
