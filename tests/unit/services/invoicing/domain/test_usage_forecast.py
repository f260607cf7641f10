"""The usage forecast on worked examples: the daily trend (the example of docs/billing.md), the first day, an
ended period, plan changes, counts, a daylight-saving day, per-event charges, and the errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.billing_period import period_for_key, start_of_day
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel
from services.invoicing.domain.invoice import LineKind
from services.invoicing.domain.invoice_builder import MetricUsage, SegmentUsage, build_invoice
from services.invoicing.domain.plan import PlanCharge
from services.invoicing.domain.subscription import Segment
from services.invoicing.domain.usage_forecast import (
    MAX_MODELLED_EVENTS,
    ForecastMethod,
    forecast_invoice,
    observation,
    project_usage,
)
from tests.unit.services.invoicing.domain.invoice_fixtures import NOV, D, billing, per_unit, plan_version, whole

KOLKATA = "Asia/Kolkata"
STANDARD = plan_version("pv_std", "Standard", "INR", "999", (
    per_unit("api_calls", "0.02", free_units=D(10000), display_name="API calls"),
    per_unit("active_users", "10", display_name="Active users"),
))


def at(day: int, hours: float = 0, time_zone: str = KOLKATA) -> datetime:
    """``hours`` into local ``day`` of November 2026."""
    return start_of_day(date(2026, 11, day), time_zone) + timedelta(hours=hours)


def november(day: int) -> date:
    return date(2026, 11, day)


def usage_so_far(api_calls: str, active_users: str = "42") -> dict[str, MetricUsage]:
    return {"api_calls": MetricUsage(D(api_calls), aggregation="sum"),
            "active_users": MetricUsage(D(active_users), aggregation="unique_count")}


def test_the_daily_trend_blends_the_last_week_with_the_period_average_and_prices_it_like_an_invoice() -> None:
    # The worked example of docs/billing.md: 1,000 calls a day on 1-3 November, 2,000 a day on 4-10 November,
    # 900 so far on the 11th at noon, and 42 distinct active users.
    now = at(11, 12)
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("17900")),)
    daily = {"api_calls": {november(d): D(1000 if d <= 3 else 2000) for d in range(1, 11)}}
    forecast = forecast_invoice("fc", billing(parts), daily, now)
    projection = forecast.projection
    assert projection.method is ForecastMethod.DAILY_TREND
    assert (projection.days_in_period, projection.days_elapsed) == (30, D("10.5"))
    assert (projection.days_observed, projection.window_days) == (10, 7)
    calls, users = projection.metrics
    # Last 7 days: 2,000 a day; all 10: 1,700 a day; the mean, 1,850, for the 19.5 days left: 36,075 more.
    assert (calls.daily_rate, calls.days_left, calls.projected) == (D(1850), D("19.5"), D(53975))
    assert calls.extrapolated and calls.so_far == D(17900)
    # A distinct count is not a running total: kept at its value so far.
    assert (users.projected, users.extrapolated, users.daily_rate) == (D(42), False, D(0))

    invoice = forecast.invoice
    assert [(line.kind, line.quantity, line.amount_minor) for line in invoice.lines] == [
        (LineKind.BASE_FEE, D(1), 99900),
        (LineKind.USAGE, D(53975), 87950),  # (53,975 - 10,000 free) x 0.02 = 879.50
        (LineKind.USAGE, D(42), 42000),
    ]
    # 2,298.50 with CGST and SGST of 9 % each: 206.865 -> 206.87 twice.
    assert [t.amount_minor for t in invoice.tax_lines] == [20687, 20687]
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (229850, 41374, 271224)
    # The invoice so far, for comparison: 7,900 billable calls.
    so_far = build_invoice("p", billing(parts))
    assert (so_far.subtotal_minor, so_far.total_minor) == (157700, 186086)


def test_the_first_day_scales_by_the_elapsed_time_counted_as_at_least_one_day() -> None:
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("500")),)
    early = project_usage(billing(parts), {}, at(1, 6))
    assert (early.method, early.days_observed, early.window_days) == (ForecastMethod.ELAPSED_FRACTION, 0, 0)
    # 500 in a quarter of a day is taken as 500 a day, not 2,000: 29.75 days left add 14,875.
    assert (early.metrics[0].daily_rate, early.metrics[0].projected) == (D(500), D(15375))
    assert observation(billing(parts), at(1, 6)).metric_codes == ()


def test_an_ended_period_forecasts_exactly_the_actual_invoice() -> None:
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("17900")),)
    daily = {"api_calls": {november(d): D(500) for d in range(1, 31)}}
    forecast = forecast_invoice("projected", billing(parts), daily, NOV.end + timedelta(hours=1))
    assert forecast.projection.method is ForecastMethod.ACTUAL
    assert [m.projected for m in forecast.projection.metrics] == [D(17900), D(42)]
    assert not any(m.extrapolated for m in forecast.projection.metrics)
    assert forecast.invoice == build_invoice("projected", billing(parts))
    assert observation(billing(parts), NOV.end).days == ()


def test_each_segment_extends_at_the_metric_s_daily_rate_over_its_own_days_left() -> None:
    change = start_of_day(november(16), KOLKATA)
    later = start_of_day(november(26), KOLKATA)  # a plan change already scheduled
    cheap = plan_version("pv_cheap", "Cheap", "INR", "0", (per_unit("api_calls", "0.01"),))
    parts = (
        SegmentUsage(Segment("pv_std", NOV.start, change, 15), STANDARD, usage_so_far("15000")),
        SegmentUsage(Segment("pv_cheap", change, later, 10), cheap, {"api_calls": MetricUsage(D(1400), (), "sum")}),
        SegmentUsage(Segment("pv_std", later, NOV.end, 5), STANDARD, {}),
    )
    daily = {"api_calls": {november(d): D(1000) for d in range(1, 18)}}
    projection = project_usage(billing(parts), daily, at(18, 12))
    assert [(m.segment, m.metric_code, m.days_left, m.projected) for m in projection.metrics] == [
        (0, "api_calls", D(0), D(15000)),  # over: kept as metered
        (0, "active_users", D(0), D(42)),
        (1, "api_calls", D("7.5"), D(8900)),  # 1,400 + 7.5 days x 1,000
        (2, "api_calls", D(5), D(5000)),  # not begun: 5 days x 1,000
        (2, "active_users", D(5), D(0)),  # nothing so far, and not extrapolated
    ]
    assert projection.billing.segments[2].usage["api_calls"] == MetricUsage(D(5000), (), "sum")


def test_counts_add_whole_units_and_sums_six_decimal_places() -> None:
    charges = (per_unit("requests", "1"), per_unit("gb", "1"))
    version = plan_version("pv", "Metered", "INR", "0", charges)
    parts = (SegmentUsage(whole(), version, {"requests": MetricUsage(D(10), aggregation="count"),
                                             "gb": MetricUsage(D("0.0000001"), aggregation="sum")}),)
    daily = {"requests": {november(1): D(1)}, "gb": {november(1): D("0.0000001")}}
    projection = project_usage(billing(parts), daily, at(2, 8))  # 28 2/3 days left
    requests, gb = projection.metrics
    assert requests.projected == D(10) + D(29)  # 28.666... -> 29, half up
    assert gb.projected == D("0.0000001") + D("0.000003")  # 0.00000286... -> 0.000003; so far kept exactly


def test_days_are_local_calendar_days_even_when_one_is_25_hours_long() -> None:
    new_york = period_for_key("2026-11", "America/New_York")  # 1 November 2026 lasts 25 hours there
    segment = Segment("pv_std", new_york.start, new_york.end, 30)
    parts = (SegmentUsage(segment, STANDARD, usage_so_far("3000")),)
    daily = {"api_calls": {november(1): D(1000), november(2): D(1000), november(3): D(1000)}}
    projection = project_usage(billing(parts, period=new_york), daily, at(4, 0, "America/New_York"))
    assert projection.days_elapsed == D(3) and projection.metrics[0].projected == D(30000)


def test_a_percentage_charge_priced_per_event_gets_events_like_its_average_event() -> None:
    fee = PlanCharge("payments", ChargeDefinition(model=ChargeModel.PERCENTAGE, rate=D(2),
                                                  fixed_fee_per_event=D(3)))
    version = plan_version("pv", "Payments", "INR", "0", (fee,))
    events = (D(100), D(300))
    parts = (SegmentUsage(whole(), version, {"payments": MetricUsage(D(400), events, "sum")}),)
    daily = {"payments": {november(1): D(400)}}
    forecast = forecast_invoice("fc", billing(parts), daily, at(2))  # 29 days x 400 = 11,600 more
    (usage,) = forecast.projection.billing.segments[0].usage.values()
    assert usage.quantity == D(12000) and usage.event_amounts[:2] == events
    assert usage.event_amounts[2:] == (D(200),) * 58  # 11,600 as 58 events of the average 200
    # 2 % of 12,000 = 240 plus 3.00 on each of 60 events = 180.
    assert forecast.invoice.lines[0].amount_minor == 42000


def test_modelled_events_are_bounded() -> None:
    fee = PlanCharge("payments", ChargeDefinition(model=ChargeModel.PERCENTAGE, rate=D(2), free_events=1))
    version = plan_version("pv", "Payments", "INR", "0", (fee,))
    parts = (SegmentUsage(whole(), version, {"payments": MetricUsage(D("0.01"), (D("0.01"),), "sum")}),)
    daily = {"payments": {november(1): D(10000)}}
    usage = project_usage(billing(parts), daily, at(2)).billing.segments[0].usage["payments"]
    assert len(usage.event_amounts) == 1 + MAX_MODELLED_EVENTS and sum(usage.event_amounts) == usage.quantity


def test_observation_names_the_complete_days_and_the_running_totals_to_read() -> None:
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("17900")),)
    needed = observation(billing(parts), at(11, 12))
    assert needed.metric_codes == ("api_calls",)
    assert needed.days == tuple(november(d) for d in range(1, 11))
    assert (needed.start, needed.end) == (NOV.start, at(11))


def test_a_subscription_starting_mid_period_is_observed_from_its_start() -> None:
    start = start_of_day(november(10), KOLKATA)
    parts = (SegmentUsage(Segment("pv_std", start, NOV.end, 21), STANDARD, usage_so_far("4000")),)
    needed = observation(billing(parts), at(12, 6))
    assert needed.days == (november(10), november(11))
    projection = project_usage(billing(parts), {"api_calls": {november(10): D(2000), november(11): D(2000)}},
                               at(12, 6))
    assert projection.days_observed == 2 and projection.metrics[0].daily_rate == D(2000)


def test_bad_input_is_refused_naming_the_field() -> None:
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("1")),)
    with pytest.raises(InvalidArgument) as naive:
        project_usage(billing(parts), {}, datetime(2026, 11, 5))
    assert naive.value.field == "now"
    with pytest.raises(InvalidArgument) as window:
        project_usage(billing(parts), {}, at(5), window_days=0)
    assert window.value.field == "window_days"
    with pytest.raises(InvalidArgument) as daily:
        project_usage(billing(parts), {"api_calls": {november(1): D("NaN")}}, at(5))
    assert daily.value.field == "daily[api_calls]"


def test_a_day_of_negative_usage_never_takes_the_projection_below_usage_so_far() -> None:
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("100")),)
    projection = project_usage(billing(parts), {"api_calls": {november(1): D(-500), november(2): D(600)}},
                               at(3, 0))
    # Last days average 50 a day, the rate the trend uses; a wholly negative history would give 0.
    assert projection.metrics[0].projected == D(100) + D(50) * 28
    negative = project_usage(billing(parts), {"api_calls": {november(1): D(-500)}}, at(2, 0))
    assert negative.metrics[0].projected == D(100)


def test_the_forecast_at_the_same_moment_is_the_same() -> None:
    parts = (SegmentUsage(whole(), STANDARD, usage_so_far("17900")),)
    daily = {"api_calls": {november(d): D(1700) for d in range(1, 11)}}
    first = forecast_invoice("fc", billing(parts), daily, at(11, 12))
    again = forecast_invoice("fc", replace(billing(parts)), dict(daily), at(11, 12).astimezone(UTC))
    assert first == again
