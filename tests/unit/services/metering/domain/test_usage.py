from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.metering.domain.usage import (
    BUCKET,
    UsageQuery,
    Window,
    ceil_bucket,
    floor_bucket,
    format_decimal,
    gauge_hours,
    usage_range,
)

ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Europe/London", "Australia/Lord_Howe",
         "America/Santiago", "Antarctica/Troll", "Pacific/Chatham"]
KEYS = {
    Window.HOUR: lambda t: (t.year, t.month, t.day, t.hour),
    Window.DAY: lambda t: (t.year, t.month, t.day),
    Window.MONTH: lambda t: (t.year, t.month),
}


def brute_force_starts(start: datetime, end: datetime, window: Window, zone: ZoneInfo) -> list[datetime]:
    """Every minute: where does the local hour/day/month change?"""
    starts, moment = [], start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    previous = KEYS[window]((moment - timedelta(minutes=1)).astimezone(zone))
    while moment < end:
        current = KEYS[window](moment.astimezone(zone))
        if current != previous and moment > start:
            starts.append(moment)
        previous, moment = current, moment + timedelta(minutes=1)
    return starts


moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@settings(max_examples=60, deadline=None)
@given(
    start=moments,
    hours=st.integers(min_value=1, max_value=24 * 5),
    window=st.sampled_from([Window.HOUR, Window.DAY]),
    zone=st.sampled_from(ZONES),
)
def test_windows_start_where_local_time_turns_over(start, hours, window, zone) -> None:
    end = start + timedelta(hours=hours, minutes=7)
    result = usage_range(start, end, window, zone)
    starts = [w[0] for w in result.windows[1:]]
    assert starts == brute_force_starts(start, end, window, ZoneInfo(zone))
    assert result.windows[0][0] == start and result.windows[-1][1] == end
    assert all(a < b for a, b in result.windows)
    assert all(w[1] == n[0] for w, n in zip(result.windows, result.windows[1:], strict=False))


@settings(max_examples=20, deadline=None)
@given(start=moments, zone=st.sampled_from(ZONES))
def test_month_windows_follow_local_months(start, zone) -> None:
    end = start + timedelta(days=100)
    result = usage_range(start, end, Window.MONTH, zone)
    for window_start, _ in result.windows[1:]:
        local = window_start.astimezone(ZoneInfo(zone))
        before = (window_start - timedelta(minutes=1)).astimezone(ZoneInfo(zone))
        assert local.day == 1 and before.month != local.month
    assert len(result.windows) in (4, 5)


def test_kolkata_days_start_at_1830_utc() -> None:
    start = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    result = usage_range(start, datetime(2026, 3, 3, tzinfo=UTC), Window.DAY, "Asia/Kolkata")
    assert result.windows == (
        (start, datetime(2026, 3, 1, 18, 30, tzinfo=UTC)),
        (datetime(2026, 3, 1, 18, 30, tzinfo=UTC), datetime(2026, 3, 2, 18, 30, tzinfo=UTC)),
        (datetime(2026, 3, 2, 18, 30, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)),
    )
    assert result.bucket_span() == (datetime(2026, 3, 1, 10, 15, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    assert result.event_spans() == [(start, datetime(2026, 3, 1, 10, 15, tzinfo=UTC))]


def test_a_range_inside_one_bucket_reads_only_events() -> None:
    start = datetime(2026, 3, 1, 10, 1, tzinfo=UTC)
    result = usage_range(start, start + timedelta(minutes=5), Window.WHOLE, "")
    assert result.bucket_span() is None and result.event_spans() == [(start, start + timedelta(minutes=5))]
    assert result.boundaries == [start, start + timedelta(minutes=5)]


@settings(deadline=None)
@given(moments)
def test_bucket_edges(moment) -> None:
    assert floor_bucket(moment) <= moment <= ceil_bucket(moment)
    assert ceil_bucket(moment) - floor_bucket(moment) in (timedelta(0), BUCKET)
    assert floor_bucket(moment).minute % 15 == 0 and floor_bucket(moment).second == 0


@pytest.mark.parametrize(
    ("start", "end", "window", "zone", "field"),
    [
        (None, datetime(2026, 1, 2, tzinfo=UTC), Window.DAY, "", "start_time"),
        (datetime(2026, 1, 2, tzinfo=UTC), None, Window.DAY, "", "end_time"),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), Window.DAY, "", "end_time"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 3, tzinfo=UTC), Window.DAY, "", "end_time"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), Window.HOUR, "", "window"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), Window.DAY, "Not/AZone", "time_zone"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), Window.DAY, "../etc", "time_zone"),
        (datetime(1999, 1, 1, tzinfo=UTC), datetime(1999, 1, 2, tzinfo=UTC), Window.DAY, "", "start_time"),
    ],
)
def test_invalid_ranges_name_their_field(start, end, window, zone, field) -> None:
    with pytest.raises(InvalidArgument) as caught:
        usage_range(start, end, window, zone)
    assert caught.value.field == field


@settings(deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**20), max_value=10**20))
def test_format_decimal_is_exact_and_plain(value: Decimal) -> None:
    text = format_decimal(value)
    assert Decimal(text) == value
    assert "E" not in text and "e" not in text
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("4.50"), "4.5"), (Decimal("1E+3"), "1000"), (Decimal("0.000"), "0"), (Decimal("-0.0100"), "-0.01"),
     (7, "7")],
)
def test_format_decimal_examples(value, text) -> None:
    assert format_decimal(value) == text


# -- gauges ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value_seconds", "hours"),
    [
        (Decimal(3600), "1"),
        (Decimal(1), "0.000277777778"),  # 1/3600 = 0.000277777777(7...): rounded up at the 12th place
        (Decimal(-1), "-0.000277777778"),
        (Decimal("7200.5"), "2.000138888889"),
        (Decimal("1.8E-9"), "0"),  # exactly half of 1E-12 hours: half-even goes to 0
        (Decimal("5.4E-9"), "0.000000000002"),  # 1.5E-12: to the even 2E-12
        (Decimal("9E-9"), "0.000000000002"),  # 2.5E-12: to the even 2E-12
        (Decimal("-5.4E-9"), "-0.000000000002"),
        (Decimal("481949895"), "133874.970833333333"),
        # Far past a default context's 28 digits, still exact.
        (Decimal("3600E+40"), "1" + "0" * 40),
        (Decimal("1" + "0" * 40 + ".0000018"), "2777777777777777777777777777777777777.777777778278"),
    ],
)
def test_gauge_hours_round_half_even_to_twelve_places(value_seconds: Decimal, hours: str) -> None:
    assert format_decimal(gauge_hours(value_seconds)) == hours


@settings(deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**22), max_value=10**22))
def test_gauge_hours_is_the_nearest_twelfth_place(value_seconds: Decimal) -> None:
    exact = Fraction(value_seconds) / 3600
    hours = Fraction(gauge_hours(value_seconds))
    step = Fraction(1, 10**12)
    assert abs(hours - exact) <= step / 2
    assert (hours / step).denominator == 1
    if abs(hours - exact) == step / 2:
        assert (hours / step) % 2 == 0


def _query(aggregation: str, now: datetime, **fields) -> UsageQuery:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    values = {"organisation_id": "org_1", "project_id": "", "code": "storage", "aggregation": aggregation,
              "unique_dimension": "", "filters": {}, "group_by": "", "now": now,
              "range": usage_range(start, start + timedelta(days=30), Window.WHOLE, ""), **fields}
    return UsageQuery(**values)


def test_a_gauge_holds_until_now_or_the_range_end_and_never_reads_bucket_partials() -> None:
    in_progress = _query("weighted_sum", datetime(2026, 11, 10, 8, tzinfo=UTC))
    assert in_progress.is_gauge and not in_progress.reads_buckets
    assert in_progress.held_until == datetime(2026, 11, 10, 8, tzinfo=UTC)
    closed = _query("weighted_sum", datetime(2027, 1, 1, tzinfo=UTC))
    assert closed.held_until == datetime(2026, 12, 1, tzinfo=UTC)
    assert _query("latest", datetime(2027, 1, 1, tzinfo=UTC)).reads_buckets
    assert not _query("unique_count", datetime(2027, 1, 1, tzinfo=UTC)).reads_buckets
