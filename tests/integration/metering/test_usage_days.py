"""Totals over whole UTC days read usage_days, and only the partial days at the ends read buckets: on dense usage
(events in nearly every quarter hour of five weeks, two projects), GetUsageTotals equals, for every bucket
aggregation, both a recomputation from the events in Python and QueryUsage (which reads the buckets alone), over
hand-picked months in several zones and hundreds of random ranges on the 15-minute grid. The day rows the
consumer keeps equal the roll-up of its buckets that the migration backfills with."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from billing.metering.v1 import metering_pb2
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.service.billing_inputs import UsageTotalQuery
from tests.integration.helpers import organisation_request
from tests.integration.metering.conftest import (
    E,
    batch,
    days_from_buckets_sql,
    define,
    eventually,
    project_id,
    publish,
    whole_usage,
)

pytestmark = pytest.mark.usefixtures("metering")

A = metering_pb2
QUARTER = timedelta(minutes=15)
FIRST = datetime(2026, 9, 28, tzinfo=UTC)  # data in [FIRST, FIRST + 36 days): 3,456 quarter hours
QUARTERS = 36 * 96
CODES = {  # one metric per aggregation, each counting the same values
    "d.sum": (A.AGGREGATION_SUM, "sum"),
    "d.count": (A.AGGREGATION_COUNT, "count"),
    "d.min": (A.AGGREGATION_MIN, "min"),
    "d.max": (A.AGGREGATION_MAX, "max"),
    "d.latest": (A.AGGREGATION_LATEST, "latest"),
}

# Months (and odd ranges) on the quarter-hour grid whose ends fall at different times of the UTC day.
FIXED = {
    "october_ist": (datetime(2026, 9, 30, 18, 30, tzinfo=UTC), datetime(2026, 10, 31, 18, 30, tzinfo=UTC)),
    "october_utc": (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
    # America/New_York: EDT until 1 November 2026 06:00 UTC, so October ends at 04:00 UTC.
    "october_new_york": (datetime(2026, 10, 1, 4, tzinfo=UTC), datetime(2026, 11, 1, 4, tzinfo=UTC)),
    "october_nepal": (datetime(2026, 9, 30, 18, 15, tzinfo=UTC), datetime(2026, 10, 31, 18, 15, tzinfo=UTC)),
    "october_chatham": (datetime(2026, 9, 30, 10, 15, tzinfo=UTC), datetime(2026, 10, 31, 10, 15, tzinfo=UTC)),
    "one_utc_day": (datetime(2026, 10, 7, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)),
    "across_midnight": (datetime(2026, 10, 7, 23, tzinfo=UTC), datetime(2026, 10, 8, 1, tzinfo=UTC)),
    "day_and_a_quarter": (datetime(2026, 10, 7, 23, 45, tzinfo=UTC), datetime(2026, 10, 9, 0, 15, tzinfo=UTC)),
    "one_quarter": (datetime(2026, 10, 7, 12, tzinfo=UTC), datetime(2026, 10, 7, 12, 15, tzinfo=UTC)),
    "before_the_data": (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 28, tzinfo=UTC)),
    "all_and_more": (datetime(2026, 9, 20, 5, 45, tzinfo=UTC), datetime(2026, 11, 10, 3, tzinfo=UTC)),
}


@dataclass(frozen=True)
class Dense:
    organisation_id: str
    events: list[tuple[datetime, str, Decimal]]  # (timestamp, event number as in every code's ids, value), sorted


def dense_events(rng: random.Random) -> list[tuple[int, datetime, int, Decimal]]:
    """(project index, timestamp, number, value): 0-3 events in each quarter hour, a fifth of them on the quarter
    hour itself (so on midnights too), values with fractions and signs."""
    events = []
    for quarter in range(QUARTERS):
        start = FIRST + quarter * QUARTER
        for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
            offset = timedelta(0) if rng.random() < 0.2 else timedelta(microseconds=rng.randrange(1, 900_000_000))
            value = Decimal(rng.randint(-500, 50_000)) / 100
            events.append((rng.randrange(2), start + offset, len(events), value))
    return events


def event_id(code_index: int, number: int) -> str:
    # Same length and prefix within a code, so PostgreSQL's collation orders them as Python does.
    return f"ev{code_index}n{number:07d}"


@pytest.fixture(scope="module")
async def dense(metering_stub, jetstream, invoicing_stub) -> Dense:
    organisation = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation.id
    projects = [project_id(), project_id()]
    raw = dense_events(random.Random(20261121))
    for code, (aggregation, _) in CODES.items():
        await define(metering_stub, organisation, code, aggregation)
    for code_index, code in enumerate(CODES):
        for project_index, project in enumerate(projects):
            mine = [E(event_id(code_index, n), str(v), t, code) for p, t, n, v in raw if p == project_index]
            for start in range(0, len(mine), 1000):
                await publish(jetstream, batch(organisation, project, mine[start:start + 1000]))

    async def count() -> int:
        response = await metering_stub.ListObservedMetrics(
            metering_pb2.ListObservedMetricsRequest(organisation_id=organisation)
        )
        return sum(m.event_count for m in response.metrics)

    await eventually(count, lambda n: n == len(raw) * len(CODES), timeout=60)
    events = sorted((t, f"{n:07d}", v) for _, t, n, v in raw)
    return Dense(organisation, events)


def expected(dense: Dense, aggregation: str, start: datetime, end: datetime) -> tuple[Decimal, int]:
    """The total recomputed from the events: zero with no event, as GetUsageTotals answers."""
    times = [t for t, _, _ in dense.events]
    inside = dense.events[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]
    if not inside:
        return Decimal(0), 0
    values = [v for _, _, v in inside]
    value = {
        "sum": sum(values, Decimal(0)), "count": Decimal(len(values)), "min": min(values), "max": max(values),
        "latest": inside[-1][2],  # sorted by (timestamp, number): the greatest (timestamp, event id) is last
    }[aggregation]
    return value, len(inside)


def random_ranges(rng: random.Random, count: int) -> list[tuple[datetime, datetime]]:
    """Ranges on the quarter-hour grid around the data: a third shorter than a day, a third a few days, a third
    up to six weeks; some start or end on a UTC midnight."""
    ranges = []
    for k in range(count):
        start = FIRST - timedelta(days=1) + rng.randrange(QUARTERS + 96) * QUARTER
        quarters = [rng.randrange(1, 96), rng.randrange(96, 5 * 96), rng.randrange(5 * 96, 42 * 96)][k % 3]
        if k % 5 == 0:
            start = start.replace(hour=0, minute=0)
        end = start + quarters * QUARTER
        if k % 7 == 0:
            end = end.replace(hour=0, minute=0) + timedelta(days=1)
        ranges.append((start, end))
    return ranges


@pytest.fixture
async def client(metering):
    usage = MeteringUsage(metering.address)
    yield usage
    await usage.close()


async def test_dense_totals_equal_events_and_query_usage_for_every_aggregation(metering_stub, client, dense) -> None:
    ranges = list(FIXED.values()) + random_ranges(random.Random(7), 300)
    queries = [UsageTotalQuery(dense.organisation_id, code, start, end) for code in CODES for start, end in ranges]
    totals = await client.usage_totals(queries)  # 1,555 questions in one call
    mismatches = []
    for query, total in zip(queries, totals, strict=True):
        want = expected(dense, CODES[query.metric_code][1], query.start, query.end)
        if (total.value, total.event_count) != want:
            mismatches.append((query, (total.value, total.event_count), want))
    assert mismatches == []
    # The buckets alone (QueryUsage's path) agree too, on the fixed ranges and a sample of the random ones.
    for query, total in list(zip(queries, totals, strict=True))[::7]:
        value, count = await whole_usage(metering_stub, dense.organisation_id, query.metric_code, query.start,
                                         query.end)
        assert (total.value, total.event_count) == (Decimal(value or "0"), count), query


async def test_dense_months_worked_out(client, dense) -> None:
    """The data is dense indeed, and an IST month reads whole days in between: the counts tell how many events
    each part holds, and they add up."""
    start, end = FIXED["october_ist"]
    head = await client.usage_totals([UsageTotalQuery(dense.organisation_id, "d.count", start,
                                                      datetime(2026, 10, 1, tzinfo=UTC))])
    days = await client.usage_totals([UsageTotalQuery(dense.organisation_id, "d.count",
                                                      datetime(2026, 10, 1, tzinfo=UTC),
                                                      datetime(2026, 10, 31, tzinfo=UTC))])
    tail = await client.usage_totals([UsageTotalQuery(dense.organisation_id, "d.count",
                                                      datetime(2026, 10, 31, tzinfo=UTC), end)])
    month = await client.usage_totals([UsageTotalQuery(dense.organisation_id, "d.count", start, end)])
    # 5.5 hours (22 quarters) + 30 days (2,880 quarters) + 18.5 hours (74 quarters) = 2,976 quarter hours,
    # about 1.33 events each.
    assert month[0].event_count == head[0].event_count + days[0].event_count + tail[0].event_count
    assert 2_976 < month[0].event_count < 2 * 2_976
    assert month[0].event_count == expected(dense, "count", start, end)[1]


async def test_days_kept_by_the_consumer_equal_the_roll_up_of_its_buckets(database_url, dense) -> None:
    db = await asyncpg.connect(database_url)
    try:
        columns = ("metric, day_start, project_id, event_count, value_sum, value_min, value_max, first_time, "
                   "latest_time, latest_event_id, latest_value")
        kept = await db.fetch(f"SELECT {columns} FROM metering.usage_days WHERE organisation_id = $1 ORDER BY 1, 2, 3",
                              dense.organisation_id)
        rolled = await db.fetch(
            f"SELECT {columns} FROM ({days_from_buckets_sql()}) d WHERE organisation_id = $1 ORDER BY 1, 2, 3",
            dense.organisation_id,
        )
    finally:
        await db.close()
    assert [tuple(r) for r in kept] == [tuple(r) for r in rolled]
    # 5 codes x 2 projects x 36 days (each project has events every day).
    assert len(kept) == 5 * 2 * 36
