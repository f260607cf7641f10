"""Quarterly and yearly base fees on monthly invoices.

Invoices stay monthly (one per organisation and billing period, usage always in arrears). A plan version billed
every quarter or year has its base fee (``PlanVersionTerms.interval_fee``) charged once per **interval**: three
or twelve consecutive billing periods. Intervals are counted from the billing period in which a run of
consecutive phases with the same interval began (a subscription's start, or the change from a monthly plan), so
an annual plan from 1 April runs April to March, and a change between two annual plans keeps the year.

Where an interval's fee is invoiced:

- **in advance**: on the invoice of the period in which the plan starts to cover the interval, for the rest of
  the interval ("from the start of the plan in the interval to the end of the interval"). If the plan stops
  before the interval ends (a plan change or a cancellation), the unused part is credited: a negative base fee
  line on the invoice of the period of the change (of the last period billed, for a cancellation).
- **in arrears**: on the invoice of the interval's last period, for the part each plan was in force; if the run
  of plans stops early, on the invoice of the period it stopped in.

Every part is prorated by local days of the organisation's zone (plan changes fall at the start of a day):
``fee x days / days of the interval``, exact, then rounded half-up to the minor unit once, on its line. Because
the charge and the later credit of a plan are computed from the subscription's phases alone, each invoice is the
same however often it is recomputed, and a reissue of an earlier month gives back what it first said.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Context, Decimal, localcontext

from services.invoicing.domain.billing_period import (
    BillingPeriod,
    days_between,
    parse_period_key,
    period_containing,
    period_for_key,
)
from services.invoicing.domain.money import round_minor
from services.invoicing.domain.plan import BaseFeeTiming, BillingInterval, PlanVersion
from services.invoicing.domain.subscription import Subscription

_JUST_BEFORE = timedelta(microseconds=1)
# A part of an interval divides by its days, which need not terminate (1,08,000 x 182 / 365): far more digits
# than rounding to minor units can see.
_DIVISION = Context(prec=60)


@dataclass(frozen=True)
class IntervalFee:
    """One base fee line of a quarterly or yearly plan: ``[start, end)`` of the interval ``[interval_start,
    interval_end)`` charged (or, with ``credit``, given back) at ``days`` of ``interval_days``."""

    plan_version: PlanVersion
    interval_start: datetime
    interval_end: datetime
    start: datetime
    end: datetime
    days: int
    interval_days: int
    credit: bool = False
    # The exact, signed sum of the interval's fees before this one (in the plan currency); None when they are in
    # different currencies.
    earlier: Decimal | None = None

    @property
    def whole(self) -> bool:
        return self.days >= self.interval_days

    @property
    def exact_amount(self) -> Decimal:
        """The signed, unrounded amount in the plan's currency: the fee x days / days of the interval."""
        fee = self.plan_version.terms.interval_fee()
        with localcontext(_DIVISION):
            amount = fee if self.whole else fee * self.days / self.interval_days
        return -amount if self.credit else amount

    def amount_minor(self, rate: Decimal, currency: str) -> int:
        """The line's amount in minor units of ``currency`` (``rate`` from the plan's currency): the rounded
        running total of the interval's fees less the rounded total before this one, so that however a plan
        change splits the interval, its lines add up to the exact total rounded once (half-up). Each line is
        within one minor unit of its own exact amount. Rounded on its own when ``earlier`` is None or converted."""
        with localcontext(_DIVISION):
            if self.earlier is None or rate != 1:
                return round_minor(self.exact_amount * rate, currency)
            return round_minor(self.earlier + self.exact_amount, currency) - round_minor(self.earlier, currency)


@dataclass(frozen=True)
class _Phase:
    version: PlanVersion
    start: datetime
    end: datetime | None  # None: open


def _shift(key: str, months: int) -> str:
    year, month = parse_period_key(key)
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _windows(
    first: BillingPeriod, months: int, until: datetime, anchor_day: int
) -> Iterator[tuple[datetime, datetime]]:
    """The intervals of ``months`` billing periods from ``first``, up to the one containing ``until``."""
    key = first.key
    while True:
        start = period_for_key(key, first.time_zone, anchor_day).start
        if start >= until:
            return
        key = _shift(key, months)
        yield start, period_for_key(key, first.time_zone, anchor_day).start


def _phases(subscription: Subscription, versions: Mapping[str, PlanVersion]) -> list[_Phase]:
    """The subscription's phases clipped to its end, empty ones left out."""
    result = []
    for phase in subscription.phases:
        ends = [e for e in (phase.ends_at, subscription.ends_at) if e is not None]
        end = min(ends) if ends else None
        if end is None or phase.starts_at < end:
            result.append(_Phase(versions[phase.plan_version_id], phase.starts_at, end))
    return result


def _runs(phases: Sequence[_Phase]) -> Iterator[list[_Phase]]:
    """Consecutive phases sharing a billing interval other than a month."""
    run: list[_Phase] = []
    for phase in phases:
        interval = phase.version.terms.billing_interval
        if run and run[0].version.terms.billing_interval is not interval:
            yield run
            run = []
        run.append(phase)
    if run:
        yield run


def _fee(
    version: PlanVersion,
    window: tuple[datetime, datetime, int],
    start: datetime,
    end: datetime,
    time_zone: str,
    credit: bool = False,
) -> IntervalFee:
    window_start, window_end, window_days = window
    return IntervalFee(
        version, window_start, window_end, start, end, days_between(start, end, time_zone), window_days, credit
    )


def _with_earlier(placed: list[tuple[str, IntervalFee]]) -> list[tuple[str, IntervalFee]]:
    """The window's fees in time order, each with the exact sum of those before it, when they all share one
    currency (the lines then round the running total, so the window's lines add up to its exact total rounded
    once); otherwise each rounds on its own."""
    placed = sorted(placed, key=lambda pair: (pair[1].start, not pair[1].credit))
    if len({item.plan_version.terms.currency for _, item in placed}) != 1:
        return placed
    result = []
    earlier = Decimal(0)
    for key, item in placed:
        result.append((key, replace(item, earlier=earlier)))
        with localcontext(_DIVISION):
            earlier += item.exact_amount
    return result


def interval_fees(
    subscriptions: Sequence[Subscription], period: BillingPeriod, versions: Mapping[str, PlanVersion]
) -> tuple[IntervalFee, ...]:
    """The quarterly and yearly base fee lines (charges and credits) that belong on the invoice of ``period``, in
    time order (a credit before the charge that replaces it). Monthly plans have none: their base fee is the
    segment's (``invoice_builder``)."""
    found: list[IntervalFee] = []
    time_zone = period.time_zone
    for subscription in subscriptions:
        anchor_day = subscription.billing_anchor_day

        def month_of(instant: datetime, sub: Subscription = subscription) -> str:
            # An instant at (or past) the subscription's end is billed on its last period: there is no later one.
            if sub.ends_at is not None and instant >= sub.ends_at:
                instant = sub.ends_at - _JUST_BEFORE
            return period_containing(instant, time_zone, sub.billing_anchor_day).key

        for run in _runs(_phases(subscription, versions)):
            interval = run[0].version.terms.billing_interval
            if interval is BillingInterval.MONTH:
                continue
            run_end = run[-1].end
            first = period_containing(run[0].start, time_zone, anchor_day)
            until = period.end if run_end is None else min(run_end, period.end)
            for window_start, window_end in _windows(first, interval.months, until, anchor_day):
                window_days = days_between(window_start, window_end, time_zone)
                window = (window_start, window_end, window_days)
                placed: list[tuple[str, IntervalFee]] = []
                for phase in run:
                    start = max(phase.start, window_start)
                    stop = window_end if phase.end is None else min(phase.end, window_end)
                    if start >= stop:
                        continue
                    if phase.version.terms.base_fee_timing is BaseFeeTiming.IN_ADVANCE:
                        placed.append((month_of(start), _fee(phase.version, window, start, window_end, time_zone)))
                        if stop < window_end:
                            credit = _fee(phase.version, window, stop, window_end, time_zone, credit=True)
                            placed.append((month_of(stop), credit))
                    else:
                        run_stops_early = run_end is not None and run_end < window_end
                        billed_at = month_of(run_end) if run_stops_early else month_of(window_end - _JUST_BEFORE)
                        placed.append((billed_at, _fee(phase.version, window, start, stop, time_zone)))
                found += [item for key, item in _with_earlier(placed) if key == period.key]
    found.sort(key=lambda item: (item.start, not item.credit))
    return tuple(found)
