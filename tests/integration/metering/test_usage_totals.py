"""GetUsageTotals and ListEventValues (through invoicing's metering client, as invoicing calls them): totals equal
QueryUsage's whole-range answers for every aggregation, across Asia/Kolkata month boundaries and ranges that cut
15-minute buckets; event values come in (timestamp, event_id) order, paged, with the metric's filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from billing.metering.v1 import metering_pb2
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.service.billing_inputs import UsageTotal, UsageTotalQuery
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.metering.conftest import E, batch, define, eventually, project_id, publish, whole_usage

pytestmark = pytest.mark.usefixtures("metering")

A = metering_pb2
US = timedelta(microseconds=1)
# Asia/Kolkata (+05:30) months start at 18:30 UTC on the previous day.
OCT_IST = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
NOV_IST = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
DEC_IST = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
MID_OCT = datetime(2026, 10, 15, 12, tzinfo=UTC)

# (project index, event); p2's "a4" shares p1's "a4" id and instant: only the project tells them apart.
EVENTS = [
    (0, E("a1", "5", OCT_IST - US, "req", {"region": "in", "user": "u1"})),  # September in IST
    (0, E("a2", "1.5", OCT_IST, "req", {"region": "in", "user": "u1"})),  # first instant of October in IST
    (0, E("a3", "2.25", OCT_IST + timedelta(minutes=7, seconds=30), "req", {"region": "us", "user": "u2"})),
    (0, E("a4", "-1", MID_OCT, "req", {"region": "in", "user": "u3"})),
    (1, E("a4", "3", MID_OCT, "req", {"region": "in", "user": "u4"})),
    (0, E("a5", "10", NOV_IST - US, "req", {"region": "eu", "user": "u1"})),  # last instant of October in IST
    (0, E("a6", "0.125", NOV_IST, "req", {"region": "in", "user": "u2"})),
    (1, E("b2", "7", datetime(2026, 11, 20, tzinfo=UTC), "req", {"region": "us"})),
]

RANGES = {
    "october_ist": (OCT_IST, NOV_IST),
    "november_ist": (NOV_IST, DEC_IST),
    "september_ist": (datetime(2026, 8, 31, 18, 30, tzinfo=UTC), OCT_IST),
    # Both ends inside a bucket: the edges are read from events.
    "unaligned": (OCT_IST + timedelta(minutes=5), NOV_IST + timedelta(seconds=1)),
    "inside_one_bucket": (OCT_IST - timedelta(seconds=1), OCT_IST + timedelta(seconds=1)),
    "empty": (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
    "everything": (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
}


@pytest.fixture
async def dataset(metering_stub, jetstream, organisation_id):
    projects = [project_id(), project_id()]
    for index, project in enumerate(projects):
        await publish(jetstream, batch(organisation_id, project, [e for p, e in EVENTS if p == index]))

    async def count():
        response = await metering_stub.ListObservedMetrics(
            metering_pb2.ListObservedMetricsRequest(organisation_id=organisation_id)
        )
        return sum(m.event_count for m in response.metrics)

    await eventually(count, lambda n: n == len(EVENTS))
    return organisation_id, projects


@pytest.fixture
async def client(metering):
    usage = MeteringUsage(metering.address)
    yield usage
    await usage.close()


# Hand-computed totals (value, event_count) of the sum metric:
#   october: 1.5 + 2.25 - 1 + 3 + 10 = 15.75 (5); november: 0.125 + 7 = 7.125 (2); september: 5 (1);
#   unaligned: 2.25 - 1 + 3 + 10 + 0.125 = 14.375 (5); inside one bucket: 5 + 1.5 = 6.5 (2);
#   everything: 5 + 15.75 + 7.125 = 27.875 (8).
SUMS = {
    "october_ist": ("15.75", 5), "november_ist": ("7.125", 2), "september_ist": ("5", 1), "unaligned": ("14.375", 5),
    "inside_one_bucket": ("6.5", 2), "empty": ("0", 0), "everything": ("27.875", 8),
}
# Per aggregation: the metric's extra fields, and hand-computed values for October and the unaligned range.
AGGREGATIONS = [
    (A.AGGREGATION_SUM, {}, "sum", "15.75", "14.375"),
    (A.AGGREGATION_COUNT, {}, "count", "5", "5"),
    (A.AGGREGATION_MIN, {}, "min", "-1", "-1"),
    (A.AGGREGATION_MAX, {}, "max", "10", "10"),
    (A.AGGREGATION_LATEST, {}, "latest", "10", "0.125"),  # a5 is October's last; a6 follows it in 'unaligned'
    (A.AGGREGATION_UNIQUE_COUNT, {"unique_dimension": "user"}, "unique_count", "4", "4"),  # u1..u4 / u2,u3,u4,u1
    # region in/us: october a2 + a3 + a4 + p2's a4 = 5.75; unaligned a3 + a4 + p2's a4 + a6 = 4.375
    (A.AGGREGATION_SUM, {"filters": {"region": A.DimensionFilter(values=["in", "us"])}}, "sum", "5.75", "4.375"),
]


@pytest.mark.parametrize(("aggregation", "extra", "name", "october", "unaligned"), AGGREGATIONS)
async def test_totals_equal_query_usage_for_every_aggregation(
    metering_stub, client, dataset, aggregation, extra, name, october, unaligned
) -> None:
    organisation, _ = dataset
    metric = await define(metering_stub, organisation, "req", aggregation, **extra)
    names = list(RANGES)
    queries = [UsageTotalQuery(organisation, "req", *RANGES[n]) for n in names]
    queries.insert(3, UsageTotalQuery(organisation, "nothing.here", *RANGES["october_ist"]))  # mixed in: order kept
    totals = await client.usage_totals(queries)
    assert totals[3] == UsageTotal(organisation, "nothing.here", False, "", "", Decimal(0), 0)
    del totals[3]
    for range_name, total in zip(names, totals, strict=True):
        value, count = await whole_usage(metering_stub, organisation, "req", *RANGES[range_name])
        assert (total.metric_found, total.metric_id, total.aggregation) == (True, metric.id, name)
        assert (total.value, total.event_count) == (Decimal(value or "0"), count), range_name
    by_name = dict(zip(names, totals, strict=True))
    assert str(by_name["october_ist"].value) == october
    assert str(by_name["unaligned"].value) == unaligned
    assert (by_name["empty"].value, by_name["empty"].event_count) == (Decimal(0), 0)
    if aggregation == A.AGGREGATION_SUM and not extra:
        assert {n: (str(t.value), t.event_count) for n, t in by_name.items()} == SUMS


async def test_an_archived_metric_or_another_organisation_is_not_found(metering_stub, client, dataset) -> None:
    organisation, _ = dataset
    metric = await define(metering_stub, organisation, "req", A.AGGREGATION_SUM)
    await metering_stub.ArchiveMetric(metering_pb2.ArchiveMetricRequest(metric_id=metric.id))
    totals = await client.usage_totals([
        UsageTotalQuery(organisation, "req", *RANGES["october_ist"]),
        UsageTotalQuery("org_someoneelse", "req", *RANGES["october_ist"]),
    ])
    assert [(t.metric_found, t.value, t.event_count) for t in totals] == [(False, 0, 0), (False, 0, 0)]
    assert await client.usage_totals([]) == []


async def test_two_thousand_questions_in_one_call_and_in_chunks(metering_stub, client, dataset) -> None:
    """Sliding ten-day windows, every seventh cutting a bucket; the answers equal a sum over EVENTS."""
    organisation, _ = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_SUM)
    first = datetime(2026, 9, 25, tzinfo=UTC)
    queries = []
    for k in range(2000):
        start = first + k * timedelta(minutes=30) + (timedelta(seconds=1) if k % 7 == 0 else timedelta(0))
        queries.append(UsageTotalQuery(organisation, "req", start, start + timedelta(days=10)))
    expected = [
        (sum((Decimal(e.value) for _, e in EVENTS if q.start <= e.timestamp < q.end), Decimal(0)),
         sum(1 for _, e in EVENTS if q.start <= e.timestamp < q.end))
        for q in queries
    ]
    assert len({value for value, _ in expected}) > 5  # the windows really slide over different events
    one_call = await client.usage_totals(queries)
    assert [(t.value, t.event_count) for t in one_call] == expected
    chunked = await client.usage_totals(queries, chunk_size=700)
    assert chunked == one_call


def _request(queries: list[tuple[str, str, datetime | None, datetime | None]]) -> A.GetUsageTotalsRequest:
    request = A.GetUsageTotalsRequest()
    for organisation, code, start, end in queries:
        query = request.queries.add(organisation_id=organisation, metric_code=code)
        if start is not None:
            query.start_time.CopyFrom(to_timestamp(start))
        if end is not None:
            query.end_time.CopyFrom(to_timestamp(end))
    return request


START, END = RANGES["october_ist"]
BAD = [
    (("", "req", START, END), "queries[2].organisation_id"),
    (("org_x", "", START, END), "queries[2].metric_code"),
    (("org_x", "Bad Code", START, END), "queries[2].metric_code"),
    (("org_x", "req", None, END), "queries[2].start_time"),
    (("org_x", "req", START, None), "queries[2].end_time"),
    (("org_x", "req", START, START), "queries[2].end_time"),
    (("org_x", "req", END, START), "queries[2].end_time"),
    (("org_x", "req", START, START + timedelta(days=367)), "queries[2].end_time"),
]


@pytest.mark.parametrize(("bad", "field"), BAD)
async def test_bad_questions_are_refused_naming_the_field_and_index(metering_stub, bad, field) -> None:
    good = ("org_x", "req", START, END)
    error = await expect_rpc_error(
        metering_stub.GetUsageTotals(_request([good, good, bad, good])), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error_field(error) == field


async def test_more_than_ten_thousand_questions_are_refused(metering_stub, client) -> None:
    request = _request([("org_x", "req", START, END)] * 10_001)
    error = await expect_rpc_error(metering_stub.GetUsageTotals(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "queries"
    # The client splits what it is given into calls the service accepts.
    totals = await client.usage_totals([UsageTotalQuery("org_x", "req", START, END)] * 10_001)
    assert len(totals) == 10_001 and not any(t.metric_found for t in totals)
    with pytest.raises(InvalidArgument) as caught:
        await client.usage_totals([UsageTotalQuery("org_x", "req", END, START)])
    assert caught.value.field == "queries[0].end_time"


# -- event values --------------------------------------------------------------------------------------------------

def _values_request(organisation: str, code: str, start: datetime, end: datetime, **fields) -> A.ListEventValuesRequest:
    return A.ListEventValuesRequest(
        organisation_id=organisation, metric_code=code, start_time=to_timestamp(start), end_time=to_timestamp(end),
        **fields,
    )


async def test_event_values_come_in_time_then_event_id_order_page_by_page(metering_stub, client, dataset) -> None:
    organisation, projects = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_SUM)
    # The two "a4" events share an instant and an id: the project breaks the tie.
    tied = ["-1", "3"] if projects[0] < projects[1] else ["3", "-1"]
    everything = ["5", "1.5", "2.25", *tied, "10", "0.125", "7"]
    pages, token = [], ""
    while True:
        response = await metering_stub.ListEventValues(
            _values_request(organisation, "req", *RANGES["everything"], page_size=3, page_token=token)
        )
        assert response.metric_found
        pages.append(list(response.values))
        token = response.next_page_token
        if not token:
            break
    assert pages == [everything[0:3], everything[3:6], everything[6:8]]
    # [OCT_IST, NOV_IST) starts with a2 and ends with a5: a1 is a microsecond before, a6 at the end (excluded).
    assert await client.event_values(organisation, "req", *RANGES["october_ist"]) == [
        Decimal(v) for v in ["1.5", "2.25", *tied, "10"]
    ]
    assert await client.event_values(organisation, "req", *RANGES["empty"]) == []


async def test_event_values_apply_the_metrics_filters(metering_stub, client, dataset) -> None:
    organisation, projects = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_SUM,
                 filters={"region": A.DimensionFilter(values=["in"])})
    tied = ["-1", "3"] if projects[0] < projects[1] else ["3", "-1"]
    assert await client.event_values(organisation, "req", *RANGES["everything"]) == [
        Decimal(v) for v in ["5", "1.5", *tied, "0.125"]
    ]


async def test_event_values_of_a_missing_metric_and_bad_requests(metering_stub, client, organisation_id) -> None:
    response = await metering_stub.ListEventValues(_values_request(organisation_id, "req", START, END))
    assert (response.metric_found, list(response.values), response.next_page_token) == (False, [], "")
    assert await client.event_values(organisation_id, "req", START, END) == []
    await define(metering_stub, organisation_id, "req", A.AGGREGATION_SUM)
    for fields, field in [
        ({"page_size": 10_001}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"metric_code": "Bad"}, "metric_code"),
        ({"organisation_id": ""}, "organisation_id"),
        ({"end_time": to_timestamp(START)}, "end_time"),
    ]:
        request = _values_request(organisation_id, "req", START, END)
        for key, value in fields.items():
            if key.endswith("_time"):
                getattr(request, key).CopyFrom(value)
            else:
                setattr(request, key, value)
        error = await expect_rpc_error(metering_stub.ListEventValues(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert error_field(error) == field
