"""Turning a caller's values into the protobuf ``Event`` that ingest takes, with clear errors for bad input.

The client checks types and what it can decide alone (a value is a finite decimal, a timestamp has a time zone);
the rules that belong to the platform (metric code format, timestamp window, dimension limits) are ingest's, and
an event breaking them comes back as rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from time import time_ns

from billing.ingest.v1 import ingest_pb2
from billing_runtime.ids import new_ulid

Value = Decimal | int | str


def new_event_id() -> str:
    """A fresh client-side event id: a ULID, so ids are unique and time-ordered (kind to metering's index)."""
    return new_ulid()


def decimal_string(value: Value) -> str:
    """``value`` as the decimal string the wire carries. Floats are refused: quantities here are exact."""
    # bool is an int subclass, and True as a quantity is a bug in the caller, not a 1.
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(
            f"value must be a Decimal, int or decimal string, not {type(value).__name__}"
            + (" (floats are inexact: use Decimal('0.1') or '0.1')" if isinstance(value, float) else "")
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"value: {value!r} is not a decimal number") from None
        if not parsed.is_finite():
            raise ValueError(f"value: {value!r} is not a finite number")
        return value.strip()
    if not value.is_finite():
        raise ValueError(f"value: {value} is not a finite number")
    return str(value)


def set_timestamp(event: ingest_pb2.Event, timestamp: datetime | None) -> None:
    """Now when ``timestamp`` is None; an aware datetime otherwise (a naive one is ambiguous, so refused)."""
    if timestamp is None:
        seconds, nanos = divmod(time_ns(), 1_000_000_000)
    else:
        if not isinstance(timestamp, datetime):
            raise TypeError(f"timestamp must be a datetime, not {type(timestamp).__name__}")
        offset = timestamp.utcoffset()
        if offset is None:
            raise ValueError("timestamp must be timezone-aware (e.g. datetime.now(UTC))")
        # Whole seconds and microseconds from integer arithmetic: datetime.timestamp() goes through a float.
        delta = timestamp.replace(tzinfo=None) - offset - _EPOCH
        seconds = delta.days * 86_400 + delta.seconds
        nanos = delta.microseconds * 1_000
    event.timestamp.seconds = seconds
    event.timestamp.nanos = nanos


def build_event(
    metric: str,
    value: Value,
    *,
    timestamp: datetime | None = None,
    dimensions: Mapping[str, str] | None = None,
    event_id: str | None = None,
    unit: str = "",
) -> ingest_pb2.Event:
    """One ``Event``; ``event_id`` defaults to a new ULID so that every resend of it carries the same id."""
    if not isinstance(metric, str) or not metric:
        raise ValueError("metric must be a non-empty string (the metric's code, e.g. 'api.requests')")
    if event_id is None:
        event_id = new_event_id()
    elif not isinstance(event_id, str) or not event_id:
        raise ValueError("event_id must be a non-empty string, or None to let the client choose one")
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a string, not {type(unit).__name__}")
    event = ingest_pb2.Event(event_id=event_id, metric=metric, value=decimal_string(value), unit=unit)
    set_timestamp(event, timestamp)
    if dimensions:
        for key, dimension_value in dimensions.items():
            if not isinstance(key, str) or not isinstance(dimension_value, str):
                raise TypeError(f"dimensions must map strings to strings; {key!r}: {dimension_value!r} does not")
        event.dimensions.update(dimensions)
    return event


_EPOCH = datetime(1970, 1, 1)
