"""Dunning schedules: explicit days or backoff, then giving up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.payments.domain.dunning import Dunning, DunningPolicy, DunningState, Step, due_moment

DUE = datetime(2026, 12, 20, 18, 30, tzinfo=UTC)  # 21 Dec 00:00 in Kolkata


def test_an_invoice_due_on_the_20th_is_overdue_from_the_21st_in_the_suppliers_zone():
    assert due_moment(date(2026, 12, 20), "Asia/Kolkata") == DUE


def walk(policy: DunningPolicy) -> list[tuple[Step, timedelta]]:
    dunning = Dunning("inv_1", policy, DUE, DunningState.SCHEDULED, 0, DUE)
    steps = []
    while dunning.state is not DunningState.EXHAUSTED:
        step = dunning.next_step()
        steps.append((step, dunning.next_at - DUE))
        dunning = dunning.after(step)
    return steps


def test_explicit_days_then_giving_up_one_gap_after_the_last():
    assert walk(DunningPolicy(max_attempts=3, retry_days=(1, 3, 7))) == [
        (Step.OVERDUE, timedelta(0)), (Step.ATTEMPT, timedelta(days=1)), (Step.ATTEMPT, timedelta(days=3)),
        (Step.ATTEMPT, timedelta(days=7)), (Step.GIVE_UP, timedelta(days=11)),
    ]


def test_backoff_with_a_cap():
    policy = DunningPolicy(max_attempts=3, base=timedelta(days=1), factor=3.0, cap=timedelta(days=5))
    assert [offset for _, offset in walk(policy)] == [timedelta(0), timedelta(days=1), timedelta(days=4),
                                                      timedelta(days=9), timedelta(days=14)]


def test_no_attempts_means_overdue_then_uncollectible():
    assert [step for step, _ in walk(DunningPolicy(max_attempts=0))] == [Step.OVERDUE, Step.GIVE_UP]


@pytest.mark.parametrize(("values", "field"), [
    ({"max_attempts": 21}, "max_attempts"), ({"max_attempts": 2, "retry_days": (1,)}, "retry_days"),
    ({"max_attempts": 2, "retry_days": (3, 1)}, "retry_days"),
    ({"max_attempts": 1, "retry_days": (121,)}, "retry_days"),
    ({"factor": 0.5}, "factor"), ({"base": timedelta(seconds=1)}, "base_seconds"),
    ({"cap": timedelta(seconds=60)}, "cap_seconds"),
])
def test_bad_policies_name_the_field(values, field):
    with pytest.raises(InvalidArgument) as caught:
        DunningPolicy(**values)
    assert caught.value.field == field


@given(st.integers(0, 20), st.integers(60, 86400 * 10), st.floats(1.0, 10.0), st.integers(0, 100))
def test_backoff_steps_never_go_back_in_time(attempts, base, factor, extra):
    policy = DunningPolicy(max_attempts=attempts, base=timedelta(seconds=base), factor=factor,
                           cap=timedelta(seconds=max(base, base + extra * 3600)))
    offsets = [offset for _, offset in walk(policy)]
    assert offsets == sorted(offsets) and len(offsets) == attempts + 2


def test_a_policy_survives_its_stored_form():
    policy = DunningPolicy(max_attempts=2, retry_days=(2, 5), factor=1.5)
    assert DunningPolicy.from_record(policy.record()) == policy
