"""google.protobuf.Timestamp <-> aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_runtime.timestamps import from_timestamp, to_timestamp


def test_to_timestamp_exact_fields() -> None:
    stamp = to_timestamp(datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))
    assert (stamp.seconds, stamp.nanos) == (1_704_067_200, 123_456_000)


def test_non_utc_input_is_converted() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    stamp = to_timestamp(datetime(2024, 1, 1, 5, 30, tzinfo=ist))
    assert (stamp.seconds, stamp.nanos) == (1_704_067_200, 0)


def test_from_timestamp_is_aware_utc() -> None:
    value = from_timestamp(Timestamp(seconds=1_704_067_200, nanos=123_456_000))
    assert value == datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert value is not None and value.utcoffset() == timedelta(0)


def test_round_trip_keeps_microseconds() -> None:
    value = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert from_timestamp(to_timestamp(value)) == value


def test_round_trip_of_non_utc_value_is_the_same_instant() -> None:
    value = datetime(2025, 6, 30, 9, 15, 0, 42, tzinfo=timezone(timedelta(hours=-7)))
    result = from_timestamp(to_timestamp(value))
    assert result == value
    assert result is not None and result.tzinfo == UTC
    assert result.hour == 16


def test_unset_timestamp_is_none() -> None:
    assert from_timestamp(Timestamp()) is None
    assert from_timestamp(None) is None


def test_only_nanos_or_only_seconds_is_set() -> None:
    assert from_timestamp(Timestamp(seconds=0, nanos=1000)) == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert from_timestamp(Timestamp(seconds=1, nanos=0)) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_before_epoch() -> None:
    value = datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    stamp = to_timestamp(value)
    assert (stamp.seconds, stamp.nanos) == (-1, 500_000_000)
    assert from_timestamp(stamp) == value


@settings(max_examples=200)
@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(9999, 12, 31),
        timezones=st.just(UTC),
    ).filter(lambda d: d != datetime(1970, 1, 1, tzinfo=UTC))
)
def test_round_trip_property(value: datetime) -> None:
    assert from_timestamp(to_timestamp(value)) == value
