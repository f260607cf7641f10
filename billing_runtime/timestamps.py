"""google.protobuf.Timestamp <-> aware datetime, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from billing_runtime import errors

# What a Timestamp may hold (google/protobuf/timestamp.proto): 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, and
# nanos 0..999,999,999. The wire carries any int64/int32, so a client can send more.
MIN_SECONDS = -62_135_596_800
MAX_SECONDS = 253_402_300_799
MAX_NANOS = 999_999_999
# A Duration's bounds (google/protobuf/duration.proto): about +-10,000 years, nanos of the seconds' sign.
MAX_DURATION_SECONDS = 315_576_000_000


def to_timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def from_timestamp(stamp: Timestamp | None, field: str | None = None) -> datetime | None:
    """None for an unset (all-zero) timestamp; InvalidArgument (naming ``field`` when given) for one outside
    what a Timestamp may hold, which protobuf would refuse with a ValueError."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    if not (MIN_SECONDS <= stamp.seconds <= MAX_SECONDS and 0 <= stamp.nanos <= MAX_NANOS):
        raise errors.InvalidArgument(
            "is not a valid timestamp (0001-01-01 to 9999-12-31 UTC, nanos 0 to 999999999)"
            if field else "a timestamp is not valid (0001-01-01 to 9999-12-31 UTC, nanos 0 to 999999999)",
            field=field,
        )
    return stamp.ToDatetime(tzinfo=UTC)


def from_duration(duration: Duration, field: str | None = None) -> timedelta:
    """A Duration as a timedelta; InvalidArgument (naming ``field`` when given) for one outside what a Duration
    may hold (seconds beyond +-315,576,000,000, nanos beyond +-999,999,999 or of the other sign)."""
    seconds, nanos = duration.seconds, duration.nanos
    if not (abs(seconds) <= MAX_DURATION_SECONDS and abs(nanos) <= MAX_NANOS
            and (seconds == 0 or nanos == 0 or (seconds > 0) == (nanos > 0))):
        raise errors.InvalidArgument("is not a valid duration" if field else "a duration is not valid", field=field)
    try:
        return duration.ToTimedelta()
    except OverflowError:  # beyond timedelta's 999,999,999 days
        raise errors.InvalidArgument("is not a valid duration" if field else "a duration is not valid",
                                     field=field) from None
