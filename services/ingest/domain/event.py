"""What makes a usage event acceptable: the rules ingest applies to every event before it becomes durable.

Pure functions over plain values, so they cost microseconds and are tested without I/O. A rule that fails
returns a :class:`Rejection` naming the field and saying what is wrong, in words a client can act on; a bad event
rejects that event only, never its batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from services.ingest.domain.quota import QuotaReport

METRIC_CODE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
# Any visible characters: UUIDs, ULIDs, "order-42:line-3" ... but no spaces or control characters, which are
# always a client bug (a stray newline would otherwise make two "different" ids of one event).
EVENT_ID = re.compile(r"[^\s\x00-\x1f\x7f]{1,128}")
MAX_EVENT_ID_LENGTH = 128
# A plain decimal number: ASCII digits with an optional point and exponent. No "NaN", "Infinity", "1_000",
# other scripts' digits or surrounding spaces, which Python's Decimal would otherwise accept (and PostgreSQL not).
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
MAX_VALUE_LENGTH = 64
# |value| < 10^30 and at most 18 decimal places: far beyond any real usage, and exact in PostgreSQL numeric.
MAX_VALUE_ADJUSTED_EXPONENT = 29
MIN_VALUE_EXPONENT = -18
MAX_UNIT_LENGTH = 32


@dataclass(frozen=True)
class EventLimits:
    """Bounds on what one event and one batch may carry; configurable per deployment."""

    max_batch_events: int = 10_000
    max_dimensions: int = 32
    max_dimension_key_length: int = 64
    max_dimension_value_length: int = 256
    # How old an event may be (late events are fine until the open billing period's grace ends) ...
    past_window: timedelta = timedelta(days=35)
    # ... and how far ahead of our clock (clients' clocks drift; the far future is a bug).
    future_window: timedelta = timedelta(minutes=5)


ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class EventResult:
    index: int
    event_id: str
    status: str
    reason: str = ""
    field: str = ""
    generated: bool = False


@dataclass
class BatchOutcome:
    """Counts for the whole batch; ``results`` holds only the events that are not plainly accepted."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    results: list[EventResult] = field(default_factory=list)
    # Of the rejected, those refused for a hard cap (their reason starts with quota.QUOTA_EXCEEDED) ...
    quota_refused: int = 0
    # ... whole seconds until the quota that refused them resets (None when none was refused) ...
    retry_after_seconds: int | None = None
    # ... and every quota that applied to the batch, one per metric.
    quotas: list[QuotaReport] = field(default_factory=list)

    @property
    def all_refused_for_quota(self) -> bool:
        """Every event of the batch was refused for a quota: what IngestEvents answers RESOURCE_EXHAUSTED."""
        return self.quota_refused > 0 and self.quota_refused == self.accepted + self.duplicates + self.rejected


class Rejection(NamedTuple):
    field: str
    reason: str


def check_event_id(event_id: str) -> Rejection | None:
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        return Rejection("event_id", f"is {len(event_id)} characters long; at most {MAX_EVENT_ID_LENGTH} allowed")
    if EVENT_ID.fullmatch(event_id) is None:
        return Rejection("event_id", "must not contain spaces or control characters")
    return None


def check_metric(metric: str) -> Rejection | None:
    if not metric:
        return Rejection("metric", "is required")
    if METRIC_CODE.fullmatch(metric) is None:
        return Rejection(
            "metric",
            f"{metric[:80]!r} is not a metric code: a lowercase letter, then lowercase letters, digits, "
            "'_', '.' or '-', at most 64 characters",
        )
    return None


def check_value(value: str) -> Rejection | None:
    """A finite decimal, bounded in size and precision. Returned as is: PostgreSQL numeric parses it exactly."""
    if not value:
        return Rejection("value", "is required: a decimal number as a string, e.g. \"1\" or \"0.25\"")
    if len(value) > MAX_VALUE_LENGTH or DECIMAL.fullmatch(value) is None:
        return Rejection("value", f"{value[:80]!r} is not a finite decimal number")
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal parses
        return Rejection("value", f"{value[:80]!r} is not a finite decimal number")
    if number and number.adjusted() > MAX_VALUE_ADJUSTED_EXPONENT:
        return Rejection("value", f"{value} is too large: the magnitude must be below 1e30")
    if _decimal_places(number) > -MIN_VALUE_EXPONENT:
        return Rejection("value", f"{value} has more than {-MIN_VALUE_EXPONENT} decimal places")
    return None


def _decimal_places(number: Decimal) -> int:
    """Decimal places that matter: "1.50" has 1, "15.0e-1" has 1, "1e3" has 0 (trailing zeros do not count)."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def check_timestamp(seconds: int, now_seconds: float, limits: EventLimits) -> Rejection | None:
    """The event's time (Unix seconds) against the accepted window around ``now_seconds``."""
    if seconds < now_seconds - limits.past_window.total_seconds():
        return Rejection(
            "timestamp", f"is older than the accepted window of {_describe(limits.past_window)} before now"
        )
    if seconds > now_seconds + limits.future_window.total_seconds():
        return Rejection(
            "timestamp", f"is more than {_describe(limits.future_window)} in the future (check the sender's clock)"
        )
    return None


def check_dimensions(dimensions: Mapping[str, str], limits: EventLimits) -> Rejection | None:
    if len(dimensions) > limits.max_dimensions:
        return Rejection("dimensions", f"has {len(dimensions)} entries; at most {limits.max_dimensions} allowed")
    for key, value in dimensions.items():
        if not key or len(key) > limits.max_dimension_key_length:
            return Rejection(
                "dimensions", f"key {key[:80]!r} must be 1 to {limits.max_dimension_key_length} characters"
            )
        if "\x00" in key or "\x00" in value:
            # PostgreSQL cannot store NUL in text or JSON; refused here, it cannot spoil the rest of its batch.
            return Rejection("dimensions", f"key or value of {key[:80]!r} contains a NUL character")
        if len(value) > limits.max_dimension_value_length:
            return Rejection(
                "dimensions",
                f"value of {key!r} is {len(value)} characters; at most {limits.max_dimension_value_length} allowed",
            )
    return None


def check_unit(unit: str) -> Rejection | None:
    if len(unit) > MAX_UNIT_LENGTH:
        return Rejection("unit", f"is {len(unit)} characters; at most {MAX_UNIT_LENGTH} allowed")
    if "\x00" in unit:
        return Rejection("unit", "contains a NUL character")
    return None


def check_batch_size(count: int, limits: EventLimits) -> str | None:
    """The reason a whole batch is refused for its size, or None."""
    if count > limits.max_batch_events:
        return f"a batch carries at most {limits.max_batch_events} events; this one has {count}: split it"
    return None


def _describe(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"
