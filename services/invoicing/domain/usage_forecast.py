"""Usage forecast: the billing period's usage at its end if the trend so far holds, priced like the projected
invoice. Pure: usage so far and a daily history in, the forecast invoice out (``docs/billing.md``, "Usage
forecast", has the method with a worked example).

Time is measured in the organisation's local calendar days (a 23- or 25-hour day counts as one), from the first
billed instant of the period (its first segment's start, usually the period's start).

The daily rate of a metric, from the usage of its **complete** local days before today (today is still filling):

- ``actual``: no billed time is left (the period, or the subscription, has ended): the forecast is the usage.
- ``elapsed_fraction``: no complete day yet: usage so far over the time elapsed, the time counted as at least one
  day, so that a burst in the first minutes of a period is not multiplied by a month.
- ``daily_trend``: the mean of two averages per day: over the last ``window_days`` complete days (default 7,
  fewer at the start of a period), which follows a change in trend, and over every complete day of the period,
  which damps a single unusual day. With no more complete days than the window the two are the same.

Then, per segment (a plan change splits the period) and metric:
``projected = usage so far + round(rate x local days left in the segment after now)``, with the rate never below
zero, so the projection is never below usage so far. The added part is rounded half up to whole units for
``count`` and to 6 decimal places otherwise; usage so far is kept exactly as metered.

Only cumulative aggregations extrapolate: ``sum``, ``count`` and the time-weighted ``weighted_sum`` (a gauge held
for the rest of the period keeps adding the same amount per day). ``max``, ``min``, ``latest`` and
``unique_count`` are levels or distinct counts, not running totals: they are projected at their value so far.

A percentage charge priced event by event (free events, a fee or bounds per event) needs events, not a total: the
added amount is modelled as events like the segment's average event so far (like the metric's average over the
period when the segment has none; one event when there is none at all), at most ``MAX_MODELLED_EVENTS`` of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.billing_period import days, start_of_day, zone_of
from services.invoicing.domain.charges import ZERO, ChargeModel
from services.invoicing.domain.invoice import Invoice
from services.invoicing.domain.invoice_builder import BillingInput, MetricUsage, build_invoice
from services.invoicing.domain.money import EXACT

DEFAULT_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 31
# Running totals: what the rest of the period adds to them is extrapolated.
EXTRAPOLATED = frozenset({"sum", "count", "weighted_sum"})
# Counted in whole units, so their projection is too.
WHOLE_UNITS = frozenset({"count"})
MAX_MODELLED_EVENTS = 100_000
_PLACES = Decimal("0.000001")
_ONE = Decimal(1)
# Rates and fractions of days divide, and a division need not terminate; far more digits than the 6 places kept.
_DIVISION = Context(prec=60, rounding=ROUND_HALF_UP)


class ForecastMethod(StrEnum):
    ACTUAL = "actual"
    ELAPSED_FRACTION = "elapsed_fraction"
    DAILY_TREND = "daily_trend"


@dataclass(frozen=True)
class Observation:
    """What a forecast reads from the history: the complete local days ``days`` (in order) making up
    ``[start, end)``, and the metrics whose daily usage over them matters. Empty when no history is needed (a
    forecast with nothing left to extrapolate, or before the first complete day)."""

    start: datetime
    end: datetime
    days: tuple[date, ...]
    metric_codes: tuple[str, ...]


@dataclass(frozen=True)
class MetricForecast:
    """One metric of one segment (``segment`` indexes the billing input's segments)."""

    segment: int
    metric_code: str
    aggregation: str
    so_far: Decimal
    projected: Decimal
    # Per local day, shown to 6 places (the projection uses it unrounded); 0 when not extrapolated.
    daily_rate: Decimal
    # Local days of the segment after now.
    days_left: Decimal
    extrapolated: bool


@dataclass(frozen=True)
class UsageProjection:
    """The projected usage of a period, and what it was computed from."""

    method: ForecastMethod
    as_of: datetime
    days_in_period: int
    # Local days of the period gone at ``as_of``, to 6 places.
    days_elapsed: Decimal
    # Complete local days the daily trend averaged, and how many of the last of them made the recent window.
    days_observed: int
    window_days: int
    metrics: tuple[MetricForecast, ...]
    # The billing input with every usage replaced by its projection: what the forecast invoice is built from.
    billing: BillingInput


@dataclass(frozen=True)
class Forecast:
    projection: UsageProjection
    invoice: Invoice


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidArgument("must carry a time zone (an aware datetime)", field="now")


def _check_window(window_days: int) -> None:
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise InvalidArgument(f"is {window_days}; expected 1 to {MAX_WINDOW_DAYS} days", field="window_days")


def day_position(instant: datetime, time_zone: str) -> Decimal:
    """Local calendar days from day 1 (0001-01-01) to ``instant``: the local day's ordinal plus the part of it
    gone, so that the difference of two positions is a number of local days, each counted as one however long."""
    day = instant.astimezone(zone_of(time_zone)).date()
    start = start_of_day(day, time_zone)
    length = start_of_day(day + timedelta(days=1), time_zone) - start
    with localcontext(_DIVISION):
        return Decimal(day.toordinal()) + Decimal(_micros(instant - start)) / Decimal(_micros(length))


def _micros(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def _billed_start(billing: BillingInput) -> datetime:
    return min((part.segment.start for part in billing.segments), default=billing.period.start)


def _billed_end(billing: BillingInput) -> datetime:
    return max((part.segment.end for part in billing.segments), default=billing.period.start)


def _usage_of(billing: BillingInput) -> list[tuple[int, str, MetricUsage]]:
    """(segment index, metric code, usage so far) of every metric charged by quantity, once per segment."""
    found: list[tuple[int, str, MetricUsage]] = []
    for index, part in enumerate(billing.segments):
        seen: set[str] = set()
        for plan_charge in part.plan_version.terms.charges:
            code = plan_charge.metric_code
            if plan_charge.charge.model is ChargeModel.FLAT or code in seen:
                continue
            seen.add(code)
            found.append((index, code, part.usage.get(code, MetricUsage(ZERO))))
    return found


def _aggregations(usages: Sequence[tuple[int, str, MetricUsage]]) -> dict[str, str]:
    """Each metric's aggregation, as metering reported it for any segment ("" when it was never read)."""
    found: dict[str, str] = {}
    for _, code, usage in usages:
        if usage.aggregation and not found.get(code):
            found[code] = usage.aggregation
        found.setdefault(code, "")
    return found


def _complete_days(billing: BillingInput, now: datetime) -> tuple[date, ...]:
    """The local days wholly between the first billed instant and ``now`` (capped at the period's end)."""
    time_zone = billing.period.time_zone
    zone = zone_of(time_zone)
    start = _billed_start(billing)
    end = min(now, billing.period.end)
    first = start.astimezone(zone).date()
    if start_of_day(first, time_zone) < start:
        first += timedelta(days=1)  # billing began during that day: it is not a complete day of usage
    today = end.astimezone(zone).date()
    return tuple(first + timedelta(days=n) for n in range(max((today - first).days, 0)))


def _method(billing: BillingInput, now: datetime, observed: int) -> ForecastMethod:
    if now >= _billed_end(billing):
        return ForecastMethod.ACTUAL
    return ForecastMethod.DAILY_TREND if observed else ForecastMethod.ELAPSED_FRACTION


def observation(billing: BillingInput, now: datetime) -> Observation:
    """The daily history a forecast of ``billing`` at ``now`` needs (see :class:`Observation`)."""
    _require_aware(now)
    complete = _complete_days(billing, now)
    time_zone = billing.period.time_zone
    if _method(billing, now, len(complete)) is not ForecastMethod.DAILY_TREND:
        return Observation(now, now, (), ())
    codes = tuple(sorted(code for code, aggregation in _aggregations(_usage_of(billing)).items()
                         if aggregation in EXTRAPOLATED))
    return Observation(start_of_day(complete[0], time_zone), start_of_day(complete[-1] + timedelta(days=1), time_zone),
                       complete, codes)


def _daily_rate(
    method: ForecastMethod, so_far: Decimal, history: Sequence[Decimal], elapsed: Decimal, window_days: int
) -> Decimal:
    """Usage per local day to extrapolate at; never below 0."""
    with localcontext(_DIVISION):
        if method is ForecastMethod.ACTUAL:
            return ZERO
        if method is ForecastMethod.ELAPSED_FRACTION:
            rate = so_far / max(elapsed, _ONE)
        else:
            recent = history[-window_days:]
            rate = (sum(recent, ZERO) / len(recent) + sum(history, ZERO) / len(history)) / 2
        return max(rate, ZERO)


def _added(rate: Decimal, days_left: Decimal, aggregation: str) -> Decimal:
    """What the rest of the segment adds, rounded half up (whole units for counts, else 6 places), without
    trailing zeros (36075, not 36075.000000)."""
    with localcontext(_DIVISION):
        return _plain((rate * days_left).quantize(_ONE if aggregation in WHOLE_UNITS else _PLACES, ROUND_HALF_UP))


def _plain(value: Decimal) -> Decimal:
    """``value`` without trailing fractional zeros, and without an exponent for whole numbers (1E+3 -> 1000)."""
    with localcontext(_DIVISION):
        normal = value.normalize()
        exponent = normal.as_tuple().exponent
        return normal.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else normal


def _modelled_events(own: Sequence[Decimal], metric: Sequence[Decimal], added: Decimal) -> tuple[Decimal, ...]:
    """Events summing exactly to ``added``, each like the average event so far (the segment's own, else the
    metric's); at most MAX_MODELLED_EVENTS. The last carries what rounding the others down to 6 places left."""
    model = own or metric
    with localcontext(_DIVISION):
        average = sum(model, ZERO) / len(model) if model else ZERO
        count = int((added / average).to_integral_value(ROUND_HALF_UP)) if average > 0 else 1
        count = min(max(count, 1), MAX_MODELLED_EVENTS)
        each = (added / count).quantize(_PLACES, ROUND_DOWN)
    with localcontext(EXACT):
        return (*([each] * (count - 1)), added - each * (count - 1))


def project_usage(
    billing: BillingInput,
    daily: Mapping[str, Mapping[date, Decimal]],
    now: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> UsageProjection:
    """Project every metric of ``billing`` (usage so far at ``now``) to the end of its segment.

    ``daily[code]`` is the metric's usage per complete local day (:func:`observation` says which days and
    metrics); a day missing from it had no usage. Raises InvalidArgument for a naive ``now``, a window outside
    1..31 days or a daily value that is not a finite number."""
    _require_aware(now)
    _check_window(window_days)
    period = billing.period
    time_zone = period.time_zone
    complete = _complete_days(billing, now)
    method = _method(billing, now, len(complete))
    now_position = day_position(min(now, period.end), time_zone)
    elapsed = now_position - day_position(_billed_start(billing), time_zone)
    usages = _usage_of(billing)
    aggregations = _aggregations(usages)
    rates: dict[str, Decimal] = {}
    for code, aggregation in aggregations.items():
        if aggregation not in EXTRAPOLATED:
            continue
        series = daily.get(code, {})
        for day, value in series.items():
            if not value.is_finite():
                raise InvalidArgument(f"is {value} on {day.isoformat()}; expected a finite number",
                                      field=f"daily[{code}]")
        history = [series.get(day, ZERO) for day in complete]
        with localcontext(EXACT):
            so_far = sum((usage.quantity for _, c, usage in usages if c == code), ZERO)
        rates[code] = _daily_rate(method, so_far, history, elapsed, window_days)
    events_of = {code: [a for _, c, usage in usages if c == code for a in usage.event_amounts] for code in aggregations}
    metrics: list[MetricForecast] = []
    projected: list[dict[str, MetricUsage]] = [dict(part.usage) for part in billing.segments]
    for index, code, usage in usages:
        segment = billing.segments[index].segment
        aggregation = usage.aggregation or aggregations[code]
        rate = rates.get(code)
        days_left = ZERO
        if segment.end > now:
            with localcontext(_DIVISION):
                days_left = day_position(segment.end, time_zone) - day_position(max(now, segment.start), time_zone)
        new_usage = usage
        if rate is not None and days_left > 0:
            added = _added(rate, days_left, aggregation)
            if added > 0:
                with localcontext(EXACT):
                    quantity = usage.quantity + added
                events = usage.event_amounts
                if _priced_per_event(billing, index, code):
                    events = (*events, *_modelled_events(usage.event_amounts, events_of[code], added))
                new_usage = replace(usage, quantity=quantity, event_amounts=events, aggregation=aggregation)
        projected[index][code] = new_usage
        metrics.append(MetricForecast(
            segment=index, metric_code=code, aggregation=aggregation, so_far=usage.quantity,
            projected=new_usage.quantity, daily_rate=_shown(rate or ZERO), days_left=_shown(days_left),
            extrapolated=rate is not None and method is not ForecastMethod.ACTUAL,
        ))  # fmt: skip
    segments = tuple(replace(part, usage=usage) for part, usage in zip(billing.segments, projected, strict=True))
    return UsageProjection(
        method=method, as_of=now, days_in_period=days(period),
        days_elapsed=_shown(now_position - day_position(period.start, time_zone)),
        days_observed=len(complete) if method is ForecastMethod.DAILY_TREND else 0,
        window_days=min(window_days, len(complete)) if method is ForecastMethod.DAILY_TREND else 0,
        metrics=tuple(metrics), billing=replace(billing, segments=segments),
    )


def _priced_per_event(billing: BillingInput, index: int, code: str) -> bool:
    return any(c.metric_code == code and c.charge.priced_per_event
               for c in billing.segments[index].plan_version.terms.charges)


def _shown(value: Decimal) -> Decimal:
    with localcontext(_DIVISION):
        return _plain(value.quantize(_PLACES, ROUND_HALF_UP))


def forecast_invoice(
    invoice_id: str,
    billing: BillingInput,
    daily: Mapping[str, Mapping[date, Decimal]],
    now: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> Forecast:
    """The invoice of ``billing``'s period at its end if the trend holds: :func:`project_usage`, then priced by
    the same builder as every invoice (charges, minimums, tax, rounding once per line)."""
    projection = project_usage(billing, daily, now, window_days)
    return Forecast(projection, build_invoice(invoice_id, projection.billing))
