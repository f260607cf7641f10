"""Gauges (weighted_sum) against a pure-Python integration of constructed histories.

Each event sets its project's value from its timestamp until the project's next event; usage over a range is the
integral in value-hours, the value before the range carried into it, held at most until now. The reference below
knows nothing of buckets or days: it sorts each project's distinct events and integrates, splitting at local window
boundaries found by walking the 15-minute grid. The service must agree exactly, through QueryUsage and
GetUsageTotals (gRPC, and the use cases with a chosen "now" for ranges in progress), on histories with values
carried across month boundaries from months before, quarter hours holding one, two and many events (the three ways
metering reads a gauge), events at one instant, duplicates, and events after "now".
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from zoneinfo import ZoneInfo

import grpc
import pytest
import sqlalchemy as sa

from billing.metering.v1 import metering_pb2
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.service.billing_inputs import UsageTotalQuery
from services.metering.adapters.event_store import EventStore
from services.metering.domain.event_batch import EventColumns
from services.metering.domain.usage import Window
from services.metering.domain.usage_totals import TotalQuery
from services.metering.service.event_retention import EventRetention
from services.metering.service.usage import QueryUsage, query_usage
from services.metering.service.usage_totals import get_usage_totals
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.metering.conftest import E, batch, define, eventually, project_id, publish, usage_request

pytestmark = pytest.mark.usefixtures("metering")

A = metering_pb2
EXACT_DECIMAL = re.compile(r"^-?\d+(\.\d*[1-9])?$")
QUARTER = timedelta(minutes=15)
US = timedelta(microseconds=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
KEYS = {
    A.USAGE_WINDOW_HOUR: lambda local: (local.year, local.month, local.day, local.hour),
    A.USAGE_WINDOW_DAY: lambda local: (local.year, local.month, local.day),
    A.USAGE_WINDOW_MONTH: lambda local: (local.year, local.month),
    A.USAGE_WINDOW_WHOLE: lambda local: (),
}
DOMAIN_WINDOWS = {
    A.USAGE_WINDOW_HOUR: Window.HOUR, A.USAGE_WINDOW_DAY: Window.DAY, A.USAGE_WINDOW_MONTH: Window.MONTH,
    A.USAGE_WINDOW_WHOLE: Window.WHOLE,
}
ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe"]
IST_MONTHS = {  # Asia/Kolkata months start at 18:30 UTC the day before
    "september": (datetime(2026, 8, 31, 18, 30, tzinfo=UTC), datetime(2026, 9, 30, 18, 30, tzinfo=UTC)),
    "october": (datetime(2026, 9, 30, 18, 30, tzinfo=UTC), datetime(2026, 10, 31, 18, 30, tzinfo=UTC)),
    "november": (datetime(2026, 10, 31, 18, 30, tzinfo=UTC), datetime(2026, 11, 30, 18, 30, tzinfo=UTC)),
}


# -- the reference --------------------------------------------------------------------------------------------

def _pieces(start: datetime, end: datetime, window: int, zone: ZoneInfo) -> Iterable[tuple[tuple, datetime, datetime]]:
    """[start, end) cut where the local window changes: every such instant is on the 15-minute grid."""
    key = KEYS[window]
    if window == A.USAGE_WINDOW_WHOLE:
        yield (), start, end
        return
    cut, grid = start, start + (-(start - _EPOCH)) % QUARTER
    if grid == start:
        grid += QUARTER
    while grid < end:
        if key(grid.astimezone(zone)) != key((grid - US).astimezone(zone)):
            yield key(cut.astimezone(zone)), cut, grid
            cut = grid
        grid += QUARTER
    yield key(cut.astimezone(zone)), cut, end


def value_hours(value_seconds: Fraction) -> Decimal:
    """value x seconds / 3600, rounded half-even to 12 places (the documented rule), by long division."""
    with localcontext() as context:
        context.prec = 200
        hours = Decimal(value_seconds.numerator) / Decimal(value_seconds.denominator * 3600)
        return hours.quantize(Decimal("1E-12"), rounding=ROUND_HALF_EVEN)


def expected_gauge(events: list[tuple[str, E]], *, project: str, start: datetime, end: datetime, now: datetime,
                   window: int = A.USAGE_WINDOW_WHOLE, zone: str = "UTC") -> dict[tuple, tuple[Decimal, int]]:
    """Per window key: (value-hours, events whose value was held in it), from the distinct events."""
    held_until = min(end, now)
    series: dict[str, list[E]] = defaultdict(list)
    for project_of, event in events:
        if not project or project_of == project:
            series[project_of].append(event)
    integral: dict[tuple, Fraction] = defaultdict(Fraction)
    held: dict[tuple, int] = defaultdict(int)
    for members in series.values():
        members.sort(key=lambda e: (e.timestamp, e.event_id))
        before = [e for e in members if e.timestamp < start]
        points = [(start, before[-1])] if before else []
        points += [(e.timestamp, e) for e in members if start <= e.timestamp < held_until]
        for index, (since, event) in enumerate(points):
            until = points[index + 1][0] if index + 1 < len(points) else held_until
            for key, a, b in (_pieces(since, until, window, ZoneInfo(zone)) if since < until else ()):
                integral[key] += Fraction(Decimal(event.value)) * Fraction((b - a) // US, 1_000_000)
                held[key] += 1
    return {key: (value_hours(integral[key]), held[key]) for key in held}


# -- histories ------------------------------------------------------------------------------------------------

@dataclass
class History:
    organisation: str
    projects: list[str]
    events: list[tuple[str, E]]  # the distinct events: the first stored of each (project, event_id)


def _value(rng: random.Random) -> str:
    return str(Decimal(rng.randint(-2_000, 500_000)) / 10 ** rng.randint(0, 4))


def random_history(rng: random.Random, projects: list[str], code: str) -> list[tuple[str, list[E]]]:
    """Messages (project, events) with duplicates. Per project one of: a single old value carried for months, a
    sparse gauge (mostly one event per quarter hour), or bursts (two to seven events in a quarter hour, some at one
    instant)."""
    serial = iter(range(1, 1_000_000))
    base = datetime(2026, 9, 1, tzinfo=UTC)
    span = 90 * 86400

    def event(at: datetime) -> E:
        return E(f"g{next(serial):06d}", _value(rng), at, code)

    per_project: dict[str, list[E]] = {}
    for index, project in enumerate(projects):
        kind = index % 3
        if kind == 0:  # set in July, changed once in November (or never)
            events = [event(datetime(2026, 7, 10, 8, 0, 0, rng.choice([0, 1, 999_999]), tzinfo=UTC))]
            if rng.random() < 0.7:
                events.append(event(base + timedelta(days=rng.randint(62, 85), seconds=rng.randint(0, 86399))))
        elif kind == 1:
            moments = sorted(base + timedelta(seconds=rng.randint(0, span), microseconds=rng.choice([0, 1, 999_999]))
                             for _ in range(rng.randint(30, 90)))
            events = [event(t) for t in moments]
        else:
            events = []
            for _ in range(rng.randint(15, 30)):
                quarter = base + QUARTER * rng.randint(0, span // 900)
                size = rng.randint(2, 7)
                offsets = sorted(rng.randint(0, 899_999_999) for _ in range(size))
                at = [quarter + timedelta(microseconds=o) for o in offsets]
                if rng.random() < 0.5:
                    at[-1] = at[-2]  # two events at one instant: the greater event id wins
                events += [event(t) for t in at]
        per_project[project] = events
    messages: list[tuple[str, list[E]]] = []
    for project, events in per_project.items():
        rng.shuffle(events)  # arrival order is not time order
        while events:
            take = rng.randint(1, 40)
            messages.append((project, events[:take]))
            events = events[take:]
    # Duplicates: the same events again, and ids sent again with another value and time (the first stored wins).
    for project, chunk in list(messages[: len(messages) // 2]):
        again = [e if rng.random() < 0.7 else E(e.event_id, _value(rng), e.timestamp + timedelta(hours=5), code)
                 for e in chunk[: rng.randint(1, len(chunk))]]
        messages.append((project, again))
    return messages


async def store(metering_stub, jetstream, organisation: str, messages: list[tuple[str, list[E]]]) -> list:
    """Publish in order, wait until metering stored them; the distinct events (the first of each id wins)."""
    distinct: dict[tuple[str, str], E] = {}
    for project, events in messages:
        await publish(jetstream, batch(organisation, project, events))
        for e in events:
            distinct.setdefault((project, e.event_id), e)

    async def stored():
        response = await metering_stub.ListObservedMetrics(
            metering_pb2.ListObservedMetricsRequest(organisation_id=organisation)
        )
        return sum(m.event_count for m in response.metrics)

    await eventually(stored, lambda n: n == len(distinct))
    return [(project, e) for (project, _), e in distinct.items()]


def actual_rows(rows, start: datetime, end: datetime, window: int, zone: str) -> dict[tuple, tuple[Decimal, int]]:
    found: dict[tuple, tuple[Decimal, int]] = {}
    order = []
    for row in rows:
        row_start, row_end = row.start_time.ToDatetime(tzinfo=UTC), row.end_time.ToDatetime(tzinfo=UTC)
        assert start <= row_start < row_end <= end and row.group_value == ""
        assert EXACT_DECIMAL.match(row.value), row.value
        key = KEYS[window](row_start.astimezone(ZoneInfo(zone)))
        assert key not in found
        found[key] = (Decimal(row.value), row.event_count)
        order.append(row_start)
    assert order == sorted(order)
    return found


# -- tests ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_gauge_usage_equals_the_integral_of_the_distinct_events(
    metering, metering_stub, jetstream, organisation_id, seed
) -> None:
    rng = random.Random(seed)
    projects = [project_id() for _ in range(4)]
    events = await store(metering_stub, jetstream, organisation_id, random_history(rng, projects, "storage"))
    metric = await define(metering_stub, organisation_id, "storage", A.AGGREGATION_WEIGHTED_SUM, unit="GB")
    assert metric.aggregation == A.AGGREGATION_WEIGHTED_SUM
    closed = datetime(2026, 12, 1, tzinfo=UTC)  # every range below ends by then: the real clock is past it

    ranges = [(*IST_MONTHS[m], A.USAGE_WINDOW_WHOLE, "Asia/Kolkata") for m in IST_MONTHS]
    ranges += [(IST_MONTHS["september"][0], IST_MONTHS["november"][1], A.USAGE_WINDOW_MONTH, "Asia/Kolkata")]
    ranges += [(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC), A.USAGE_WINDOW_WHOLE, "UTC")]
    for _ in range(14):
        window = rng.choice(list(KEYS))
        length = timedelta(days=3) if window == A.USAGE_WINDOW_HOUR else timedelta(days=rng.randint(1, 80))
        start = datetime(2026, 8, 25, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 95 * 86400),
                                                               microseconds=rng.randint(0, 999_999))
        ranges.append((start, min(start + length, closed), window, rng.choice(ZONES)))
    # Ranges that start or end at an event's instant: the carried value holds for no time before it.
    instants = sorted({e.timestamp for _, e in events if datetime(2026, 8, 1, tzinfo=UTC) < e.timestamp < closed})
    for _ in range(6):
        start = rng.choice(instants)
        end = rng.choice([i for i in instants if i > start] or [closed])
        ranges.append((start, end, rng.choice([A.USAGE_WINDOW_DAY, A.USAGE_WINDOW_WHOLE]), rng.choice(ZONES)))
    for start, end, window, zone in ranges:
        project = rng.choice(["", "", *projects])
        request = usage_request(organisation_id, "storage", start, end, window=window, time_zone=zone,
                                project_id=project)
        found = actual_rows((await metering_stub.QueryUsage(request)).rows, start, end, window, zone)
        expected = expected_gauge(events, project=project, start=start, end=end, now=closed, window=window,
                                  zone=zone)
        assert found == expected, (seed, start, end, window, zone, project)

    # Ranges in progress: the use cases with a chosen "now" (some events lie after it: they count from their time,
    # which has not come; the value before them holds until now).
    for _ in range(8):
        start = datetime(2026, 8, 25, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 90 * 86400))
        end = start + timedelta(days=rng.randint(1, 40))
        now = start + timedelta(seconds=rng.randint(-86400, int((end - start).total_seconds())),
                                microseconds=rng.randint(0, 999_999))
        window = rng.choice([A.USAGE_WINDOW_DAY, A.USAGE_WINDOW_WHOLE])
        project = rng.choice(["", *projects])
        _, rows = await query_usage(
            metering.uow(),
            QueryUsage(organisation_id=organisation_id, start=start, end=end, metric_code="storage",
                       project_id=project, window=DOMAIN_WINDOWS[window], time_zone="Asia/Kolkata"),
            now=now,
        )
        found = {KEYS[window](r.start.astimezone(ZoneInfo("Asia/Kolkata"))): (Decimal(r.value), r.event_count)
                 for r in rows}
        expected = expected_gauge(events, project=project, start=start, end=end, now=now, window=window,
                                  zone="Asia/Kolkata")
        assert found == expected, (seed, start, end, now, project)
        (total,) = await get_usage_totals(metering.uow(), [TotalQuery(organisation_id, "storage", start, end)],
                                          now=now)
        whole = expected_gauge(events, project="", start=start, end=end, now=now).get((), (Decimal(0), 0))
        assert (Decimal(total.value), total.event_count) == whole


async def test_worked_example_across_period_boundaries(metering_stub, jetstream, organisation_id, metering) -> None:
    """Storage set on 10 September and changed in October, billed per IST month (hand-computed)."""
    p1, p2 = project_id(), project_id()
    october, november = IST_MONTHS["october"], IST_MONTHS["november"]
    messages = [
        (p1, [E("s1", "100", datetime(2026, 9, 10, tzinfo=UTC), "gb"),
              E("s2", "250", datetime(2026, 10, 15, 6, tzinfo=UTC), "gb"),
              E("s0", "999", datetime(2026, 10, 15, 6, tzinfo=UTC), "gb"),  # same instant, smaller id: held 0 s
              E("s3", "40", october[1] - timedelta(milliseconds=500), "gb"),
              E("s4", "0", datetime(2026, 11, 10, tzinfo=UTC), "gb")]),
        (p1, [E("s2", "250", datetime(2026, 10, 15, 6, tzinfo=UTC), "gb")]),  # a duplicate: counts once
        (p2, [E("s1", "2.5", october[0] + timedelta(hours=1), "gb")]),  # p2's own s1
    ]
    events = await store(metering_stub, jetstream, organisation_id, messages)
    await define(metering_stub, organisation_id, "gb", A.AGGREGATION_WEIGHTED_SUM, unit="GB")

    # p1: 100 GB x 347.5 h + 250 GB x (396.5 h - 0.5 s) + 40 GB x 0.5 s = 481,949,895 GB-s;
    # p2: 2.5 GB x 743 h = 1,857.5 GB-h. 481,949,895 / 3,600 = 133,874.970833333...
    response = await metering_stub.QueryUsage(usage_request(organisation_id, "gb", *october))
    assert [(r.value, r.event_count) for r in response.rows] == [("135732.470833333333", 4)]
    p1_only = await metering_stub.QueryUsage(usage_request(organisation_id, "gb", *october, project_id=p1))
    assert [(r.value, r.event_count) for r in p1_only.rows] == [("133874.970833333333", 3)]
    # November: 40 GB from 00:00 IST on the 1st until 10 November 00:00 UTC (9 days 5.5 h), then 0; p2 all month.
    nov = await metering_stub.QueryUsage(usage_request(organisation_id, "gb", *november))
    assert [(r.value, r.event_count) for r in nov.rows] == [("10660", 3)]  # 40 x 221.5 + 2.5 x 720; s3, s4, s1
    assert expected_gauge(events, project="", start=october[0], end=october[1], now=november[1]) == {
        (): (Decimal("135732.470833333333"), 4)}
    # Day windows: the first IST day of October holds 100 GB x 24 h, and p2's 2.5 GB from 01:00 IST.
    days = await metering_stub.QueryUsage(usage_request(organisation_id, "gb", *october, window=A.USAGE_WINDOW_DAY,
                                                        time_zone="Asia/Kolkata"))
    assert len(days.rows) == 31 and (days.rows[0].value, days.rows[0].event_count) == ("2457.5", 2)
    assert sum(Decimal(r.value) for r in days.rows) == Decimal("135732.470833333333")
    # From the instant of s0 and s2: s1's value is carried in but held for no time, s0 for none, s2 from then on.
    changed = await metering_stub.QueryUsage(usage_request(organisation_id, "gb", datetime(2026, 10, 15, 6, tzinfo=UTC),
                                                           october[1], project_id=p1))
    assert [(r.value, r.event_count) for r in changed.rows] == [("99124.970833333333", 2)]  # 356,849,895 GB-s
    # Before any event: nothing held, no row; the totals say 0.
    empty = await metering_stub.QueryUsage(usage_request(organisation_id, "gb", datetime(2026, 8, 1, tzinfo=UTC),
                                                         datetime(2026, 9, 1, tzinfo=UTC)))
    assert list(empty.rows) == []
    usage = MeteringUsage(metering.address)
    try:
        totals = await usage.usage_totals([UsageTotalQuery(organisation_id, "gb", *october),
                                           UsageTotalQuery(organisation_id, "gb", datetime(2026, 8, 1, tzinfo=UTC),
                                                           datetime(2026, 9, 1, tzinfo=UTC))])
    finally:
        await usage.close()
    assert [(t.aggregation, t.value, t.event_count) for t in totals] == [
        ("weighted_sum", Decimal("135732.470833333333"), 4), ("weighted_sum", Decimal(0), 0)]


async def test_a_period_in_progress_counts_until_now(metering, metering_stub, jetstream, organisation_id) -> None:
    """Through gRPC with the real clock: a value set an hour ago counts one hour so far, not the rest of the day."""
    now = datetime.now(UTC)
    project = project_id()
    await store(metering_stub, jetstream, organisation_id,
                [(project, [E("n1", "36", now - timedelta(hours=1), "live"),
                            E("n2", "1000", now + timedelta(minutes=30), "live")])])  # not yet
    await define(metering_stub, organisation_id, "live", A.AGGREGATION_WEIGHTED_SUM)
    start, end = now - timedelta(hours=2), now + timedelta(days=1)
    (row,) = (await metering_stub.QueryUsage(usage_request(organisation_id, "live", start, end))).rows
    after = datetime.now(UTC)
    # 36 x (the service's now - the set time) in hours: at least 36 (its now is after ours), at most the same at
    # `after`; far below the 36 x 25 h a value held to the range's end would give.
    assert Decimal(36) <= Decimal(row.value) <= Decimal(36 * ((after - now + timedelta(hours=1)) // US)) / 3_600_000_000
    assert row.event_count == 1


async def test_group_by_and_filters_are_refused_for_a_gauge(metering_stub, organisation_id) -> None:
    error = await expect_rpc_error(
        define(metering_stub, organisation_id, "disk", A.AGGREGATION_WEIGHTED_SUM,
               filters={"region": A.DimensionFilter(values=["eu"])}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "filters"
    await define(metering_stub, organisation_id, "disk", A.AGGREGATION_WEIGHTED_SUM)
    request = usage_request(organisation_id, "disk", datetime(2026, 10, 1, tzinfo=UTC),
                            datetime(2026, 11, 1, tzinfo=UTC), group_by="region")
    error = await expect_rpc_error(metering_stub.QueryUsage(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "group_by"


# -- archived months ------------------------------------------------------------------------------------------

# 2001, before any other test's events but test_event_retention's (which cleans up as this one does).
ARCHIVE_NOW = datetime(2001, 7, 15, 12, tzinfo=UTC)


@pytest.fixture
async def archived_cleanup(metering):
    yield
    async with metering.engine.begin() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        # The session shares the database: no archived months left behind.
        await raw.execute("DELETE FROM metering.event_archives WHERE month_start >= '2001-01-01'")
        await raw.execute("DELETE FROM metering.events WHERE timestamp >= '2001-01-01' AND timestamp < '2001-06-01'")


async def test_a_value_set_in_an_archived_month_is_still_carried(
    metering, metering_stub, organisation_id, tmp_path, archived_cleanup
) -> None:
    """Retention deletes the events of invoiced months; a gauge set then still bills later months (the aggregates
    stay). Only a range holding a quarter hour of three or more archived events is refused, never answered short."""
    project = project_id()
    history = [
        ("a1", "10", datetime(2001, 2, 3, 10, tzinfo=UTC)),
        # Three events in one quarter hour: only the events can say how long each was held.
        ("b1", "1", datetime(2001, 2, 20, 12, 0, 1, tzinfo=UTC)),
        ("b2", "2", datetime(2001, 2, 20, 12, 3, tzinfo=UTC)),
        ("b3", "3", datetime(2001, 2, 20, 12, 7, tzinfo=UTC)),
        ("c1", "7", datetime(2001, 5, 10, tzinfo=UTC)),
    ]
    columns = EventColumns()
    for event_id, value, at in history:
        columns.organisation_ids.append(organisation_id)
        columns.project_ids.append(project)
        columns.event_ids.append(event_id)
        columns.metrics.append("vol")
        columns.values.append(value)
        columns.timestamps_us.append((at - datetime(1970, 1, 1, tzinfo=UTC)) // US)
        columns.dimensions.append("null")
    assert await EventStore(metering.engine).store(columns) == len(history)
    await define(metering_stub, organisation_id, "vol", A.AGGREGATION_WEIGHTED_SUM)
    events = [(project, E(i, v, t, "vol")) for i, v, t in history]
    feb, mar, apr = (datetime(2001, m, 1, tzinfo=UTC) for m in (2, 3, 4))

    async def horizon():
        return apr  # January to March are invoiced

    retention = EventRetention(metering.engine, horizon, enabled=True, archive_dir=str(tmp_path), min_age_days=62)
    outcome = await retention.run_once(ARCHIVE_NOW)
    assert [a.month for a in outcome.archived] == [feb]  # the only invoiced month with events
    async with metering.engine.connect() as conn:
        kept = await conn.execute(sa.text("SELECT event_id FROM metering.events WHERE project_id = :p"), {"p": project})
        assert kept.scalars().all() == ["c1"]

    for start, end in ((apr, datetime(2001, 5, 1, tzinfo=UTC)), (mar, apr), (feb + timedelta(days=20, hours=13), mar),
                       (apr, datetime(2001, 6, 1, tzinfo=UTC))):
        found = actual_rows((await metering_stub.QueryUsage(usage_request(organisation_id, "vol", start, end))).rows,
                            start, end, A.USAGE_WINDOW_WHOLE, "UTC")
        assert found == expected_gauge(events, project="", start=start, end=end, now=ARCHIVE_NOW), (start, end)
    assert found == {(): (Decimal(3 * 39 * 24 * 3600 + 7 * 22 * 24 * 3600) / 3600, 2)}  # b3 until 10 May, c1 after

    error = await expect_rpc_error(metering_stub.QueryUsage(usage_request(organisation_id, "vol", feb, mar)),
                                   grpc.StatusCode.FAILED_PRECONDITION)
    assert "events before 2001-03-01 are archived" in error.details()
