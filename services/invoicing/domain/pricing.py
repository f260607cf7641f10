"""What a charge costs: the charge models at full precision, then the invoice lines rounded once.

:func:`price_charge` never rounds: it runs in :data:`~services.invoicing.domain.money.EXACT`, where any
operation that would lose a digit raises. Rounding to minor units happens in :func:`line_amounts`, once per
line, half-up, after converting to the invoice currency. The rules are written out in ``docs/pricing.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.charges import (
    ZERO,
    ChargeDefinition,
    ChargeModel,
    ChargePrice,
    PackageRounding,
    TierAmount,
)
from services.invoicing.domain.currencies import is_invoiceable
from services.invoicing.domain.money import EXACT, MAX_AMOUNT_MINOR, beyond_bound, decimal_text, round_minor

HUNDRED = Decimal(100)
ONE = Decimal(1)


def price_charge(charge: ChargeDefinition, quantity: Decimal, event_amounts: Sequence[Decimal] = ()) -> ChargePrice:
    """The exact, unrounded price of ``quantity`` units under ``charge`` (a validated definition).

    ``event_amounts`` (in time order) matter only to a percentage charge: each event is priced on its own
    (free events, fixed fee, minimum and maximum per event). Without them a percentage charge prices
    ``quantity`` as the summed amount. The breakdown's amounts sum exactly to ``amount``. Minimum and maximum
    amounts of the charge are not applied here; they are lines of their own (:func:`line_amounts`)."""
    if not quantity.is_finite() or quantity < 0:
        raise InvalidArgument(f"must be a finite number of at least 0, got {quantity}", field="quantity")
    for index, event_amount in enumerate(event_amounts):
        if not event_amount.is_finite() or event_amount < 0:
            raise InvalidArgument(
                f"must be a finite amount of at least 0, got {event_amount}", field=f"event_amounts[{index}]"
            )
    with localcontext(EXACT):
        price = _PRICERS[charge.model](charge, quantity, event_amounts)
        assert sum((row.amount for row in price.breakdown), ZERO) == price.amount, "breakdown must add up"
        return price


def _free_row(quantity: Decimal, free_units: Decimal) -> tuple[Decimal, tuple[TierAmount, ...]]:
    """Billable units after free units, and a zero-amount row showing the free ones (if any were used)."""
    used = min(quantity, free_units)
    rows = (TierAmount(description="free units", quantity=used, unit_price=ZERO, flat_fee=ZERO, amount=ZERO),)
    return quantity - used, rows if used > 0 else ()


def _per_unit(charge: ChargeDefinition, quantity: Decimal, _: Sequence[Decimal]) -> ChargePrice:
    billable, rows = _free_row(quantity, charge.free_units)
    amount = billable * charge.unit_price
    row = TierAmount(description="units", quantity=billable, unit_price=charge.unit_price, flat_fee=ZERO, amount=amount)
    return ChargePrice(quantity=quantity, billable_quantity=billable, amount=amount, breakdown=(*rows, row))


def _graduated(charge: ChargeDefinition, quantity: Decimal, _: Sequence[Decimal]) -> ChargePrice:
    billable, rows = _free_row(quantity, charge.free_units)
    breakdown = list(rows)
    lower = ZERO
    for index, tier in enumerate(charge.tiers):
        # Usage reaches into a tier once it is above the previous tier's up_to; the first tier is always
        # reached, so its flat fee is due even at zero usage.
        if index > 0 and billable <= lower:
            break
        top = billable if tier.up_to is None else min(billable, tier.up_to)
        units = top - lower
        breakdown.append(TierAmount(
            description=f"tier {index + 1}", quantity=units, unit_price=tier.unit_price, flat_fee=tier.flat_fee,
            amount=units * tier.unit_price + tier.flat_fee, from_units=lower, up_to=tier.up_to,
        ))  # fmt: skip
        if tier.up_to is None:
            break
        lower = tier.up_to
    amount = sum((row.amount for row in breakdown), ZERO)
    return ChargePrice(quantity=quantity, billable_quantity=billable, amount=amount, breakdown=tuple(breakdown))


def _volume(charge: ChargeDefinition, quantity: Decimal, _: Sequence[Decimal]) -> ChargePrice:
    billable, rows = _free_row(quantity, charge.free_units)
    lower = ZERO
    for index, tier in enumerate(charge.tiers):
        if tier.up_to is None or billable <= tier.up_to:
            amount = billable * tier.unit_price + tier.flat_fee
            row = TierAmount(
                description=f"tier {index + 1}",
                quantity=billable,
                unit_price=tier.unit_price,
                flat_fee=tier.flat_fee,
                amount=amount,
                from_units=lower,
                up_to=tier.up_to,
            )
            return ChargePrice(quantity=quantity, billable_quantity=billable, amount=amount, breakdown=(*rows, row))
        lower = tier.up_to
    raise ValueError("a volume charge's last tier must be open-ended")  # validate_charge guarantees it


def _package(charge: ChargeDefinition, quantity: Decimal, _: Sequence[Decimal]) -> ChargePrice:
    billable, rows = _free_row(quantity, charge.free_units)
    packages = billable // charge.package_size  # whole packages, exact
    if charge.package_rounding is PackageRounding.UP and billable % charge.package_size:
        packages += 1
    amount = packages * charge.package_price
    row = TierAmount(
        description=f"{decimal_text(packages)} packages of {decimal_text(charge.package_size)} units "
        f"({decimal_text(billable)} units, partial package rounded {charge.package_rounding})",
        quantity=packages, unit_price=charge.package_price, flat_fee=ZERO, amount=amount,
    )  # fmt: skip
    return ChargePrice(quantity=quantity, billable_quantity=billable, amount=amount, breakdown=(*rows, row))


def _percentage(charge: ChargeDefinition, quantity: Decimal, event_amounts: Sequence[Decimal]) -> ChargePrice:
    fraction = charge.rate / HUNDRED
    if not event_amounts:
        # Only a total is known: the free amount comes off it; free events, the fixed fee and the per-event
        # bounds need events and do not apply.
        billable = max(quantity - charge.free_amount, ZERO)
        amount = billable * fraction
        rows = []
        if quantity - billable > 0:
            rows.append(
                TierAmount(
                    description="free amount", quantity=quantity - billable, unit_price=ZERO, flat_fee=ZERO, amount=ZERO
                )
            )
        rows.append(
            TierAmount(
                description=f"{decimal_text(charge.rate)}% of {decimal_text(billable)}",
                quantity=billable,
                unit_price=fraction,
                flat_fee=ZERO,
                amount=amount,
            )
        )
        return ChargePrice(quantity=quantity, billable_quantity=billable, amount=amount, breakdown=tuple(rows))

    # Free window: open while both allowances last. An allowance of 0 means "no such limit" (unless both are
    # 0, when there is no free window at all).
    events_left: int | None = charge.free_events or None
    amount_left: Decimal | None = charge.free_amount or None
    window_open = events_left is not None or amount_left is not None
    free_count = 0
    free_total = ZERO
    charged_total = ZERO
    charged_count = 0
    raised = ZERO  # added by min_per_event
    lowered = ZERO  # taken off by max_per_event (negative)
    raised_count = lowered_count = 0
    for event_amount in event_amounts:
        chargeable = event_amount
        if window_open:
            if amount_left is None or event_amount <= amount_left:
                free_count += 1
                free_total += event_amount
                if amount_left is not None:
                    amount_left -= event_amount
                if events_left is not None:
                    events_left -= 1
                window_open = (events_left is None or events_left > 0) and (amount_left is None or amount_left > 0)
                continue
            # This event straddles the end of the free amount: the part above it is charged, and the window ends.
            chargeable = event_amount - amount_left
            free_total += amount_left
            window_open = False
        charged_count += 1
        charged_total += chargeable
        fee = chargeable * fraction + charge.fixed_fee_per_event
        if charge.min_per_event is not None and fee < charge.min_per_event:
            raised += charge.min_per_event - fee
            raised_count += 1
        elif charge.max_per_event is not None and fee > charge.max_per_event:
            lowered += charge.max_per_event - fee
            lowered_count += 1

    rows = []
    if free_count or free_total:
        rows.append(
            TierAmount(
                description=f"{free_count} free events, free amount {decimal_text(free_total)}",
                quantity=free_total,
                unit_price=ZERO,
                flat_fee=ZERO,
                amount=ZERO,
            )
        )
    rows.append(
        TierAmount(
            description=f"{decimal_text(charge.rate)}% of {decimal_text(charged_total)}",
            quantity=charged_total,
            unit_price=fraction,
            flat_fee=ZERO,
            amount=charged_total * fraction,
        )
    )
    if charge.fixed_fee_per_event and charged_count:
        rows.append(
            TierAmount(
                description=f"fixed fee on {charged_count} events",
                quantity=Decimal(charged_count),
                unit_price=charge.fixed_fee_per_event,
                flat_fee=ZERO,
                amount=charged_count * charge.fixed_fee_per_event,
            )
        )
    if raised_count:
        rows.append(
            TierAmount(
                description=f"raised to the minimum per event on {raised_count} events",
                quantity=Decimal(raised_count),
                unit_price=ZERO,
                flat_fee=ZERO,
                amount=raised,
            )
        )
    if lowered_count:
        rows.append(
            TierAmount(
                description=f"capped at the maximum per event on {lowered_count} events",
                quantity=Decimal(lowered_count),
                unit_price=ZERO,
                flat_fee=ZERO,
                amount=lowered,
            )
        )
    amount = sum((row.amount for row in rows), ZERO)
    return ChargePrice(
        quantity=quantity,
        billable_quantity=charged_total,
        amount=amount,
        breakdown=tuple(rows),
        event_count=len(event_amounts),
        free_event_count=free_count,
    )


def _flat(charge: ChargeDefinition, quantity: Decimal, _: Sequence[Decimal]) -> ChargePrice:
    row = TierAmount(
        description="flat fee", quantity=ONE, unit_price=charge.flat_amount, flat_fee=ZERO, amount=charge.flat_amount
    )
    return ChargePrice(quantity=quantity, billable_quantity=quantity, amount=charge.flat_amount, breakdown=(row,))


_PRICERS: dict[ChargeModel, Callable[[ChargeDefinition, Decimal, Sequence[Decimal]], ChargePrice]] = {
    ChargeModel.PER_UNIT: _per_unit,
    ChargeModel.GRADUATED: _graduated,
    ChargeModel.VOLUME: _volume,
    ChargeModel.PACKAGE: _package,
    ChargeModel.PERCENTAGE: _percentage,
    ChargeModel.FLAT: _flat,
}


@dataclass(frozen=True)
class LineAmounts:
    """A charge's invoice lines in minor units of the invoice currency.

    ``minimum_spend_minor`` is >= 0 and ``maximum_cap_minor`` <= 0; at most one of them is non-zero, and
    ``usage_minor`` plus it equals the rounded minimum (or maximum) exactly."""

    usage_minor: int
    minimum_spend_minor: int = 0
    maximum_cap_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.usage_minor + self.minimum_spend_minor + self.maximum_cap_minor


def line_amounts(price: ChargePrice, charge: ChargeDefinition, currency: str, rate: Decimal = ONE) -> LineAmounts:
    """Round a price to its invoice lines in ``currency``.

    ``rate`` converts the plan's currency (1 plan unit = ``rate`` ``currency`` units) and is applied to every
    unrounded amount before rounding it. The usage line is rounded half-up; a minimum adds
    ``round(minimum) - usage`` when that is positive, a maximum adds ``round(maximum) - usage`` when that is
    negative."""
    if not rate.is_finite() or rate <= 0:
        raise InvalidArgument(f"must be above 0, got {rate}", field="rate")
    with localcontext(EXACT):
        usage = round_minor(price.amount * rate, currency)
        minimum_spend = maximum_cap = 0
        if charge.minimum_amount is not None:
            minimum_spend = max(round_minor(charge.minimum_amount * rate, currency) - usage, 0)
        if charge.maximum_amount is not None:
            maximum_cap = min(round_minor(charge.maximum_amount * rate, currency) - usage, 0)
    return LineAmounts(usage_minor=usage, minimum_spend_minor=minimum_spend, maximum_cap_minor=maximum_cap)


@dataclass(frozen=True)
class Quote:
    """What a charge would cost: the exact price with its breakdown, and the rounded lines in ``currency``."""

    currency: str
    price: ChargePrice
    lines: LineAmounts

    @property
    def total_minor(self) -> int:
        return self.lines.total_minor


def quote_charge(charge: ChargeDefinition, quantity: Decimal, event_amounts: Sequence[Decimal], currency: str) -> Quote:
    """Price ``charge`` for ``quantity`` (and, for percentage, ``event_amounts``) in ``currency``, with no
    conversion: the quote's currency is the charge's own."""
    if not isinstance(currency, str) or not is_invoiceable(currency):
        raise InvalidArgument(
            f"unknown currency {str(currency)[:8]!r}; expected an ISO 4217 code such as INR", field="currency"
        )
    price = price_charge(charge, quantity, event_amounts)
    lines = line_amounts(price, charge, currency)
    if any(beyond_bound(minor) for minor in (lines.usage_minor, lines.minimum_spend_minor, lines.maximum_cap_minor,
                                            lines.total_minor)):
        raise InvalidArgument(f"prices to more than {MAX_AMOUNT_MINOR} minor units of {currency}, the largest amount "
                              f"an invoice can carry", field="event_amounts" if event_amounts else "quantity")
    return Quote(currency=currency, price=price, lines=lines)
