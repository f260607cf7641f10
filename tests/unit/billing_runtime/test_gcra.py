"""GCRA (billing_runtime/gcra.py): what a rate admits whatever the arrival pattern, exact Retry-After, and the
exponential backoff of sign-in failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime import gcra as rl

T0 = datetime(2026, 1, 1, tzinfo=UTC)

rates = st.builds(rl.Rate, limit=st.integers(1, 40),
                  period=st.integers(1, 3_600_000_000).map(lambda us: timedelta(microseconds=us)))
# Arrival gaps in microseconds: many at once (0), some spread out.
gaps = st.lists(st.one_of(st.just(0), st.integers(0, 5_000_000), st.integers(0, 120_000_000)), max_size=120)


def run(rate: rl.Rate, offsets: list[int]) -> list[tuple[datetime, rl.Decision]]:
    tat, out, now = None, [], T0
    for gap in offsets:
        now += timedelta(microseconds=gap)
        decision = rl.check(rate, tat, now)
        if decision.allowed:
            tat = decision.tat
        else:
            assert decision.tat == (tat if tat is not None and tat > now else now)  # a refusal changes nothing
        out.append((now, decision))
    return out


def test_thirty_a_minute_admits_thirty_at_once_then_one_every_two_seconds():
    rate = rl.Rate(30, timedelta(minutes=1))
    decisions = [d for _, d in run(rate, [0] * 31)]
    assert [d.allowed for d in decisions] == [True] * 30 + [False]
    assert [d.remaining for d in decisions[:30]] == list(range(29, -1, -1))
    assert decisions[-1].retry_after == timedelta(seconds=2) and decisions[-1].retry_after_seconds == 2
    tat = decisions[29].tat
    assert not rl.check(rate, tat, T0 + timedelta(seconds=1.999)).allowed
    assert rl.check(rate, tat, T0 + timedelta(seconds=2)).allowed


@given(rates, gaps)
def test_never_more_than_the_burst_plus_what_the_window_refills(rate, offsets):
    admitted = [now for now, d in run(rate, offsets) if d.allowed]
    # In every window [a, a + w] (a and a + w being admitted arrivals): at most limit + w // interval.
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= rate.limit + (admitted[j] - start) // rate.interval


@given(rates, gaps)
def test_in_any_window_shorter_than_the_interval_at_most_limit(rate, offsets):
    admitted = [now for now, d in run(rate, offsets) if d.allowed]
    for i, start in enumerate(admitted):
        inside = [t for t in admitted[i:] if t - start < rate.interval]
        assert len(inside) <= rate.limit


@given(rates, gaps)
def test_after_retry_after_the_next_request_is_admitted_and_not_a_microsecond_before(rate, offsets):
    tat = None
    for now, decision in run(rate, offsets):
        if decision.allowed:
            tat = decision.tat
            continue
        assert rl.check(rate, tat, now + decision.retry_after).allowed
        if decision.retry_after > timedelta(microseconds=1):
            assert not rl.check(rate, tat, now + decision.retry_after - timedelta(microseconds=1)).allowed
        assert decision.retry_after_seconds >= decision.retry_after.total_seconds()


@given(rates, gaps)
def test_peek_agrees_with_check_and_changes_nothing(rate, offsets):
    tat = None
    for now, decision in run(rate, offsets):
        assert rl.peek(rate, tat, now).allowed == decision.allowed
        if decision.allowed:
            tat = decision.tat


@given(rates)
def test_an_idle_key_admits_exactly_limit_at_once(rate):
    assert [d.allowed for _, d in run(rate, [0] * (rate.limit + 1))] == [True] * rate.limit + [False]


def test_a_rate_needs_a_limit_and_a_period():
    with pytest.raises(ValueError):
        rl.Rate(0, timedelta(minutes=1))
    with pytest.raises(ValueError):
        rl.Rate(1, timedelta(0))


# Weighted takes: (gap in microseconds, need, extra wanted beyond it).
takes = st.lists(st.tuples(st.one_of(st.just(0), st.integers(0, 5_000_000)), st.integers(1, 60),
                           st.integers(0, 20)), max_size=60)


def run_takes(rate: rl.Rate, steps: list[tuple[int, int, int]]) -> list[tuple[datetime, int, int, rl.Grant]]:
    tat, out, now = None, [], T0
    for gap, need, extra in steps:
        now += timedelta(microseconds=gap)
        grant = rl.take(rate, tat, now, need, need + extra)
        if grant.granted:
            tat = grant.tat
        out.append((now, need, extra, grant))
    return out


@given(rates, takes)
def test_takes_never_grant_more_than_the_burst_plus_the_refill_but_for_one_oversized_take_from_idle(rate, steps):
    granted = [(now, g.granted) for now, _, _, g in run_takes(rate, steps) if g.granted]
    for i, (start, _) in enumerate(granted):
        total = 0
        for now, units in granted[i:]:
            total += units
            # An oversized take (more than the whole burst) is granted only from idle and is paid for afterwards,
            # so what a window holds is still bounded by the burst, the refill, and that one take.
            biggest = max(units for _, units in granted[i:])
            assert total <= max(rate.limit, biggest) + (now - start) // rate.interval


@given(rates, takes)
def test_a_take_gets_what_it_needs_and_at_most_what_it_wants_or_nothing(rate, steps):
    tat = None
    for now, need, extra, grant in run_takes(rate, steps):
        assert grant.granted == 0 or need <= grant.granted <= need + extra
        if grant.granted:
            assert grant.retry_after == timedelta(0)
            tat = grant.tat
            continue
        # Refused: exactly when the same need fits again (and not a microsecond before, unless already idle).
        later = rl.take(rate, tat, now + grant.retry_after, need)
        assert later.granted == need
        if grant.retry_after > timedelta(microseconds=1):
            assert not rl.take(rate, tat, now + grant.retry_after - timedelta(microseconds=1), need).granted


def test_a_batch_of_events_takes_one_unit_per_event_and_a_lease_takes_what_is_free():
    rate = rl.Rate(100, timedelta(seconds=10))  # 10 a second, bursts of 100
    first = rl.take(rate, None, T0, 30, 50)
    assert first.granted == 50 and first.tat == T0 + timedelta(seconds=5)
    second = rl.take(rate, first.tat, T0, 40, 80)
    assert second.granted == 50  # all that was left of the burst
    refused = rl.take(rate, second.tat, T0, 5)
    assert not refused.granted and refused.retry_after == timedelta(seconds=0.5) and refused.retry_after_seconds == 1
    assert rl.take(rate, second.tat, T0 + timedelta(seconds=0.5), 5).granted == 5


def test_a_take_over_the_whole_burst_waits_for_idle_and_is_then_paid_for():
    rate = rl.Rate(100, timedelta(seconds=10))
    busy = rl.take(rate, None, T0, 1)
    refused = rl.take(rate, busy.tat, T0, 250)
    assert not refused.granted and refused.retry_after == timedelta(seconds=0.1)  # until idle
    big = rl.take(rate, busy.tat, T0 + timedelta(seconds=0.1), 250)
    assert big.granted == 250 and big.tat == T0 + timedelta(seconds=25.1)
    # Paid for at 10 a second: one more fits once the TAT is back within the window (25.1 s - 10 s + 0.1 s).
    assert not rl.take(rate, big.tat, T0 + timedelta(seconds=15.1), 1).granted
    assert rl.take(rate, big.tat, T0 + timedelta(seconds=15.2), 1).granted == 1
    with pytest.raises(ValueError):
        rl.take(rate, None, T0, 0)


LOGIN = rl.Rate(5, timedelta(minutes=15))
HOUR = timedelta(hours=1)


def test_five_failures_then_lockouts_that_double_up_to_an_hour():
    state, now, lockouts = None, T0, []
    for _ in range(5):
        assert rl.peek(LOGIN, state.tat if state else None, now).allowed
        state = rl.fail(LOGIN, state, now, HOUR)
    for _ in range(7):
        decision = rl.peek(LOGIN, state.tat, now)
        assert not decision.allowed
        lockouts.append(decision.retry_after)
        now += decision.retry_after
        assert rl.peek(LOGIN, state.tat, now).allowed
        state = rl.fail(LOGIN, state, now, HOUR)
    minutes = [lockout / timedelta(minutes=1) for lockout in lockouts]
    assert minutes == [3, 6, 12, 24, 48, 60, 60]


def test_a_key_left_alone_until_idle_starts_over():
    state = None
    for _ in range(6):
        state = rl.fail(LOGIN, state, T0, HOUR)
    assert state.strikes == 2
    later = state.tat + timedelta(seconds=1)
    assert rl.peek(LOGIN, state.tat, later).allowed
    assert rl.fail(LOGIN, state, later, HOUR).strikes == 0


@given(st.lists(st.integers(0, 4_000_000_000), max_size=40), st.integers(1, 10))
def test_failures_are_never_admitted_faster_than_the_rate_and_a_lockout_never_exceeds_the_cap(offsets, limit):
    rate, state, now = rl.Rate(limit, timedelta(minutes=15)), None, T0
    for gap in offsets:
        now += timedelta(microseconds=gap)
        decision = rl.peek(rate, state.tat if state else None, now)
        assert decision.retry_after <= max(HOUR, rate.interval)
        if decision.allowed:
            state = rl.fail(rate, state, now, HOUR)
