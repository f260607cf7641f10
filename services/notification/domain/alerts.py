"""A fired usage or cost alert, as notification tells people and systems about it.

Metering decides when a level fires (once per rule, level and period) and publishes ``alert.triggered``; notification
only words it. Amounts stay the decimal strings metering wrote (usage in the metric's unit, or money in the
organisation's currency for a cost alert): never parsed into a float, only grouped and rounded for reading.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation


class AlertKind(enum.StrEnum):
    # Usage of the metric in the billing period reached a level (an amount, or a percent of the plan's quota).
    THRESHOLD = "threshold"
    # Usage in the last window went over factor x the trailing average of the same window.
    SPIKE = "spike"
    # The projected invoice of the billing period (so far, or its forecast) reached a percent of the budget.
    COST = "cost"
    # The prepaid credit balance fell below the rule's threshold.
    CREDIT_BALANCE = "credit_balance"


class ThresholdBasis(enum.StrEnum):
    ABSOLUTE = "absolute"
    QUOTA_PERCENT = "quota_percent"


_TIMES = ("event_time", "period_start", "period_end", "fire_time")


@dataclass(frozen=True)
class FiredAlert:
    """One level of one rule, fired once for one period, with the rule as it stood when it fired."""

    alert_id: str
    rule_id: str
    organisation_id: str
    kind: AlertKind
    rule_name: str = ""
    project_id: str = ""
    metric_code: str = ""
    # THRESHOLD only.
    basis: ThresholdBasis | None = None
    # The rule's level as written ("80" % of quota, "1000", "100" % of a budget; "spike").
    level: str = ""
    # What the level meant when it fired: a usage amount, or money (COST).
    threshold: str = ""
    # The value that crossed it: usage of the period or window, or the projected amount (COST).
    value: str = ""
    # SPIKE: the trailing average per window it was compared with.
    baseline: str = ""
    # COST: the currency of threshold, value and budget.
    currency: str = ""
    # THRESHOLD: the event that made usage reach the level.
    event_id: str = ""
    event_project_id: str = ""
    event_time: datetime | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    fire_time: datetime | None = None
    # The rule's other settings.
    levels: tuple[str, ...] = ()
    window_seconds: int = 0
    baseline_seconds: int = 0
    factor: str = ""
    min_volume: str = ""
    budget: str = ""
    # COST: what the budget was compared with: "to_date" (the invoice so far) or "forecast" (of the period's end).
    cost_basis: str = ""

    def quota(self) -> Decimal | None:
        """A quota-percent level's quota, from what the level meant (threshold = level % of quota): 800 at 80 % ->
        1000. None for other rules, or when it does not come out exact enough to show."""
        if self.basis is not ThresholdBasis.QUOTA_PERCENT:
            return None
        try:
            level, threshold = Decimal(self.level), Decimal(self.threshold)
        except (InvalidOperation, ValueError):
            return None
        if not (level.is_finite() and threshold.is_finite()) or level <= 0:
            return None
        quota = threshold * 100 / level
        return quota if quota == quota.quantize(Decimal("0.000001")) else None

    def details(self) -> dict[str, str]:
        """Flat text, kept on the message (``Notice.details``) so it renders again without metering."""
        values: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _TIMES:
                values[f.name] = value.isoformat() if value else ""
            elif f.name == "levels":
                values[f.name] = ",".join(value)
            elif f.name == "basis":
                values[f.name] = value.value if value else ""
            else:
                values[f.name] = str(value)
        return values

    @classmethod
    def from_details(cls, details: dict[str, str]) -> FiredAlert:
        known = {f.name for f in fields(cls)}
        values: dict[str, object] = {k: v for k, v in details.items() if k in known}
        for name in _TIMES:
            text = details.get(name, "")
            values[name] = datetime.fromisoformat(text) if text else None
        values["kind"] = AlertKind(details["kind"])
        values["basis"] = ThresholdBasis(details["basis"]) if details.get("basis") else None
        values["levels"] = tuple(v for v in details.get("levels", "").split(",") if v)
        for name in ("window_seconds", "baseline_seconds"):
            values[name] = int(details.get(name) or 0)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AlertTriggered:
    """The event: its id ("alert.triggered:<fired alert id>", the key of everything it makes) and the alert."""

    event_id: str
    alert: FiredAlert


def quantity(text: str) -> str:
    """A decimal string grouped for reading, its own decimals kept and trailing zeros dropped:
    "1000000" -> "1,000,000", "1234.50" -> "1,234.5", "2E+3" -> "2,000". Text that is not a number is returned as
    it came (it is escaped by whoever shows it)."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return text
    if not number.is_finite():
        return text
    number = number.normalize()
    if number == number.to_integral_value():
        number = number.quantize(Decimal(1))
    return f"{number:,}"


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def span(seconds: int) -> str:
    """A window or baseline in words: 3600 -> "1 hour", 604800 -> "7 days", 5400 -> "90 minutes"."""
    if seconds <= 0:
        return ""
    for name, size in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {name}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"  # pragma: no cover - the loop ends at 1 second
