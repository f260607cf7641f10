"""How a total's range is split: whole UTC days from usage_days, the partial days at the ends from buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.metering.adapters.usage_repository import whole_utc_days

IST = timezone(timedelta(hours=5, minutes=30))


def test_an_ist_month_is_thirty_utc_days_between_two_partial_days() -> None:
    # October in Asia/Kolkata: 30 September 18:30 UTC to 31 October 18:30 UTC. Head 18:30-24:00 (5.5 h), whole
    # days 1 October to 31 October 00:00 (30 days), tail 00:00-18:30 (18.5 h).
    start, end = datetime(2026, 10, 1, tzinfo=IST), datetime(2026, 11, 1, tzinfo=IST)
    assert whole_utc_days(start, end) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC))


def test_ranges_on_midnights_are_whole_days_only() -> None:
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    assert whole_utc_days(start, end) == (start, end)
    assert whole_utc_days(start, start + timedelta(days=1)) == (start, start + timedelta(days=1))


def test_no_whole_day_inside_leaves_everything_to_the_buckets() -> None:
    # 23:00 to 01:00 crosses a midnight but holds no whole day; 00:00 to 23:45 starts on one but ends short.
    start, end = datetime(2026, 10, 7, 23, tzinfo=UTC), datetime(2026, 10, 8, 1, tzinfo=UTC)
    assert whole_utc_days(start, end) == (end, end)
    start, end = datetime(2026, 10, 7, tzinfo=UTC), datetime(2026, 10, 7, 23, 45, tzinfo=UTC)
    assert whole_utc_days(start, end) == (end, end)


@given(
    st.integers(0, 400 * 96),
    st.integers(1, 40 * 96),
)
def test_the_three_parts_tile_the_range(start_quarter: int, quarters: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC) + start_quarter * timedelta(minutes=15)
    end = start + quarters * timedelta(minutes=15)
    first, last = whole_utc_days(start, end)
    assert start <= first <= last <= end
    if first < last:
        # The middle is whole days; each edge is shorter than a day, so reads at most 95 buckets.
        assert first.time() == last.time() == datetime.min.time()
        assert first - start < timedelta(days=1) and end - last < timedelta(days=1)
    else:
        assert first == last == end
        # No whole UTC day fits: the range holds no [midnight, next midnight).
        midnight = start.replace(hour=0, minute=0)
        midnight += timedelta(days=1) if midnight < start else timedelta(0)
        assert midnight + timedelta(days=1) > end
