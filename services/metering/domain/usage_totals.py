"""Many whole-range usage questions at once (a billing period's usage of many organisations), and the paging of
a metric's event values.

Each total means exactly what QueryUsage answers with window WHOLE; this module only validates the questions,
names the one at fault by its index, and says which of them the 15-minute buckets alone can answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing_runtime.errors import InvalidArgument
from services.metering.domain.metric import Metric, validate_code
from services.metering.domain.usage import PARTIAL_AGGREGATIONS, UsageRange, Window, floor_bucket, usage_range

MAX_TOTAL_QUERIES = 10_000
DEFAULT_EVENT_PAGE = 1_000
MAX_EVENT_PAGE = 10_000


@dataclass(frozen=True)
class TotalQuery:
    """One question as it arrives: an organisation's metric (by code) over [start, end)."""

    organisation_id: str
    metric_code: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class CheckedTotalQuery:
    organisation_id: str
    metric_code: str
    range: UsageRange

    @property
    def aligned(self) -> bool:
        """Both ends on the 15-minute grid: the whole range is made of buckets, no event needs reading."""
        return floor_bucket(self.range.start) == self.range.start and floor_bucket(self.range.end) == self.range.end


@dataclass(frozen=True)
class UsageTotal:
    """A question's answer. ``metric`` is None when the organisation has no active metric with the code."""

    organisation_id: str
    metric_code: str
    metric: Metric | None
    value: str  # exact decimal string; "0" when no event counted
    event_count: int


def check_total_queries(queries: Sequence[TotalQuery]) -> list[CheckedTotalQuery]:
    """Validate every question; InvalidArgument names the first bad field with its index, e.g.
    ``queries[3].end_time``."""
    if len(queries) > MAX_TOTAL_QUERIES:
        raise InvalidArgument(
            f"at most {MAX_TOTAL_QUERIES} queries per call, got {len(queries)}; split them", field="queries"
        )
    checked = []
    for index, query in enumerate(queries):
        try:
            checked.append(_check(query))
        except InvalidArgument as error:
            raise InvalidArgument(error.message, field=f"queries[{index}].{error.field}") from None
    return checked


def _check(query: TotalQuery) -> CheckedTotalQuery:
    if not query.organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    validate_code(query.metric_code, "metric_code")
    return CheckedTotalQuery(query.organisation_id, query.metric_code, usage_range(query.start, query.end,
                                                                                   Window.WHOLE, ""))


def reads_buckets_only(metric: Metric, query: CheckedTotalQuery) -> bool:
    """Whether the buckets alone answer: an aggregation buckets keep, no filters, both ends on the grid."""
    return metric.aggregation in PARTIAL_AGGREGATIONS and not metric.filters and query.aligned


# -- event values ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventCursor:
    """Where a page of event values ended: events are ordered by (timestamp, event_id, project_id), the project
    only breaking ties between projects that reuse an event id at the same instant."""

    timestamp: datetime
    event_id: str
    project_id: str

    def token(self) -> str:
        micros = (self.timestamp - _EPOCH) // timedelta(microseconds=1)
        raw = json.dumps([micros, self.event_id, self.project_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_cursor(token: str) -> EventCursor | None:
    """The cursor a page token carries, None for the first page; InvalidArgument for anything else."""
    if not token:
        return None
    try:
        micros, event_id, project_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not (isinstance(micros, int) and isinstance(event_id, str) and isinstance(project_id, str)):
            raise ValueError(token)
        return EventCursor(_EPOCH + timedelta(microseconds=micros), event_id, project_id)
    except (ValueError, TypeError, binascii.Error, OverflowError):
        raise InvalidArgument("is not a token returned by a previous page", field="page_token") from None


def event_page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_EVENT_PAGE:
        raise InvalidArgument(
            f"must be between 0 and {MAX_EVENT_PAGE} (0 means {DEFAULT_EVENT_PAGE})", field="page_size"
        )
    return requested or DEFAULT_EVENT_PAGE
