"""Invariants of the usage forecast over constructed histories (hypothesis): constant usage projects exactly,
nothing projects nothing, a projection is never below usage so far and never falls when usage rises, an ended
period forecasts the actual invoice, and levels and distinct counts are not extrapolated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.billing_period import BillingPeriod, days, period_for_key, start_of_day, zone_of
from services.invoicing.domain.invoice_builder import MetricUsage, SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.subscription import Segment
from services.invoicing.domain.usage_forecast import (
    ForecastMethod,
    forecast_invoice,
    observation,
    project_usage,
)
from tests.unit.services.invoicing.domain.invoice_fixtures import billing, graduated, per_unit, plan_version

# Kathmandu is +05:45; New York has a 25-hour day in November 2026 and a 23-hour day in March 2027.
ZONES = ("Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "UTC")
PERIODS = ("2026-11", "2027-02", "2027-03")


@dataclass(frozen=True)
class History:
    """A period with one metric: usage per local day, the day "now" falls in (``today``, 0-based; the period's
    length when it has ended), and how far into that day now is."""

    period: BillingPeriod
    aggregation: str
    values: tuple[Decimal, ...]
    today: int
    partial: Decimal
    seconds: int

    @property
    def first(self) -> date:
        return self.period.start.astimezone(zone_of(self.period.time_zone)).date()

    def day(self, n: int) -> date:
        return self.first + timedelta(days=n)

    @property
    def now(self) -> datetime:
        start = start_of_day(self.day(self.today), self.period.time_zone)
        length = start_of_day(self.day(self.today + 1), self.period.time_zone) - start
        return start + min(timedelta(seconds=self.seconds), length - timedelta(microseconds=1))

    @property
    def daily(self) -> dict[str, dict[date, Decimal]]:
        return {"m": {self.day(n): value for n, value in enumerate(self.values[: self.today]) if value}}

    @property
    def so_far(self) -> Decimal:
        return sum(self.values[: self.today], Decimal(0)) + self.partial

    def billing(self, unit_price: str = "0.5", charge=None):
        period = self.period
        version = plan_version("pv", "Metered", "INR", "100", (charge or per_unit("m", unit_price),))
        segment = Segment("pv", period.start, period.end, days(period))
        usage = {"m": MetricUsage(self.so_far, aggregation=self.aggregation)}
        return billing((SegmentUsage(segment, version, usage),), period=period)


def values(aggregation: str, max_value: int = 10**6) -> st.SearchStrategy[Decimal]:
    if aggregation == "count":
        return st.integers(min_value=0, max_value=max_value).map(Decimal)
    return st.decimals(min_value=0, max_value=max_value, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def histories(draw: st.DrawFn, aggregations=("sum", "count"), ended: bool | None = None) -> History:
    period = period_for_key(draw(st.sampled_from(PERIODS)), draw(st.sampled_from(ZONES)))
    length = days(period)
    aggregation = draw(st.sampled_from(aggregations))
    daily = tuple(draw(st.lists(values(aggregation), min_size=length, max_size=length)))
    if ended is True:
        today = length
    elif ended is False:
        today = draw(st.integers(min_value=0, max_value=length - 1))
    else:
        today = draw(st.integers(min_value=0, max_value=length))
    partial = draw(values(aggregation)) if today < length else Decimal(0)
    return History(period, aggregation, daily, today, partial, draw(st.integers(min_value=0, max_value=90_000)))


@given(st.sampled_from(PERIODS), st.sampled_from(ZONES), st.sampled_from(["sum", "count"]), st.data())
def test_constant_daily_usage_projects_exactly_to_that_usage_times_the_days(key, zone, aggregation, data) -> None:
    period = period_for_key(key, zone)
    length = days(period)
    rate = data.draw(values(aggregation).filter(lambda v: v > 0))
    today = data.draw(st.integers(min_value=1, max_value=length - 1))
    history = History(period, aggregation, (rate,) * length, today, Decimal(0), 0)  # now: the start of a day
    projection = project_usage(history.billing(), history.daily, history.now)
    assert projection.method is ForecastMethod.DAILY_TREND and projection.days_observed == today
    assert projection.metrics[0].daily_rate == rate.quantize(Decimal("0.000001")).normalize()
    assert projection.metrics[0].projected == rate * length


@given(histories())
def test_no_usage_projects_no_usage_and_the_invoice_so_far(history: History) -> None:
    empty = History(history.period, history.aggregation, (Decimal(0),) * len(history.values), history.today,
                    Decimal(0), history.seconds)
    forecast = forecast_invoice("p", empty.billing(), empty.daily, empty.now)
    assert forecast.projection.metrics[0].projected == 0
    assert forecast.invoice == build_invoice("p", empty.billing())


@given(histories())
def test_the_projection_is_never_below_usage_so_far_and_adds_rate_times_days_left(history: History) -> None:
    projection = project_usage(history.billing(), history.daily, history.now)
    (metric,) = projection.metrics
    assert metric.so_far == history.so_far and metric.projected >= history.so_far
    if history.aggregation == "count":
        assert metric.projected == metric.projected.to_integral_value()
    if projection.method is not ForecastMethod.ACTUAL:
        # The period's days: gone plus left (each shown to 6 places).
        assert abs(projection.days_elapsed + metric.days_left - projection.days_in_period) <= Decimal("0.000001")
    if projection.method is ForecastMethod.DAILY_TREND:
        assert projection.days_observed == history.today
        assert projection.window_days == min(7, history.today)


@given(histories(), st.data())
def test_more_usage_never_projects_less(history: History, data: st.DataObject) -> None:
    extra = data.draw(values(history.aggregation, max_value=10**4))
    day = data.draw(st.integers(min_value=0, max_value=history.today))  # history.today: today's partial usage
    more_values = list(history.values)
    more_partial = history.partial
    if day < history.today:
        more_values[day] += extra
    elif history.today < len(history.values):
        more_partial += extra
    more = History(history.period, history.aggregation, tuple(more_values), history.today, more_partial,
                   history.seconds)
    before = forecast_invoice("p", history.billing(), history.daily, history.now)
    after = forecast_invoice("p", more.billing(), more.daily, more.now)
    assert after.projection.metrics[0].projected >= before.projection.metrics[0].projected
    # Per-unit prices and taxes only grow with usage: so does the forecast total.
    assert after.invoice.total_minor >= before.invoice.total_minor


@given(histories(ended=True), st.integers(min_value=0, max_value=10**7))
def test_an_ended_period_forecasts_the_actual_usage_and_invoice(history: History, later: int) -> None:
    now = history.period.end + timedelta(seconds=later)
    forecast = forecast_invoice("inv", history.billing(), history.daily, now)
    assert forecast.projection.method is ForecastMethod.ACTUAL
    assert forecast.projection.metrics[0].projected == history.so_far
    assert forecast.invoice == build_invoice("inv", history.billing())
    assert observation(history.billing(), now).days == ()


@given(histories(aggregations=("max", "min", "latest", "unique_count")))
def test_levels_and_distinct_counts_keep_their_value_so_far(history: History) -> None:
    forecast = forecast_invoice("p", history.billing(), history.daily, history.now)
    (metric,) = forecast.projection.metrics
    assert (metric.projected, metric.extrapolated) == (history.so_far, False)
    assert forecast.invoice == build_invoice("p", history.billing())
    assert observation(history.billing(), history.now).metric_codes == ()


@given(histories(ended=False))
def test_the_forecast_is_a_valid_invoice_at_least_the_invoice_so_far(history: History) -> None:
    charge = graduated("m", ("1000", "0.5"), ("100000", "0.1"), (None, "0.01"))
    forecast = forecast_invoice("p", history.billing(charge=charge), history.daily, history.now)
    validate_invoice(forecast.invoice)
    so_far = build_invoice("p", history.billing(charge=charge))
    assert forecast.invoice.total_minor >= so_far.total_minor
    assert forecast.invoice.currency == so_far.currency and len(forecast.invoice.lines) == len(so_far.lines)


@given(histories(ended=False))
def test_the_history_a_forecast_reads_is_the_complete_days_before_today(history: History) -> None:
    needed = observation(history.billing(), history.now)
    if history.today == 0:
        assert needed.days == () and needed.metric_codes == ()
        return
    assert needed.days == tuple(history.day(n) for n in range(history.today))
    assert needed.start == history.period.start
    assert needed.end == start_of_day(history.day(history.today), history.period.time_zone)
    assert needed.metric_codes == ("m",)
