"""Late usage: events of an already issued period that metering received after its invoice was priced.

An invoice is priced when its period's grace period ends (``InvoicingSettings.grace_period_hours``); until then
it stays a draft and late events land on it. Ingest accepts events up to its past window old, so some arrive
later still. Those are never lost and never billed twice: when a later invoice of the organisation is priced,
each earlier period still within the late window is priced again from the usage as it is now, and the
difference from what was billed for it (its invoice, plus the adjustment lines already on other live invoices)
becomes a usage adjustment line, one per metric, GST rate and SAC code.

The difference is of the charge as a whole (usage line with its minimum-spend or maximum-cap line): with tiers,
a late event is priced at the tier the period's total reaches, exactly as if it had arrived on time. A change
that lowers usage (a gauge's or a latest-value metric's late reading) gives a negative line. Coupons are not
applied again: the earlier period's discount was what its invoice said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing_runtime.errors import FailedPrecondition
from services.invoicing.domain.invoice import Invoice, InvoiceLine, LineKind

# The lines a charge's usage prices: what a late event can change.
_CHARGE_KINDS = frozenset({LineKind.USAGE, LineKind.MINIMUM_SPEND, LineKind.MAXIMUM_CAP})

_Key = tuple[str, Decimal, str]  # metric code, GST rate, SAC code


@dataclass(frozen=True)
class LateUsage:
    """What an earlier period's late usage adds for one metric (at one GST rate and SAC code): the usage quantity
    and the amount, in the later invoice's currency (the same as the earlier one's)."""

    period_key: str
    metric_code: str
    name: str
    quantity: Decimal
    amount_minor: int
    gst_rate: Decimal
    sac_code: str


def _charge_totals(lines: Iterable[InvoiceLine]) -> dict[_Key, tuple[Decimal, int]]:
    totals: dict[_Key, tuple[Decimal, int]] = {}
    for line in lines:
        key = (line.metric_code, line.gst_rate, line.sac_code)
        quantity, amount = totals.get(key, (Decimal(0), 0))
        if line.kind is LineKind.USAGE or line.kind is LineKind.USAGE_ADJUSTMENT:
            quantity += line.quantity
        totals[key] = (quantity, amount + line.amount_minor)
    return totals


def late_usage(
    billed: Invoice,
    repriced: Invoice,
    adjustments: Iterable[InvoiceLine],
    names: Mapping[str, str],
) -> list[LateUsage]:
    """The adjustments ``billed``'s period still needs: ``repriced`` is its invoice built again from the usage as
    it is now; ``adjustments`` are the usage adjustment lines other live invoices already carry for it (those
    for other periods are ignored); ``names`` are the metrics' display names by code. Empty when nothing
    changed.

    Raises FailedPrecondition when the two invoices are not of the same period and currency."""
    if (billed.period_key, billed.currency) != (repriced.period_key, repriced.currency):
        raise FailedPrecondition(
            f"late usage of period {billed.period_key} cannot be priced: its invoice is in {billed.currency} and "
            f"the period priced again gives {repriced.period_key} in {repriced.currency}"
        )
    now = _charge_totals(line for line in repriced.lines if line.kind in _CHARGE_KINDS)
    before = _charge_totals(line for line in billed.lines if line.kind in _CHARGE_KINDS)
    adjusted = _charge_totals(
        line for line in adjustments
        if line.kind is LineKind.USAGE_ADJUSTMENT and line.adjusts_period_key == billed.period_key
    )
    found = []
    for key in sorted(now.keys() | before.keys() | adjusted.keys()):
        quantity, amount = now.get(key, (Decimal(0), 0))
        for earlier in (before, adjusted):
            q, a = earlier.get(key, (Decimal(0), 0))
            quantity, amount = quantity - q, amount - a
        if quantity or amount:
            metric_code, gst_rate, sac_code = key
            found.append(LateUsage(billed.period_key, metric_code, names.get(metric_code, metric_code),
                                   quantity, amount, gst_rate, sac_code))
    return found
