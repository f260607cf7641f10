"""Per-project event rates at ingest, without I/O: an in-memory shared state runs the same GCRA as the
PostgreSQL one, a fake clock moves time, and fake plans answer (or fail to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.ingest.v1 import ingest_pb2
from billing_runtime import gcra
from billing_runtime.errors import ResourceExhausted, Unavailable
from billing_runtime.timestamps import to_timestamp
from services.ingest.adapters import native_scan
from services.ingest.domain.event import EventLimits
from services.ingest.domain.event_rate import EventRate
from services.ingest.domain.project import Project
from services.ingest.service import events
from services.ingest.service.rate_limits import EventRateLimiter

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PROJECT = Project(id="prj_1", organisation_id="org_1", name="p", created_at=T0)
OTHER = Project(id="prj_2", organisation_id="org_1", name="q", created_at=T0)


class Clock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        self.seconds += seconds


class SharedState:
    """``PostgresRateLimits.take`` in memory, on the fake clock; counts the shared checks."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tats: dict[str, datetime] = {}
        self.calls = 0

    async def take(self, key: str, rate: gcra.Rate, need: int, want: int | None = None) -> gcra.Grant:
        self.calls += 1
        grant = gcra.take(rate, self.tats.get(key), T0 + timedelta(seconds=self.clock()), need, want)
        if grant.granted:
            self.tats[key] = grant.tat
        return grant


class Plans:
    def __init__(self, rates: dict[str, EventRate | None]) -> None:
        self.rates = rates
        self.asked = 0
        self.down = False

    async def ingest_rate(self, organisation_id: str) -> EventRate | None:
        self.asked += 1
        if self.down:
            raise Unavailable("invoicing is down")
        return self.rates.get(organisation_id)


def limiter(rate: EventRate | None, *, default: EventRate | None = None, lease_seconds: float = 0.05,
            replicas: int = 1):
    clock = Clock()
    shared = SharedState(clock)
    plans = Plans({"org_1": rate})
    made = [EventRateLimiter(plans, shared, default=default, lease_seconds=lease_seconds, clock=clock,
                             sleep=clock.sleep) for _ in range(replicas)]
    return made, clock, shared, plans


async def test_a_burst_is_admitted_at_once_then_the_rate_with_an_exact_retry_after():
    [rates], clock, _, _ = limiter(EventRate(10, 100))
    await rates.admit(PROJECT, 60)
    await rates.admit(PROJECT, 40)
    with pytest.raises(ResourceExhausted) as refused:
        await rates.admit(PROJECT, 5)
    assert refused.value.retry_after_seconds == 1
    assert "may send 10 events/s with bursts of 100" in refused.value.message
    clock.seconds = 0.5  # 5 events' worth later
    await rates.admit(PROJECT, 5)
    with pytest.raises(ResourceExhausted):
        await rates.admit(PROJECT, 1)


async def test_every_replica_counts_against_one_shared_rate_and_leases_save_round_trips():
    replicas, clock, shared, _ = limiter(EventRate(1_000, 1_000), lease_seconds=0.1, replicas=2)
    admitted = 0
    for n in range(200):  # batches of 10 alternating between the replicas, all at one instant
        try:
            await replicas[n % 2].admit(PROJECT, 10)
            admitted += 10
        except ResourceExhausted:
            pass
    assert admitted <= 1_000  # never more than the burst, whichever replica answered
    assert admitted >= 1_000 - 2 * 100  # at most one lease per replica unspent
    # A lease of 100 serves ten batches of 10; once refused, a replica refuses without asking until room is due.
    assert shared.calls <= 1_000 // 100 + 2 * 2
    clock.seconds = 2.0  # leases expire; the rate refills
    await replicas[0].admit(PROJECT, 10)


async def test_projects_are_counted_apart():
    [rates], _, _, _ = limiter(EventRate(1, 5))
    await rates.admit(PROJECT, 5)
    await rates.admit(OTHER, 5)
    with pytest.raises(ResourceExhausted):
        await rates.admit(PROJECT, 1)


async def test_a_stream_waits_for_room_up_to_its_limit():
    [rates], clock, _, _ = limiter(EventRate(10, 10))
    await rates.admit(PROJECT, 10)
    await rates.admit(PROJECT, 10, max_wait_seconds=2)  # waited one second for room
    assert clock.seconds == pytest.approx(1.0)
    with pytest.raises(ResourceExhausted) as refused:
        await rates.admit(PROJECT, 10, max_wait_seconds=0.5)
    assert refused.value.retry_after_seconds == 1 and clock.seconds == pytest.approx(1.0)


async def test_a_batch_larger_than_the_burst_goes_through_from_idle_and_is_paid_for():
    [rates], clock, _, _ = limiter(EventRate(100, 100))
    await rates.admit(PROJECT, 500)
    with pytest.raises(ResourceExhausted) as refused:
        await rates.admit(PROJECT, 1)
    # 500 events at 100/s, less the burst of 100, and one more event's interval: 4.01 s, rounded up.
    assert refused.value.retry_after_seconds == 5
    clock.seconds = 4.01
    await rates.admit(PROJECT, 1)


async def test_without_a_plan_rate_the_default_applies_and_without_either_nothing_is_limited():
    [rates], _, shared, _ = limiter(None)
    await rates.admit(PROJECT, 1_000_000)
    assert shared.calls == 0
    [rates], _, _, _ = limiter(None, default=EventRate(1, 3))
    await rates.admit(PROJECT, 3)
    with pytest.raises(ResourceExhausted):
        await rates.admit(PROJECT, 1)


async def test_the_plan_rate_is_cached_and_a_failed_lookup_applies_the_default_for_a_while():
    [rates], clock, _, plans = limiter(EventRate(1_000, 1_000), default=EventRate(1, 1))
    await rates.admit(PROJECT, 500)
    await rates.admit(OTHER, 500)
    assert plans.asked == 1  # one question per organisation and TTL
    clock.seconds = 31.0
    plans.down = True
    await rates.admit(PROJECT, 1)  # the default: one at once
    with pytest.raises(ResourceExhausted):
        await rates.admit(PROJECT, 1)
    plans.down = False
    clock.seconds = 37.0  # past the few seconds a failure is remembered
    await rates.admit(PROJECT, 900)
    assert plans.asked == 3


async def test_when_the_shared_count_cannot_be_reached_batches_are_admitted_uncounted():
    [rates], _, shared, _ = limiter(EventRate(1, 1))

    async def down(*args, **kwargs):
        raise ConnectionError("database is down")

    shared.take = down  # type: ignore[method-assign]
    await rates.admit(PROJECT, 100)
    await rates.admit(PROJECT, 100)


def _clean_batch(count: int) -> bytes:
    message = ingest_pb2.IngestEventsRequest(events=[
        ingest_pb2.Event(event_id=f"e{i}", metric="api.calls", value="1", timestamp=to_timestamp(T0))
        for i in range(count)
    ])
    return message.SerializeToString()


class Log:
    def __init__(self) -> None:
        self.written = 0

    async def append(self, organisation_id, project_id, events):
        self.written += len(events)
        return [(0, len(events), False)]

    def fits(self, encoded_size: int) -> bool:
        return True

    async def append_encoded(self, organisation_id, project_id, encoded, joined_ids):
        self.written += ingest_pb2.IngestEventsRequest.FromString(encoded).events.__len__()
        return False


@pytest.mark.parametrize("scanner", [None, native_scan.load()], ids=["parsed", "native"])
async def test_a_batch_over_the_rate_is_refused_whole_and_nothing_is_written(scanner):
    [rates], _, _, _ = limiter(EventRate(1, 10))
    log = Log()
    limits = EventLimits(max_batch_events=100, past_window=timedelta(days=35), future_window=timedelta(minutes=5))
    parse = ingest_pb2.IngestEventsRequest.FromString
    _, outcome = await events.ingest_encoded(log, scanner, PROJECT, _clean_batch(8), parse, T0, limits,
                                             rates=rates)
    assert outcome.accepted == 8 and log.written == 8
    with pytest.raises(ResourceExhausted):
        await events.ingest_encoded(log, scanner, PROJECT, _clean_batch(3), parse, T0, limits, rates=rates)
    assert log.written == 8
    # An oversized batch is refused for its size, and not charged to the rate.
    [rates], _, shared, _ = limiter(EventRate(1, 10))
    with pytest.raises(Exception, match="at most 100"):
        await events.ingest_encoded(log, None, PROJECT, _clean_batch(101), parse, T0, limits, rates=rates)
    assert shared.calls == 0
