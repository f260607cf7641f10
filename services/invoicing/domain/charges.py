"""Charge definitions: how one metric's usage is priced. Values only; validation lives in
:mod:`services.invoicing.domain.charge_rules` and computation in :mod:`services.invoicing.domain.pricing`.

Every amount here is a ``Decimal`` in the plan's currency at full precision; rounding to minor units happens
once per invoice line, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class ChargeModel(StrEnum):
    PER_UNIT = "per_unit"
    GRADUATED = "graduated"
    VOLUME = "volume"
    PACKAGE = "package"
    PERCENTAGE = "percentage"
    FLAT = "flat"


class PackageRounding(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Tier:
    """A band of units. ``up_to`` is inclusive; None on the last, open-ended tier."""

    up_to: Decimal | None
    unit_price: Decimal = ZERO
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class ChargeDefinition:
    """One pricing rule. Only the fields of its ``model`` are meaningful; the rules module rejects others."""

    model: ChargeModel
    # per_unit
    unit_price: Decimal = ZERO
    # graduated, volume
    tiers: tuple[Tier, ...] = ()
    # package: ``package_price`` per ``package_size`` units
    package_size: Decimal = ZERO
    package_price: Decimal = ZERO
    package_rounding: PackageRounding = PackageRounding.UP
    # percentage: ``rate`` is in percent ("2.5" means 2.5 %) of the metric's summed amount
    rate: Decimal = ZERO
    fixed_fee_per_event: Decimal = ZERO
    free_events: int = 0
    free_amount: Decimal = ZERO
    min_per_event: Decimal | None = None
    max_per_event: Decimal | None = None
    # flat
    flat_amount: Decimal = ZERO
    # any model
    free_units: Decimal = ZERO
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None

    @property
    def priced_per_event(self) -> bool:
        """Percentage charges with per-event terms are priced event by event (they need each event's amount);
        every other charge is priced from the period's total."""
        return self.model is ChargeModel.PERCENTAGE and bool(
            self.fixed_fee_per_event or self.free_events or self.min_per_event is not None
            or self.max_per_event is not None
        )


@dataclass(frozen=True)
class TierAmount:
    """One row of a price's breakdown: the units a tier (or package, or event band) priced and what they cost."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    flat_fee: Decimal
    amount: Decimal
    # Tier bounds, for graduated and volume ("" otherwise): from_units exclusive, up_to inclusive (None: open).
    from_units: Decimal | None = None
    up_to: Decimal | None = None


@dataclass(frozen=True)
class ChargePrice:
    """What a charge costs for a quantity, before minimum and maximum amounts and before rounding.

    ``amount`` equals the sum of the breakdown's amounts exactly."""

    quantity: Decimal
    billable_quantity: Decimal
    amount: Decimal
    breakdown: tuple[TierAmount, ...] = field(default=())
    # For percentage: how many events were priced, how many were free.
    event_count: int = 0
    free_event_count: int = 0
