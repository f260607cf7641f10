"""The crossing event of a threshold level, as properties: the level fires exactly at the event whose value makes
usage reach it (not one before, not one after), each level at most once, whatever the batches look like."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.metering.domain.alert_evaluation import (
    NewEvent,
    reached_levels,
    spike_baseline,
    threshold_crossings,
)
from services.metering.domain.metric import Aggregation

T0 = datetime(2026, 11, 1, tzinfo=UTC)

values = st.decimals(min_value=Decimal("-50"), max_value=Decimal("1000"), places=3, allow_nan=False,
                     allow_infinity=False)
levels = st.lists(st.integers(min_value=1, max_value=20_000), min_size=1, max_size=10, unique=True).map(sorted)


def events_of(vals: list[Decimal]) -> list[NewEvent]:
    # Distinct (timestamp, event_id), given in reverse order: the walk must sort them itself.
    return list(reversed([NewEvent("prj_1", f"e{i:05d}", T0 + timedelta(seconds=i), v) for i, v in enumerate(vals)]))


def brute_force(before: Decimal, vals: list[Decimal], amounts: list[Decimal]) -> dict[Decimal, int]:
    """Level -> index of the first event at which the running total reaches it (from below)."""
    fired: dict[Decimal, int] = {}
    running = before
    for i, v in enumerate(vals):
        running += v
        for amount in amounts:
            if before < amount <= running and amount not in fired:
                fired[amount] = i
    return fired


@given(before=st.integers(min_value=0, max_value=10_000), vals=st.lists(values, min_size=1, max_size=40),
       lvls=levels)
def test_sum_fires_exactly_at_the_event_that_reaches_the_level(before, vals, lvls) -> None:
    before = Decimal(before)
    post = before + sum(vals, Decimal(0))
    amounts = [Decimal(level) for level in lvls]
    crossings = threshold_crossings(
        Aggregation.SUM, post, events_of(vals), [(str(a), a) for a in amounts]
    )
    expected = brute_force(before, vals, amounts)
    assert {Decimal(c.level): int(c.event.event_id[1:]) for c in crossings} == expected
    assert len({c.level for c in crossings}) == len(crossings)  # each level once
    for c in crossings:
        i = int(c.event.event_id[1:])
        total_at = before + sum(vals[: i + 1], Decimal(0))
        total_before = before + sum(vals[:i], Decimal(0))
        assert c.value == total_at >= c.threshold  # reached at this event ...
        # ... and not at any event before it (nor before the batch).
        assert all(before + sum(vals[: j + 1], Decimal(0)) < c.threshold for j in range(i))
        assert total_before < c.threshold or i == 0 and before < c.threshold


@given(before=st.integers(min_value=0, max_value=10_000), vals=st.lists(values, min_size=1, max_size=40),
       lvls=levels, cut=st.integers(min_value=0, max_value=40))
def test_one_batch_or_two_fire_the_same_levels_at_the_same_events(before, vals, lvls, cut) -> None:
    """The same events stored in one transaction or in two in a row: the same crossings."""
    before = Decimal(before)
    cut = min(cut, len(vals))
    thresholds = [(str(level), Decimal(level)) for level in lvls]
    evs = sorted(events_of(vals), key=lambda e: e.order)
    whole = threshold_crossings(Aggregation.SUM, before + sum(vals, Decimal(0)), evs, thresholds)
    first = threshold_crossings(Aggregation.SUM, before + sum(vals[:cut], Decimal(0)), evs[:cut], thresholds)
    fired = {c.level for c in first}
    second = threshold_crossings(Aggregation.SUM, before + sum(vals, Decimal(0)), evs[cut:], thresholds)
    # A level already fired in the first transaction is kept once by the store's unique key.
    split = first + [c for c in second if c.level not in fired]
    assert {(c.level, c.event.event_id) for c in whole} == {(c.level, c.event.event_id) for c in split}


@given(before=st.integers(min_value=0, max_value=100), n=st.integers(min_value=1, max_value=60), lvls=levels)
def test_count_fires_at_the_nth_event(before, n, lvls) -> None:
    vals = [Decimal(7)] * n  # values do not matter for a count
    crossings = threshold_crossings(
        Aggregation.COUNT, Decimal(before + n), events_of(vals), [(str(level), Decimal(level)) for level in lvls]
    )
    expected = {str(level): level - before - 1 for level in lvls if before < level <= before + n}
    assert {c.level: int(c.event.event_id[1:]) for c in crossings} == expected


def test_max_fires_at_the_first_event_reaching_the_level() -> None:
    vals = [Decimal(v) for v in ("3", "12", "9", "20", "15")]
    crossings = threshold_crossings(Aggregation.MAX, Decimal(20), events_of(vals),
                                    [("10", Decimal(10)), ("20", Decimal(20)), ("30", Decimal(30))])
    assert [(c.level, c.event.event_id, c.value) for c in crossings] == [
        ("10", "e00001", Decimal(12)), ("20", "e00003", Decimal(20))
    ]


def test_other_aggregations_attribute_a_reached_level_to_the_last_new_event() -> None:
    vals = [Decimal(1), Decimal(2)]
    crossings = threshold_crossings(Aggregation.UNIQUE_COUNT, Decimal(5), events_of(vals),
                                    [("5", Decimal(5)), ("6", Decimal(6))])
    assert [(c.level, c.event.event_id) for c in crossings] == [("5", "e00001")]


def test_a_gauge_attributes_a_reached_level_to_the_last_new_event() -> None:
    """weighted_sum usage is value-hours so far: not a running total of the events' values."""
    crossings = threshold_crossings(Aggregation.WEIGHTED_SUM, Decimal(720), events_of([Decimal(500), Decimal(1)]),
                                    [("700", Decimal(700)), ("800", Decimal(800))])
    assert [(c.level, c.event.event_id, c.value) for c in crossings] == [("700", "e00001", Decimal(720))]


def test_a_gauge_spike_baseline_is_its_average_per_window() -> None:
    """Value-hours add up over consecutive windows, like sums and counts; max and latest do not."""
    assert spike_baseline(Aggregation.WEIGHTED_SUM, Decimal(2400), 24) == Decimal(100)
    assert spike_baseline(Aggregation.LATEST, Decimal(2400), 24) == Decimal(2400)


def test_ties_in_time_are_broken_by_event_id() -> None:
    same = T0
    evs = [NewEvent("prj_1", "b", same, Decimal(5)), NewEvent("prj_1", "a", same, Decimal(5))]
    (crossing,) = threshold_crossings(Aggregation.SUM, Decimal(10), evs, [("5", Decimal(5))])
    assert crossing.event.event_id == "a"


def test_nothing_new_fires_nothing_and_the_sweep_fires_what_was_reached() -> None:
    assert threshold_crossings(Aggregation.SUM, Decimal(100), [], [("5", Decimal(5))]) == []
    reached = reached_levels(Decimal(100), [("50", Decimal(50)), ("100", Decimal(100)), ("150", Decimal(150))])
    assert [(c.level, c.event) for c in reached] == [("50", None), ("100", None)]
