"""google.protobuf.Timestamp <-> aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_runtime import errors
from billing_runtime.timestamps import from_duration, from_timestamp, to_timestamp


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


# A client may put any int64 seconds and int32 nanos on the wire; protobuf's ToDatetime raises ValueError for
# what a Timestamp may not hold, which the services answered with INTERNAL (found by tests/integration/
# test_grpc_fuzz.py: CreateApiKey's expire_time with nanos -1).
@pytest.mark.parametrize(("seconds", "nanos"), [
    (0, -1), (1, 1_000_000_000), (-62_135_596_801, 0), (253_402_300_800, 0), (2**63 - 1, 0), (-(2**63), 0),
    (1_700_000_000, -(2**31)),
])
def test_a_timestamp_out_of_range_is_the_clients_mistake_naming_the_field(seconds: int, nanos: int) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        from_timestamp(Timestamp(seconds=seconds, nanos=nanos), "expire_time")
    assert raised.value.field == "expire_time"


def test_the_extremes_of_the_range_are_timestamps() -> None:
    assert from_timestamp(Timestamp(seconds=-62_135_596_800)) == datetime(1, 1, 1, tzinfo=UTC)
    assert from_timestamp(Timestamp(seconds=253_402_300_799, nanos=999_999_999)) == datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "nanos"), [
    (315_576_000_001, 0), (-(2**63), 0), (0, 1_000_000_000), (1, -1), (-1, 1), (0, -(2**31)),
])
def test_a_duration_out_of_range_is_the_clients_mistake(seconds: int, nanos: int) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        from_duration(Duration(seconds=seconds, nanos=nanos), "overlap")
    assert raised.value.field == "overlap"


def test_a_duration_in_range_is_a_timedelta() -> None:
    assert from_duration(Duration(seconds=90, nanos=500_000_000)) == timedelta(seconds=90.5)
    assert from_duration(Duration(seconds=-1, nanos=-500_000_000)) == timedelta(seconds=-1.5)
    assert from_duration(Duration(seconds=315_576_000_000)) == timedelta(seconds=315_576_000_000)
