"""Usage queries: every aggregation, filters, group-by, windows in time zones, and agreement with a
recomputation from the distinct events (randomised)."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import grpc
import pytest

from billing.metering.v1 import metering_pb2
from tests.integration.helpers import error_field, expect_rpc_error, organisation_request
from tests.integration.metering.conftest import E, batch, define, eventually, project_id, publish, usage_request

pytestmark = pytest.mark.usefixtures("metering")

A = metering_pb2
EXACT_DECIMAL = re.compile(r"^-?\d+(\.\d*[1-9])?$")
# A fixed day in the past so windows are predictable: 2026-11-10 in UTC.
DAY = datetime(2026, 11, 10, tzinfo=UTC)


def rows_of(response) -> list[tuple[datetime, datetime, str, str, int]]:
    return [
        (r.start_time.ToDatetime(tzinfo=UTC), r.end_time.ToDatetime(tzinfo=UTC), r.group_value, r.value, r.event_count)
        for r in response.rows
    ]


@pytest.fixture
async def dataset(metering_stub, jetstream, organisation_id):
    """Eight events of 'req' in two projects, with dimensions, published in two messages (one duplicate)."""
    p1, p2 = project_id(), project_id()
    events_p1 = [
        E("e1", "1.50", DAY + timedelta(hours=1), "req", {"region": "in", "user": "u1"}),
        E("e2", "2.25", DAY + timedelta(hours=1, minutes=20), "req", {"region": "us", "user": "u2"}),
        E("e3", "-1", DAY + timedelta(hours=19), "req", {"region": "in", "user": "u1"}),  # 00:30 IST the 11th
        E("e4", "10", DAY + timedelta(days=1, hours=2), "req", {"user": "u3"}),
    ]
    events_p2 = [
        E("e1", "0.25", DAY + timedelta(hours=1, minutes=7, seconds=30), "req", {"region": "in", "user": "u4"}),
        E("e5", "4", DAY + timedelta(hours=18, minutes=29, seconds=59), "req", {"region": "eu", "user": "u1"}),
        E("e6", "3", DAY + timedelta(days=1, hours=18, minutes=30), "req", {"region": "in"}),
        E("e7", "0.001", DAY + timedelta(days=40), "req", {"region": "in"}),  # another month
    ]
    await publish(jetstream, batch(organisation_id, p1, events_p1))
    await publish(jetstream, batch(organisation_id, p2, events_p2 + events_p2[:1]))

    async def count():
        response = await metering_stub.ListObservedMetrics(
            metering_pb2.ListObservedMetricsRequest(organisation_id=organisation_id)
        )
        return sum(m.event_count for m in response.metrics)

    await eventually(count, lambda n: n == 8)
    return organisation_id, p1, p2


RANGE = (DAY, DAY + timedelta(days=60))


@pytest.mark.parametrize(
    ("aggregation", "extra", "value"),
    [
        (A.AGGREGATION_SUM, {}, "20.001"),
        (A.AGGREGATION_COUNT, {}, "8"),
        (A.AGGREGATION_MIN, {}, "-1"),
        (A.AGGREGATION_MAX, {}, "10"),
        (A.AGGREGATION_LATEST, {}, "0.001"),
        (A.AGGREGATION_UNIQUE_COUNT, {"unique_dimension": "user"}, "4"),
    ],
)
async def test_every_aggregation_over_the_whole_range(metering_stub, dataset, aggregation, extra, value) -> None:
    organisation, _, _ = dataset
    await define(metering_stub, organisation, "req", aggregation, **extra)
    response = await metering_stub.QueryUsage(usage_request(organisation, "req", *RANGE))
    assert rows_of(response) == [(*RANGE, "", value, 8)]


async def test_one_project_and_the_metric_by_id(metering_stub, dataset) -> None:
    organisation, p1, _ = dataset
    metric = await define(metering_stub, organisation, "req", A.AGGREGATION_SUM)
    request = usage_request(organisation, "", *RANGE, project_id=p1, metric_id=metric.id)
    response = await metering_stub.QueryUsage(request)
    assert response.metric.id == metric.id
    assert rows_of(response) == [(*RANGE, "", "12.75", 4)]


async def test_filters_and_group_by(metering_stub, dataset) -> None:
    organisation, _, _ = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_SUM,
                 filters={"region": metering_pb2.DimensionFilter(values=["in", "us"])})
    response = await metering_stub.QueryUsage(usage_request(organisation, "req", *RANGE))
    assert rows_of(response) == [(*RANGE, "", "6.001", 6)]
    grouped = await metering_stub.QueryUsage(usage_request(organisation, "req", *RANGE, group_by="region"))
    assert rows_of(grouped) == [(*RANGE, "in", "3.751", 5), (*RANGE, "us", "2.25", 1)]


async def test_group_by_puts_events_without_the_dimension_under_an_empty_value(metering_stub, dataset) -> None:
    organisation, _, _ = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_COUNT)
    response = await metering_stub.QueryUsage(usage_request(organisation, "req", *RANGE, group_by="user"))
    assert [(r[2], r[3]) for r in rows_of(response)] == [("", "2"), ("u1", "3"), ("u2", "1"), ("u3", "1"), ("u4", "1")]


async def test_day_windows_in_asia_kolkata(metering_stub, dataset) -> None:
    """IST days start at 18:30 UTC; rows are clipped to the range and empty days left out."""
    organisation, _, _ = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_SUM)
    start, end = DAY, DAY + timedelta(days=3)
    request = usage_request(organisation, "req", start, end, window=A.USAGE_WINDOW_DAY, time_zone="Asia/Kolkata")
    ist_midnight_11th = datetime(2026, 11, 10, 18, 30, tzinfo=UTC)
    assert rows_of(await metering_stub.QueryUsage(request)) == [
        (start, ist_midnight_11th, "", "8", 4),  # e1, e2, p2's e1, e5 (18:29:59 UTC is still the 10th in IST)
        (ist_midnight_11th, ist_midnight_11th + timedelta(days=1), "", "9", 2),  # e3, e4
        (ist_midnight_11th + timedelta(days=1), ist_midnight_11th + timedelta(days=2), "", "3", 1),  # e6
    ]
    utc = usage_request(organisation, "req", start, end, window=A.USAGE_WINDOW_DAY)
    assert [r[3] for r in rows_of(await metering_stub.QueryUsage(utc))] == ["7", "13"]


async def test_hour_and_month_windows(metering_stub, dataset) -> None:
    organisation, _, _ = dataset
    await define(metering_stub, organisation, "req", A.AGGREGATION_COUNT)
    # The range cuts the first hour at 01:10: only what follows 01:10 counts, in a row starting at 01:10.
    start = DAY + timedelta(hours=1, minutes=10)
    request = usage_request(organisation, "req", start, DAY + timedelta(hours=3), window=A.USAGE_WINDOW_HOUR)
    assert rows_of(await metering_stub.QueryUsage(request)) == [(start, DAY + timedelta(hours=2), "", "1", 1)]
    months = usage_request(organisation, "req", *RANGE, window=A.USAGE_WINDOW_MONTH, time_zone="Asia/Kolkata")
    december_ist = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    assert rows_of(await metering_stub.QueryUsage(months)) == [
        (RANGE[0], december_ist, "", "7", 7),
        (december_ist, datetime(2026, 12, 31, 18, 30, tzinfo=UTC), "", "1", 1),  # January is empty: left out
    ]


INVALID = [
    ({"start_time": None}, grpc.StatusCode.INVALID_ARGUMENT, "start_time"),
    ({"end_time": None}, grpc.StatusCode.INVALID_ARGUMENT, "end_time"),
    ({"end_time": DAY}, grpc.StatusCode.INVALID_ARGUMENT, "end_time"),
    ({"end_time": DAY + timedelta(days=367)}, grpc.StatusCode.INVALID_ARGUMENT, "end_time"),
    ({"end_time": DAY + timedelta(days=100), "window": A.USAGE_WINDOW_HOUR}, grpc.StatusCode.INVALID_ARGUMENT,
     "window"),
    ({"time_zone": "Mars/Olympus"}, grpc.StatusCode.INVALID_ARGUMENT, "time_zone"),
    ({"window": 99}, grpc.StatusCode.INVALID_ARGUMENT, "window"),
    ({"metric_code": ""}, grpc.StatusCode.INVALID_ARGUMENT, "metric_code"),
    ({"metric_code": "Bad Code"}, grpc.StatusCode.INVALID_ARGUMENT, "metric_code"),
    ({"group_by": "g" * 65}, grpc.StatusCode.INVALID_ARGUMENT, "group_by"),
    ({"organisation_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "organisation_id"),
    ({"metric_code": "nothing.here"}, grpc.StatusCode.NOT_FOUND, None),
    ({"metric_code": "", "metric_id": "met_01JABCDEFGHJKMNPQRSTVWXYZ0"}, grpc.StatusCode.NOT_FOUND, None),
]


@pytest.mark.parametrize(("change", "code", "field"), INVALID)
async def test_invalid_queries_are_refused(metering_stub, organisation_id, change, code, field) -> None:
    await define(metering_stub, organisation_id, "req", A.AGGREGATION_SUM)
    request = usage_request(organisation_id, "req", DAY, DAY + timedelta(days=1))
    for key, value in change.items():
        if value is None:
            request.ClearField(key)
        elif isinstance(value, datetime):
            getattr(request, key).FromDatetime(value)
        else:
            setattr(request, key, value)
    error = await expect_rpc_error(metering_stub.QueryUsage(request), code)
    assert error_field(error) == field


async def test_a_metric_of_another_organisation_is_not_found(metering_stub, organisation_id, invoicing_stub) -> None:
    metric = await define(metering_stub, organisation_id, "req", A.AGGREGATION_SUM)
    other = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation.id
    request = usage_request(other, "", DAY, DAY + timedelta(days=1), metric_id=metric.id)
    await expect_rpc_error(metering_stub.QueryUsage(request), grpc.StatusCode.NOT_FOUND)


# -- randomised: the answer equals a recomputation from the distinct events ------------------------------------

ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe"]
KEYS = {
    A.USAGE_WINDOW_HOUR: lambda local: (local.year, local.month, local.day, local.hour),
    A.USAGE_WINDOW_DAY: lambda local: (local.year, local.month, local.day),
    A.USAGE_WINDOW_MONTH: lambda local: (local.year, local.month),
    A.USAGE_WINDOW_WHOLE: lambda local: (),
}


def expected_rows(events, aggregation, unique_dimension, filters, project, start, end, window, zone, group_by):
    groups: dict[tuple, list[E]] = defaultdict(list)
    for project_of, event in events:
        if project and project_of != project:
            continue
        if not start <= event.timestamp < end:
            continue
        if any(event.dimensions.get(k) not in allowed for k, allowed in filters.items()):
            continue
        key = KEYS[window](event.timestamp.astimezone(ZoneInfo(zone)))
        groups[(key, event.dimensions.get(group_by, "") if group_by else "")].append(event)
    result = {}
    for key, members in groups.items():
        values = [Decimal(e.value) for e in members]
        if aggregation == A.AGGREGATION_SUM:
            value = sum(values, Decimal(0))
        elif aggregation == A.AGGREGATION_COUNT:
            value = Decimal(len(values))
        elif aggregation == A.AGGREGATION_MIN:
            value = min(values)
        elif aggregation == A.AGGREGATION_MAX:
            value = max(values)
        elif aggregation == A.AGGREGATION_LATEST:
            value = Decimal(max(members, key=lambda e: (e.timestamp, e.event_id)).value)
        else:
            value = Decimal(len({e.dimensions[unique_dimension] for e in members if unique_dimension in e.dimensions}))
        result[key] = (value, len(members))
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_usage_equals_a_recomputation_from_the_distinct_events(
    metering_stub, jetstream, organisation_id, seed
) -> None:
    rng = random.Random(seed)
    projects = [project_id() for _ in range(3)]
    base = datetime(2026, 10, 1, tzinfo=UTC)
    distinct: dict[tuple[str, str], E] = {}
    messages: list[tuple[str, list[E]]] = []
    for _ in range(12):
        project = rng.choice(projects)
        events = []
        for _ in range(rng.randint(1, 60)):
            key = (project, f"ev{rng.randint(0, 400):05d}")
            if key in distinct and rng.random() < 0.8:
                events.append(distinct[key])  # a duplicate, identical to the first
                continue
            event = E(
                key[1],
                str(Decimal(rng.randint(-500, 100_000)) / 10 ** rng.randint(0, 4)),
                base + timedelta(seconds=rng.randint(0, 75 * 86400), microseconds=rng.choice([0, 1, 999_999])),
                "mix",
                {k: rng.choice(["a", "b", "c"]) for k in ("region", "user") if rng.random() < 0.8},
            )
            events.append(event)
            distinct.setdefault(key, event)  # the first stored wins; a later different body is a duplicate
        messages.append((project, events))
    for project, events in messages:
        await publish(jetstream, batch(organisation_id, project, events))

    async def stored():
        response = await metering_stub.ListObservedMetrics(
            metering_pb2.ListObservedMetricsRequest(organisation_id=organisation_id)
        )
        return sum(m.event_count for m in response.metrics)

    await eventually(stored, lambda n: n == len(distinct))
    events = [(project, event) for (project, _), event in distinct.items()]

    aggregations = [A.AGGREGATION_SUM, A.AGGREGATION_COUNT, A.AGGREGATION_MIN, A.AGGREGATION_MAX,
                    A.AGGREGATION_LATEST, A.AGGREGATION_UNIQUE_COUNT]
    for round_ in range(24):
        aggregation = aggregations[round_ % len(aggregations)]
        unique_dimension = "user" if aggregation == A.AGGREGATION_UNIQUE_COUNT else ""
        filters = {"region": ["a", "b"]} if rng.random() < 0.25 else {}
        code = f"mix{round_}"
        # Metrics are defined per query under another code; events are 'mix', so define 'mix' afresh each time.
        metric = await define(
            metering_stub, organisation_id, "mix", aggregation, unique_dimension=unique_dimension,
            filters={k: metering_pb2.DimensionFilter(values=v) for k, v in filters.items()}, name=code,
        )
        window = rng.choice([A.USAGE_WINDOW_HOUR, A.USAGE_WINDOW_DAY, A.USAGE_WINDOW_MONTH, A.USAGE_WINDOW_WHOLE])
        span = timedelta(days=3) if window == A.USAGE_WINDOW_HOUR else timedelta(days=rng.randint(1, 80))
        start = base + timedelta(seconds=rng.randint(-86400, 70 * 86400), microseconds=rng.randint(0, 999999))
        end = start + span - timedelta(seconds=rng.randint(0, 3600))
        zone = rng.choice(ZONES)
        group_by = rng.choice(["", "", "region", "user"])
        project = rng.choice(["", *projects])
        request = usage_request(organisation_id, "", start, end, metric_id=metric.id, window=window, time_zone=zone,
                                group_by=group_by, project_id=project)
        rows = (await metering_stub.QueryUsage(request)).rows
        expected = expected_rows(events, aggregation, unique_dimension, {k: set(v) for k, v in filters.items()},
                                 project, start, end, window, zone, group_by)
        actual, order = {}, []
        for row in rows:
            row_start, row_end = row.start_time.ToDatetime(tzinfo=UTC), row.end_time.ToDatetime(tzinfo=UTC)
            assert start <= row_start < row_end <= end
            assert EXACT_DECIMAL.match(row.value), row.value
            key = KEYS[window](row_start.astimezone(ZoneInfo(zone)))
            # The row's end is where the next local window starts (or the range's end).
            assert row_end == end or KEYS[window](row_end.astimezone(ZoneInfo(zone))) != key
            actual[(key, row.group_value)] = (Decimal(row.value), row.event_count)
            order.append((row_start, row.group_value))
        assert order == sorted(order)
        assert actual == expected, (round_, aggregation, window, zone, group_by, project, start, end)
        await metering_stub.ArchiveMetric(metering_pb2.ArchiveMetricRequest(metric_id=metric.id))
