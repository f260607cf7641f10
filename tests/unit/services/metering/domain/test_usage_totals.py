from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.metering.domain.metric import Aggregation, Metric
from services.metering.domain.usage_totals import (
    MAX_TOTAL_QUERIES,
    EventCursor,
    TotalQuery,
    check_total_queries,
    event_cursor,
    event_page_size,
    reads_buckets_only,
)

# October 2026 in Asia/Kolkata: both ends at 18:30 UTC, on the 15-minute grid.
OCT = (datetime(2026, 9, 30, 18, 30, tzinfo=UTC), datetime(2026, 10, 31, 18, 30, tzinfo=UTC))


def metric(aggregation: Aggregation = Aggregation.SUM, **fields) -> Metric:
    return Metric(id="met_1", organisation_id="org_1", code="req", name="r", unit="", aggregation=aggregation,
                  unique_dimension=fields.pop("unique_dimension", ""), **fields)


def test_questions_keep_their_order_and_ranges() -> None:
    checked = check_total_queries([TotalQuery("org_1", "req", *OCT), TotalQuery("org_2", "tok", OCT[0], OCT[0] +
                                                                                  timedelta(seconds=1))])
    assert [(q.organisation_id, q.metric_code, q.range.start, q.range.end) for q in checked] == [
        ("org_1", "req", *OCT), ("org_2", "tok", OCT[0], OCT[0] + timedelta(seconds=1)),
    ]
    assert [q.aligned for q in checked] == [True, False]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (TotalQuery("", "req", *OCT), "queries[1].organisation_id"),
        (TotalQuery("org_1", "Req", *OCT), "queries[1].metric_code"),
        (TotalQuery("org_1", "req", None, OCT[1]), "queries[1].start_time"),
        (TotalQuery("org_1", "req", OCT[0], None), "queries[1].end_time"),
        (TotalQuery("org_1", "req", OCT[1], OCT[0]), "queries[1].end_time"),
        (TotalQuery("org_1", "req", datetime(1999, 12, 31, tzinfo=UTC), OCT[1]), "queries[1].start_time"),
    ],
)
def test_a_bad_question_is_named_by_index_and_field(bad: TotalQuery, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_total_queries([TotalQuery("org_1", "req", *OCT), bad])
    assert caught.value.field == field


def test_at_most_ten_thousand_questions() -> None:
    assert len(check_total_queries([TotalQuery("org_1", "req", *OCT)] * MAX_TOTAL_QUERIES)) == MAX_TOTAL_QUERIES
    with pytest.raises(InvalidArgument) as caught:
        check_total_queries([TotalQuery("org_1", "req", *OCT)] * (MAX_TOTAL_QUERIES + 1))
    assert caught.value.field == "queries"


def test_only_unfiltered_bucket_aggregations_over_aligned_ranges_read_buckets_only() -> None:
    aligned, cut = check_total_queries([TotalQuery("o", "req", *OCT), TotalQuery("o", "req", OCT[0], OCT[1] -
                                                                                  timedelta(microseconds=1))])
    for aggregation in (Aggregation.SUM, Aggregation.COUNT, Aggregation.MIN, Aggregation.MAX, Aggregation.LATEST):
        assert reads_buckets_only(metric(aggregation), aligned)
        assert not reads_buckets_only(metric(aggregation), cut)
    assert not reads_buckets_only(metric(Aggregation.UNIQUE_COUNT, unique_dimension="user"), aligned)
    assert not reads_buckets_only(metric(filters={"region": ("in",)}), aligned)


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    event_id=st.text(min_size=1, max_size=128),
    project_id=st.text(max_size=40),
)
def test_a_page_token_gives_back_its_cursor(moment: datetime, event_id: str, project_id: str) -> None:
    cursor = EventCursor(moment, event_id, project_id)
    assert event_cursor(cursor.token()) == cursor


@pytest.mark.parametrize("token", ["x", "not-a-token", "W10", "WzEsMiwzXQ", "e30", "!!!!"])
def test_a_made_up_page_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        event_cursor(token)
    assert caught.value.field == "page_token"


def test_page_size() -> None:
    assert (event_page_size(0), event_page_size(1), event_page_size(10_000)) == (1_000, 1, 10_000)
    for bad in (-1, 10_001):
        with pytest.raises(InvalidArgument):
            event_page_size(bad)
