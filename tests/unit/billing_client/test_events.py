"""build_event: exact decimal values, timestamps, dimensions and ids, with errors naming what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import grpc
import pytest

from billing_client.events import build_event, decimal_string
from billing_client.retries import StreamBroken, is_retryable, status_of


@pytest.mark.parametrize(
    ("value", "wire"),
    [(12, "12"), (-3, "-3"), (Decimal("0.25"), "0.25"), (Decimal("1E+3"), "1E+3"), ("1e3", "1e3"), (" 7 ", "7")],
)
def test_values_travel_as_exact_decimal_strings(value, wire):
    assert decimal_string(value) == wire


@pytest.mark.parametrize("value", [0.1, True, None, [1]])
def test_floats_and_other_types_are_refused(value):
    with pytest.raises(TypeError, match="value"):
        decimal_string(value)


@pytest.mark.parametrize("value", ["abc", "NaN", "inf", Decimal("Infinity"), Decimal("NaN")])
def test_non_finite_or_malformed_values_are_refused(value):
    with pytest.raises(ValueError, match="value"):
        decimal_string(value)


def test_an_event_gets_a_time_ordered_id_and_now_as_its_time():
    before = datetime.now(UTC)
    first = build_event("api.requests", 1)
    second = build_event("api.requests", 1)
    assert len(first.event_id) == 26 and first.event_id != second.event_id
    assert first.event_id[:10] <= second.event_id[:10]  # the millisecond prefix never goes backwards
    assert first.timestamp.ToDatetime(tzinfo=UTC) >= before.replace(microsecond=0)


def test_given_fields_are_carried_exactly():
    moment = datetime(2026, 11, 21, 11, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    event = build_event(
        "storage.gb", Decimal("1.5"), timestamp=moment, dimensions={"region": "in"}, event_id="mine", unit="GB"
    )
    assert (event.event_id, event.metric, event.value, event.unit) == ("mine", "storage.gb", "1.5", "GB")
    assert dict(event.dimensions) == {"region": "in"}
    assert event.timestamp.ToDatetime(tzinfo=UTC) == moment.astimezone(UTC)
    assert event.timestamp.nanos == 123_456_000


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"timestamp": datetime(2026, 1, 1)}, ValueError, "timezone-aware"),
        ({"timestamp": "2026-01-01"}, TypeError, "datetime"),
        ({"dimensions": {"n": 1}}, TypeError, "dimensions"),
        ({"event_id": ""}, ValueError, "event_id"),
        ({"unit": 5}, TypeError, "unit"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(kwargs, error, words):
    with pytest.raises(error, match=words):
        build_event("api.requests", 1, **kwargs)


def test_an_empty_metric_is_refused():
    with pytest.raises(ValueError, match="metric"):
        build_event("", 1)


def _rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="because")


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.CANCELLED, True),
        (grpc.StatusCode.INTERNAL, True),
        (grpc.StatusCode.UNAUTHENTICATED, False),
        (grpc.StatusCode.PERMISSION_DENIED, False),
        (grpc.StatusCode.INVALID_ARGUMENT, False),
    ],
)
def test_only_transient_failures_are_retried(code, retryable):
    assert is_retryable(_rpc_error(code)) is retryable
    assert status_of(_rpc_error(code)) == (code, "because")


def test_a_stream_that_ends_early_is_retried_as_unavailable():
    assert is_retryable(StreamBroken("gone")) and status_of(StreamBroken("gone"))[0] == grpc.StatusCode.UNAVAILABLE
    assert not is_retryable(ValueError("a bug"))
