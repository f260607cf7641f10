"""Alert rules: what an organisation watches (usage thresholds, spikes, projected cost) and the bounds a rule
must keep to be accepted. Pure: validation raises InvalidArgument naming the field; nothing here does I/O.

Bounds, decided once:
- THRESHOLD: 1 to 10 levels, ascending, unique, positive; as percents of a quota (QUOTA_PERCENT) at most 1000.
- SPIKE: the window is 15 minutes to a day, a whole number of 15-minute buckets, so every window aligned on the
  UTC epoch is a union of whole usage buckets; the baseline is a whole number of windows, from one window up to
  35 days (ingest accepts events up to 35 days old, so older history never changes); factor in (1, 1000];
  min_volume >= 0.
- CREDIT_BALANCE: a threshold of 1 to 10**18 - 1 minor units of the organisation's billing currency; per
  organisation only. Fires when invoicing's available prepaid credit balance is below it, once per balance episode
  (the episode starts at the organisation's latest grant: a top-up lets it fire again).
- COST: budget > 0 in the organisation's billing currency with at most its minor-unit decimals (INR 2, JPY 0);
  levels are percents of it (default 100), 1 to 1000; per organisation only (no project). The cost basis is the
  invoice so far (TO_DATE, the default) or the forecast of the period's end (FORECAST).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from billing_runtime.errors import InvalidArgument
from services.metering.domain.metric import validate_code
from services.metering.domain.usage import format_decimal

MAX_LEVELS = 10
MAX_PERCENT = Decimal(1000)
MAX_LIVE_RULES_PER_ORGANISATION = 100
MAX_NAME_LENGTH = 100
MAX_PROJECT_ID_LENGTH = 64
BUCKET_SECONDS = 900
MIN_WINDOW_SECONDS = BUCKET_SECONDS
MAX_WINDOW_SECONDS = 86_400
MAX_BASELINE_SECONDS = 35 * 86_400
MAX_FACTOR = Decimal(1000)
# Decimal inputs: at most this many characters, so nothing unbounded is stored or echoed.
MAX_DECIMAL_LENGTH = 40
# Largest amount accepted anywhere in a rule: far above any usage or budget, small enough for exact arithmetic.
MAX_AMOUNT = Decimal(10) ** 18
MAX_CREDIT_THRESHOLD_MINOR = 10**18 - 1


class AlertKind(enum.StrEnum):
    THRESHOLD = "threshold"
    SPIKE = "spike"
    COST = "cost"
    CREDIT_BALANCE = "credit_balance"


class ThresholdBasis(enum.StrEnum):
    ABSOLUTE = "absolute"
    QUOTA_PERCENT = "quota_percent"


class CostBasis(enum.StrEnum):
    """What a cost rule compares with its budget: the projected invoice of the period so far, or the forecast of
    the period's end (invoicing's GetProjectedInvoice answers both)."""

    TO_DATE = "to_date"
    FORECAST = "forecast"


@dataclass(frozen=True)
class RuleDefinition:
    """A validated request for a rule: everything but the server-assigned id and times. Decimal fields are kept
    as normalised strings (``"80"``, ``"1.5"``), as the rule states them."""

    organisation_id: str
    project_id: str
    kind: AlertKind
    name: str
    metric_code: str = ""
    basis: ThresholdBasis | None = None
    levels: tuple[str, ...] = ()
    window_seconds: int = 0
    baseline_seconds: int = 0
    factor: str = ""
    min_volume: str = ""
    budget: str = ""
    currency: str = ""
    cost_basis: CostBasis | None = None
    credit_threshold_minor: int = 0

    def fingerprint(self) -> str:
        """Same request, same fingerprint: what makes a retry with an idempotency key the same request."""
        canonical = {
            "organisation_id": self.organisation_id,
            "project_id": self.project_id,
            "kind": self.kind.value,
            "name": self.name,
            "metric_code": self.metric_code,
            "basis": self.basis.value if self.basis else "",
            "levels": list(self.levels),
            "window_seconds": self.window_seconds,
            "baseline_seconds": self.baseline_seconds,
            "factor": self.factor,
            "min_volume": self.min_volume,
            "budget": self.budget,
        }
        if self.cost_basis is CostBasis.FORECAST:
            # Only when not the default: rules stored before the basis existed keep their fingerprints.
            canonical["cost_basis"] = self.cost_basis.value
        if self.credit_threshold_minor:
            canonical["credit_threshold_minor"] = self.credit_threshold_minor
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class AlertRule(RuleDefinition):
    id: str = ""
    created_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.deleted_at is None

    @property
    def level_values(self) -> tuple[Decimal, ...]:
        return tuple(Decimal(level) for level in self.levels)


@dataclass(frozen=True)
class RuleRequest:
    """What a client asks for, unchecked (decimals as the strings sent)."""

    organisation_id: str
    kind: AlertKind | None
    name: str
    project_id: str = ""
    metric_code: str = ""
    basis: ThresholdBasis | None = None
    levels: Sequence[str] = field(default_factory=tuple)
    window_seconds: int = 0
    baseline_seconds: int = 0
    factor: str = ""
    min_volume: str = ""
    budget: str = ""
    cost_basis: CostBasis | None = None
    credit_threshold_minor: int = 0


def parse_decimal(text: str, field_name: str) -> Decimal:
    """A finite decimal written plainly ("80", "1.5"); InvalidArgument naming the field otherwise."""
    if not text:
        raise InvalidArgument("is required", field=field_name)
    if len(text) > MAX_DECIMAL_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_DECIMAL_LENGTH} characters", field=field_name)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidArgument("must be a decimal number such as '80' or '1.5'", field=field_name) from None
    if not value.is_finite():
        raise InvalidArgument("must be a finite decimal number", field=field_name)
    if abs(value) > MAX_AMOUNT:
        raise InvalidArgument(f"must be at most {MAX_AMOUNT:.0f} in size", field=field_name)
    return value


def _levels(texts: Sequence[str], *, percent: bool, field_name: str = "levels") -> tuple[str, ...]:
    if not texts:
        raise InvalidArgument("at least one level is required", field=field_name)
    if len(texts) > MAX_LEVELS:
        raise InvalidArgument(f"at most {MAX_LEVELS} levels", field=field_name)
    values = [parse_decimal(text, field_name) for text in texts]
    for value in values:
        if value <= 0:
            raise InvalidArgument("every level must be greater than 0", field=field_name)
        if percent and value > MAX_PERCENT:
            raise InvalidArgument(f"percent levels must be at most {MAX_PERCENT}", field=field_name)
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise InvalidArgument("levels must be ascending and unique", field=field_name)
    return tuple(format_decimal(value) for value in values)


def minor_digits(value: Decimal) -> int:
    """Digits after the decimal point that carry a value: 10.50 -> 1, 10 -> 0."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


def define_rule(request: RuleRequest, *, currency: str, currency_minor_units: int) -> RuleDefinition:
    """Validate a rule request for an organisation billed in ``currency``; raises InvalidArgument naming the
    field at fault. Fields that do not apply to the kind must be left empty."""
    if not request.organisation_id:
        raise InvalidArgument("is required", field="rule.organisation_id")
    if request.kind is None:
        raise InvalidArgument("is required: one of " + ", ".join(k.value for k in AlertKind), field="rule.kind")
    name = request.name.strip()
    if not name:
        raise InvalidArgument("is required", field="rule.name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_NAME_LENGTH} characters", field="rule.name")
    if len(request.project_id) > MAX_PROJECT_ID_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_PROJECT_ID_LENGTH} characters", field="rule.project_id")
    common = {"organisation_id": request.organisation_id, "project_id": request.project_id, "name": name}
    if request.kind is AlertKind.THRESHOLD:
        _refuse(request, "window_seconds", "baseline_seconds", "factor", "min_volume", "budget", "cost_basis",
                "credit_threshold_minor")
        code = validate_code(request.metric_code, "rule.metric_code")
        if request.basis is None:
            raise InvalidArgument("is required for threshold rules: absolute or quota_percent", field="rule.basis")
        percent = request.basis is ThresholdBasis.QUOTA_PERCENT
        levels = _levels(request.levels, percent=percent, field_name="rule.levels")
        return RuleDefinition(kind=AlertKind.THRESHOLD, metric_code=code, basis=request.basis, levels=levels, **common)
    if request.kind is AlertKind.SPIKE:
        _refuse(request, "basis", "levels", "budget", "cost_basis", "credit_threshold_minor")
        code = validate_code(request.metric_code, "rule.metric_code")
        window, baseline = request.window_seconds, request.baseline_seconds
        if not MIN_WINDOW_SECONDS <= window <= MAX_WINDOW_SECONDS or window % BUCKET_SECONDS:
            raise InvalidArgument(
                f"must be a multiple of {BUCKET_SECONDS} between {MIN_WINDOW_SECONDS} and {MAX_WINDOW_SECONDS}",
                field="rule.window_seconds",
            )
        if not window <= baseline <= MAX_BASELINE_SECONDS or baseline % window:
            raise InvalidArgument(
                f"must be a whole number of windows, from window_seconds up to {MAX_BASELINE_SECONDS} (35 days)",
                field="rule.baseline_seconds",
            )
        factor = parse_decimal(request.factor, "rule.factor")
        if not 1 < factor <= MAX_FACTOR:
            raise InvalidArgument(f"must be greater than 1 and at most {MAX_FACTOR}", field="rule.factor")
        min_volume = parse_decimal(request.min_volume or "0", "rule.min_volume")
        if min_volume < 0:
            raise InvalidArgument("must not be negative", field="rule.min_volume")
        return RuleDefinition(
            kind=AlertKind.SPIKE, metric_code=code, window_seconds=window, baseline_seconds=baseline,
            factor=format_decimal(factor), min_volume=format_decimal(min_volume), **common,
        )
    if request.kind is AlertKind.CREDIT_BALANCE:
        _refuse(request, "metric_code", "basis", "levels", "window_seconds", "baseline_seconds", "factor",
                "min_volume", "budget", "cost_basis")
        if request.project_id:
            raise InvalidArgument("credit balance rules watch the whole organisation's credit: leave it empty",
                                  field="rule.project_id")
        threshold = request.credit_threshold_minor
        if not 0 < threshold <= MAX_CREDIT_THRESHOLD_MINOR:
            raise InvalidArgument(f"must be from 1 to {MAX_CREDIT_THRESHOLD_MINOR} minor units of {currency}",
                                  field="rule.credit_threshold_minor")
        return RuleDefinition(kind=AlertKind.CREDIT_BALANCE, currency=currency, credit_threshold_minor=threshold,
                              **common)
    _refuse(request, "metric_code", "basis", "window_seconds", "baseline_seconds", "factor", "min_volume",
            "credit_threshold_minor")
    if request.project_id:
        raise InvalidArgument("cost rules watch the whole organisation's invoice: leave it empty",
                              field="rule.project_id")
    budget = parse_decimal(request.budget, "rule.budget")
    if budget <= 0:
        raise InvalidArgument("must be greater than 0", field="rule.budget")
    if minor_digits(budget) > currency_minor_units:
        raise InvalidArgument(
            f"has more decimals than {currency} allows ({currency_minor_units})", field="rule.budget"
        )
    levels = _levels(request.levels or ("100",), percent=True, field_name="rule.levels")
    return RuleDefinition(
        kind=AlertKind.COST, levels=levels, budget=format_decimal(budget), currency=currency,
        cost_basis=request.cost_basis or CostBasis.TO_DATE, **common,
    )


def _refuse(request: RuleRequest, *names: str) -> None:
    """Fields of other kinds must be empty: a rule is stored as asked, never with silently ignored parts."""
    for name in names:
        if getattr(request, name):
            raise InvalidArgument(f"does not apply to {request.kind} rules", field=f"rule.{name}")
