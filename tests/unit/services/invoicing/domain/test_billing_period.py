"""Billing periods: months in the organisation's zone, anchor days, keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.billing_period import (
    days,
    days_between,
    is_start_of_day,
    next_period,
    parse_period_key,
    period_containing,
    period_for_key,
    start_of_day,
)


def test_kolkata_month_starts_at_local_midnight() -> None:
    # 2026-10-01 00:00 +05:30 is 2026-09-30 18:30 UTC; 2026-11-01 00:00 +05:30 is 2026-10-31 18:30 UTC.
    period = period_for_key("2026-10", "Asia/Kolkata")
    assert period.start == datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
    assert period.end == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    assert period.key == "2026-10"
    assert days(period) == 31


def test_new_york_month_with_dst_end_is_one_hour_longer() -> None:
    # EDT (-4) until 2026-11-01 02:00 local, EST (-5) after: November starts 04:00Z, December starts 05:00Z.
    period = period_for_key("2026-11", "America/New_York")
    assert period.start == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert period.end - period.start == timedelta(days=30, hours=1)
    assert days(period) == 30


def test_new_york_march_with_dst_start() -> None:
    # EST until 2026-03-08; March starts 05:00Z (-5), April starts 04:00Z (-4): 31 days less one hour.
    period = period_for_key("2026-03", "America/New_York")
    assert period.start == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert period.end == datetime(2026, 4, 1, 4, tzinfo=UTC)
    assert days(period) == 31


def test_anchor_day_15() -> None:
    period = period_for_key("2026-01", "UTC", anchor_day=15)
    assert (period.start, period.end) == (datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 15, tzinfo=UTC))
    assert days(period) == 31
    # 10 February falls before the anchor: it belongs to the period that started on 15 January.
    assert period_containing(datetime(2026, 2, 10, tzinfo=UTC), "UTC", anchor_day=15) == period
    assert period_containing(datetime(2026, 2, 15, tzinfo=UTC), "UTC", anchor_day=15).key == "2026-02"
    assert next_period(period) == period_for_key("2026-02", "UTC", anchor_day=15)


def test_december_rolls_into_next_year() -> None:
    period = period_for_key("2026-12", "UTC")
    assert period.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_containing(datetime(2027, 1, 3, tzinfo=UTC), "UTC", anchor_day=5).key == "2026-12"


def test_period_containing_uses_local_date() -> None:
    # 2026-10-31 19:00Z is 2026-11-01 00:30 in Kolkata: November there, October in UTC.
    instant = datetime(2026, 10, 31, 19, tzinfo=UTC)
    assert period_containing(instant, "Asia/Kolkata").key == "2026-11"
    assert period_containing(instant, "UTC").key == "2026-10"


def test_zone_skipping_midnight_starts_day_at_the_jump() -> None:
    # America/Santiago jumped from 2022-09-11 00:00 (-04) to 01:00 (-03): that day began at 04:00Z.
    assert start_of_day(datetime(2022, 9, 11).date(), "America/Santiago") == datetime(2022, 9, 11, 4, tzinfo=UTC)


@pytest.mark.parametrize("key", ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", "", "2026-01-01", "１２３４-01"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_period_key(key)
    assert error.value.field == "period"


@pytest.mark.parametrize("anchor", [0, 29, 31, -1])
def test_bad_anchor(anchor: int) -> None:
    with pytest.raises(InvalidArgument, match="from 1 to 28"):
        period_for_key("2026-01", "UTC", anchor_day=anchor)


def test_bad_zone() -> None:
    with pytest.raises(InvalidArgument, match="IANA"):
        period_for_key("2026-01", "Mars/Olympus")


def test_naive_instant_refused() -> None:
    with pytest.raises(InvalidArgument, match="aware"):
        period_containing(datetime(2026, 1, 1), "UTC")


def test_partial_day_counts_whole() -> None:
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert days_between(start, datetime(2026, 12, 1, tzinfo=UTC), "UTC") == 11  # 20th (part) .. 30th
    assert days_between(datetime(2026, 11, 1, tzinfo=UTC), start, "UTC") == 20  # 1st .. 20th (part)
    assert not is_start_of_day(start, "UTC")
    assert is_start_of_day(datetime(2026, 11, 19, 18, 30, tzinfo=UTC), "Asia/Kolkata")


zones = st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Lord_Howe"])


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    zones,
    st.integers(1, 28),
)
def test_containing_period_contains_and_chains(instant: datetime, zone: str, anchor: int) -> None:
    period = period_containing(instant, zone, anchor)
    assert period.start <= instant < period.end
    assert 28 <= days(period) <= 31
    following = next_period(period)
    assert following.start == period.end
    assert period_containing(period.end, zone, anchor) == following
