"""Quota enforcement at ingest, without I/O: a fake metering answers, a fake clock moves the cache along, and the
batches go through the real use cases (both the parsed path and the native fast path)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.ingest.v1 import ingest_pb2
from billing_runtime.errors import Unavailable
from billing_runtime.timestamps import to_timestamp
from services.ingest.adapters import native_scan
from services.ingest.domain.event import ACCEPTED, REJECTED, EventLimits
from services.ingest.domain.project import Project
from services.ingest.domain.quota import (
    QUOTA_EXCEEDED,
    Measure,
    MetricRule,
    QuotaWindow,
    enforcement_ceiling,
)
from services.ingest.service import events
from services.ingest.service.quotas import QuotaEnforcer

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LAST_MONTH = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
PERIODS = [
    (int(datetime(2026, 10, 1, tzinfo=UTC).timestamp()), int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())),
    (int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()), int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())),
]
LIMITS = EventLimits()
PROJECT = Project(id="prj_1", organisation_id="org_1", name="p", created_at=NOW)


class FakeMetering:
    """Metering as ingest sees it: quotas per metric, metered usage per (metric, period), metric definitions."""

    def __init__(self) -> None:
        self.quotas: dict[str, tuple[Decimal, str, bool]] = {}  # metric -> (limit, cap, enforced at ingest)
        self.used: dict[tuple[str, int], Decimal] = {}
        self.rules = {"api_calls": MetricRule(Measure.COUNT), "tokens": MetricRule(Measure.SUM)}
        self.checks: list[list[str]] = []
        self.down = False
        self.usage_time: float | None = None  # when answers say usage was read; None: at the time asked

    def quota(self, metric: str, limit: int, cap: str = "hard", enforced: bool = True) -> FakeMetering:
        self.quotas[metric] = (Decimal(limit), cap, enforced)
        return self

    async def check(self, organisation_id, questions, now_seconds):
        if self.down:
            raise Unavailable("service unavailable: connection refused")
        self.checks.append([q.metric for q in questions])
        await asyncio.sleep(0)  # an answer takes a turn of the loop, as a real call does
        windows = []
        for question in questions:
            start, reset = next(p for p in PERIODS if p[0] <= question.at_seconds < p[1])
            used = self.used.get((question.metric, start), Decimal(0))
            if question.metric not in self.quotas:
                windows.append(QuotaWindow(question.metric, start, reset, used))
                continue
            limit, cap, enforced = self.quotas[question.metric]
            ceiling = enforcement_ceiling(hard=cap == "hard", enforced_at_ingest=enforced, limit=limit,
                                          grace_limit=None, grace_end_seconds=None, now_seconds=now_seconds)
            read = self.usage_time if self.usage_time is not None else now_seconds
            windows.append(QuotaWindow(question.metric, start, reset, used, limit, ceiling, cap, "standard (v2)",
                                       usage_time=read))
        return windows

    async def metric_rules(self, organisation_id):
        if self.down:
            raise Unavailable("service unavailable: connection refused")
        return self.rules


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Log:
    """An event log that keeps what it was given, on either path."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.encoded = 0
        self.fail = False

    async def append(self, organisation_id, project_id, batch):
        if self.fail:
            raise Unavailable("events could not be made durable")
        self.written += [e.event_id for e in batch]
        return [(0, len(batch), False)]

    def fits(self, encoded_size):
        return True

    async def append_encoded(self, organisation_id, project_id, encoded, joined_ids):
        if self.fail:
            raise Unavailable("events could not be made durable")
        self.encoded += 1
        self.written += joined_ids.decode().split("\x00")
        return False


def make(event_id, metric="api_calls", value="1", when=NOW, **more) -> ingest_pb2.Event:
    message = ingest_pb2.Event(event_id=event_id, metric=metric, value=value, **more)
    message.timestamp.CopyFrom(to_timestamp(when))
    return message


def batch(prefix: str, count: int, **fields) -> list[ingest_pb2.Event]:
    return [make(f"{prefix}{i}", **fields) for i in range(count)]


def enforcer(metering: FakeMetering, clock: Clock | None = None, **options) -> QuotaEnforcer:
    return QuotaEnforcer(metering, ttl_seconds=0.5, clock=clock or Clock(), **options)


def current(metric: str = "api_calls") -> tuple[str, int]:
    return metric, PERIODS[1][0]


async def test_events_that_do_not_fit_are_refused_in_order_and_never_written():
    metering = FakeMetering().quota("api_calls", 10)
    metering.used[current()] = Decimal(7)
    log = Log()
    outcome = await events.ingest_batch(log, PROJECT, batch("e", 5), NOW, LIMITS, enforcer(metering))
    assert (outcome.accepted, outcome.rejected, outcome.quota_refused) == (3, 2, 2)
    assert log.written == ["e0", "e1", "e2"]
    assert [(r.index, r.status, r.field) for r in outcome.results] == [(3, REJECTED, "metric"), (4, REJECTED, "metric")]
    reason = outcome.results[0].reason
    assert reason.startswith(QUOTA_EXCEEDED)
    assert "hard cap of 10 api_calls per billing period on plan standard (v2)" in reason
    assert "10 used; resets 2026-12-01T00:00:00Z" in reason
    assert not outcome.all_refused_for_quota
    assert outcome.retry_after_seconds == PERIODS[1][1] - int(NOW.timestamp())


async def test_exactly_at_the_limit_is_accepted_and_one_over_is_refused():
    metering = FakeMetering().quota("tokens", 100)
    metering.used[current("tokens")] = Decimal(60)
    quotas = enforcer(metering)
    at_limit = await events.ingest_batch(Log(), PROJECT, [make("a", "tokens", "40")], NOW, LIMITS, quotas)
    assert (at_limit.accepted, at_limit.rejected) == (1, 0)
    one_over = await events.ingest_batch(Log(), PROJECT, [make("b", "tokens", "1")], NOW, LIMITS, quotas)
    assert (one_over.accepted, one_over.rejected) == (0, 1)
    assert one_over.all_refused_for_quota


async def test_a_decimal_that_fits_exactly_is_accepted_and_a_thousandth_more_is_not():
    metering = FakeMetering().quota("tokens", 1)
    outcome = await events.ingest_batch(
        Log(), PROJECT, [make("a", "tokens", "0.999"), make("b", "tokens", "0.001"), make("c", "tokens", "0.001")],
        NOW, LIMITS, enforcer(metering),
    )
    assert [r.index for r in outcome.results] == [2]


async def test_answers_are_cached_for_the_ttl_and_what_was_admitted_counts_meanwhile():
    metering = FakeMetering().quota("api_calls", 8)
    clock = Clock()
    quotas = enforcer(metering, clock)
    first = await events.ingest_batch(Log(), PROJECT, batch("a", 5), NOW, LIMITS, quotas)
    second = await events.ingest_batch(Log(), PROJECT, batch("b", 5), NOW, LIMITS, quotas)
    assert (first.accepted, second.accepted, second.rejected) == (5, 3, 2)
    assert metering.checks == [["api_calls"]]  # the second batch asked nothing
    metering.quota("api_calls", 100)  # a plan upgrade
    clock.now += 0.6  # past the TTL: judged by the old answer while a refresh runs in the background
    third = await events.ingest_batch(Log(), PROJECT, batch("c", 5), NOW, LIMITS, quotas)
    assert third.rejected == 5
    await asyncio.sleep(0.01)
    assert len(metering.checks) == 2
    fourth = await events.ingest_batch(Log(), PROJECT, batch("d", 5), NOW, LIMITS, quotas)
    assert fourth.accepted == 5 and len(metering.checks) == 2
    [report] = fourth.quotas
    assert report.remaining == 100 - 8 - 5  # what was admitted before the refresh still counts (not metered yet)


async def test_admissions_from_before_metering_read_usage_are_left_to_metering():
    metering = FakeMetering().quota("api_calls", 5)
    clock = Clock()
    quotas = enforcer(metering, clock)
    assert (await events.ingest_batch(Log(), PROJECT, batch("a", 5), NOW, LIMITS, quotas)).accepted == 5
    metering.used[current()] = Decimal(5)  # metered, and read well after they were admitted
    metering.usage_time = NOW.timestamp() + 5
    clock.now += 1.1
    later = NOW.replace(second=5)
    refused = await events.ingest_batch(Log(), PROJECT, batch("b", 1, when=later), later, LIMITS, quotas)
    assert refused.rejected == 1
    [report] = refused.quotas
    assert report.remaining == 0


async def test_an_answer_past_twice_the_ttl_is_not_used_any_more():
    metering = FakeMetering().quota("api_calls", 1)
    clock = Clock()
    quotas = enforcer(metering, clock)
    assert (await events.ingest_batch(Log(), PROJECT, batch("a", 1), NOW, LIMITS, quotas)).accepted == 1
    metering.quota("api_calls", 2)
    clock.now += 1.1
    again = await events.ingest_batch(Log(), PROJECT, batch("b", 1), NOW, LIMITS, quotas)
    assert again.accepted == 1 and len(metering.checks) == 2  # asked before judging


async def test_soft_caps_and_hard_caps_not_enforced_at_ingest_accept_everything_and_still_report():
    metering = FakeMetering().quota("api_calls", 2, cap="soft").quota("tokens", 2, enforced=False)
    outcome = await events.ingest_batch(
        Log(), PROJECT, [*batch("a", 4), *batch("t", 3, metric="tokens", value="5")], NOW, LIMITS, enforcer(metering)
    )
    assert (outcome.accepted, outcome.rejected) == (7, 0)
    assert {(r.metric, r.limit, r.remaining) for r in outcome.quotas} == {
        ("api_calls", Decimal(2), 0), ("tokens", Decimal(2), 0)
    }


async def test_without_an_enforcer_nothing_is_asked_or_refused():
    metering = FakeMetering().quota("api_calls", 0)
    outcome = await events.ingest_batch(Log(), PROJECT, batch("a", 3), NOW, LIMITS, None)
    assert outcome.accepted == 3 and metering.checks == []


async def test_metering_down_fails_open_by_default_and_asks_again_only_after_the_ttl():
    metering = FakeMetering().quota("api_calls", 0)
    metering.down = True
    clock = Clock()
    quotas = enforcer(metering, clock)
    log = Log()
    outcome = await events.ingest_batch(log, PROJECT, batch("a", 3), NOW, LIMITS, quotas)
    assert outcome.accepted == 3 and log.written == ["a0", "a1", "a2"]
    metering.down = False
    still = await events.ingest_batch(log, PROJECT, batch("b", 1), NOW, LIMITS, quotas)
    assert still.accepted == 1 and metering.checks == []  # not asked again within the TTL
    clock.now += 0.6
    refused = await events.ingest_batch(log, PROJECT, batch("c", 1), NOW, LIMITS, quotas)
    assert refused.rejected == 1


async def test_metering_down_fails_closed_when_configured_so_and_nothing_is_written():
    metering = FakeMetering().quota("api_calls", 100)
    metering.down = True
    log = Log()
    with pytest.raises(Unavailable, match="quotas could not be checked"):
        await events.ingest_batch(log, PROJECT, batch("a", 3), NOW, LIMITS, enforcer(metering, fail_open=False))
    assert log.written == []


async def test_a_failed_write_gives_back_what_it_had_counted():
    metering = FakeMetering().quota("api_calls", 3)
    quotas = enforcer(metering)
    log = Log()
    log.fail = True
    with pytest.raises(Unavailable):
        await events.ingest_batch(log, PROJECT, batch("a", 3), NOW, LIMITS, quotas)
    log.fail = False
    retried = await events.ingest_batch(log, PROJECT, batch("a", 3), NOW, LIMITS, quotas)
    assert retried.accepted == 3


async def test_backdated_events_are_judged_against_their_own_period():
    metering = FakeMetering().quota("api_calls", 5)
    metering.used[("api_calls", PERIODS[0][0])] = Decimal(5)  # last month's cap is used up
    mixed = [make("old1", when=LAST_MONTH), make("new1"), make("old2", when=LAST_MONTH), make("new2")]
    log = Log()
    outcome = await events.ingest_batch(log, PROJECT, mixed, NOW, LIMITS, enforcer(metering))
    assert log.written == ["new1", "new2"]
    assert [r.index for r in outcome.results] == [0, 2]
    assert "its period ended 2026-11-01T00:00:00Z: not accepted again" in outcome.results[0].reason
    assert outcome.retry_after_seconds == 0
    [report] = outcome.quotas  # the current period's quota, as the client's current one
    assert (report.remaining, report.window_seconds) == (3, PERIODS[1][1] - PERIODS[1][0])


async def test_filters_decide_which_events_count():
    metering = FakeMetering().quota("api_calls", 1)
    metering.rules["api_calls"] = MetricRule(Measure.COUNT, {"region": frozenset({"eu"})})
    batch_ = [make("a", dimensions={"region": "eu"}), make("b", dimensions={"region": "us"}),
              make("c", dimensions={"region": "eu"})]
    outcome = await events.ingest_batch(Log(), PROJECT, batch_, NOW, LIMITS, enforcer(metering))
    assert [r.index for r in outcome.results] == [2]


async def test_max_metrics_refuse_a_value_over_the_cap_by_itself():
    metering = FakeMetering().quota("peak_gb", 10)
    metering.rules["peak_gb"] = MetricRule(Measure.PEAK)
    outcome = await events.ingest_batch(
        Log(), PROJECT, [make("a", "peak_gb", "9"), make("b", "peak_gb", "11"), make("c", "peak_gb", "10")],
        NOW, LIMITS, enforcer(metering),
    )
    assert [r.index for r in outcome.results] == [1]


# -- the encoded fast path ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scanner() -> native_scan.EventScanner:
    found = native_scan.load()
    assert found is not None, f"build the native scanner first (make protos): {native_scan.library_path()}"
    return found


def encoded(events_: list[ingest_pb2.Event]) -> bytes:
    return ingest_pb2.StreamEventsRequest(sequence=7, events=events_).SerializeToString()


def counting_parser():
    parsed = []

    def parse(data: bytes):
        parsed.append(data)
        return ingest_pb2.StreamEventsRequest.FromString(data)

    return parse, parsed


async def test_a_clean_batch_that_fits_stays_on_the_fast_path_and_costs_no_call_once_cached(scanner):
    metering = FakeMetering().quota("api_calls", 1_000).quota("tokens", 1_000)
    quotas = enforcer(metering)
    log = Log()
    parse, parsed = counting_parser()
    for round_ in range(3):
        data = encoded([*batch(f"r{round_}a", 10), *batch(f"r{round_}t", 5, metric="tokens", value="7")])
        sequence, outcome = await events.ingest_encoded(log, scanner, PROJECT, data, parse, NOW, LIMITS, quotas)
        assert (sequence, outcome.accepted) == (7, 15)
    assert parsed == [] and log.encoded == 3
    assert metering.checks == [["api_calls", "tokens"]]  # one call for the first batch, none after
    assert {(r.metric, r.remaining) for r in outcome.quotas} == {("api_calls", 970), ("tokens", 895)}


async def test_a_clean_batch_that_may_not_fit_is_walked_event_by_event(scanner):
    metering = FakeMetering().quota("tokens", 20)
    log = Log()
    parse, parsed = counting_parser()
    data = encoded([make(f"t{i}", "tokens", "6") for i in range(4)])
    _, outcome = await events.ingest_encoded(log, scanner, PROJECT, data, parse, NOW, LIMITS, enforcer(metering))
    assert len(parsed) == 1 and log.encoded == 0
    assert log.written == ["t0", "t1", "t2"]
    assert [(r.index, r.status) for r in outcome.results] == [(3, REJECTED)]


async def test_fractional_values_leave_the_fast_path_but_are_judged_exactly(scanner):
    metering = FakeMetering().quota("tokens", 1)
    parse, parsed = counting_parser()
    data = encoded([make("a", "tokens", "0.5"), make("b", "tokens", "0.5")])
    _, outcome = await events.ingest_encoded(Log(), scanner, PROJECT, data, parse, NOW, LIMITS, enforcer(metering))
    assert outcome.accepted == 2 and len(parsed) == 1


async def test_the_fast_path_fails_open_too(scanner):
    metering = FakeMetering().quota("api_calls", 0)
    metering.down = True
    log = Log()
    parse, parsed = counting_parser()
    _, outcome = await events.ingest_encoded(
        log, scanner, PROJECT, encoded(batch("a", 3)), parse, NOW, LIMITS, enforcer(metering)
    )
    assert outcome.accepted == 3 and log.encoded == 1 and parsed == []


async def test_a_batch_spanning_two_periods_is_walked(scanner):
    metering = FakeMetering().quota("api_calls", 1)
    metering.used[("api_calls", PERIODS[0][0])] = Decimal(1)
    log = Log()
    parse, parsed = counting_parser()
    data = encoded([make("old", when=LAST_MONTH), make("new")])
    _, outcome = await events.ingest_encoded(log, scanner, PROJECT, data, parse, NOW, LIMITS, enforcer(metering))
    assert log.written == ["new"] and [r.index for r in outcome.results] == [0] and len(parsed) == 1
    assert [r.status for r in outcome.results] == [REJECTED] and ACCEPTED not in [r.status for r in outcome.results]


async def test_batches_that_miss_together_share_one_answer_and_count_together():
    metering = FakeMetering().quota("api_calls", 3)
    quotas = enforcer(metering)
    outcomes = await asyncio.gather(*(
        events.ingest_batch(Log(), PROJECT, batch(f"b{n}-", 2), NOW, LIMITS, quotas) for n in range(3)
    ))
    assert sum(o.accepted for o in outcomes) == 3 and sum(o.rejected for o in outcomes) == 3
    assert metering.checks == [["api_calls"]]
