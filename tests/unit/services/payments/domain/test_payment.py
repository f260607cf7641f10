"""A payment's state only moves forward, whatever order reports arrive in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain.payment import PaymentStatus, advance, from_provider_status

S = PaymentStatus


def test_failed_after_captured_does_not_unpay():
    assert advance(S.CAPTURED, S.FAILED) == (S.CAPTURED, False)


def test_captured_after_failed_pays():
    assert advance(S.FAILED, S.CAPTURED) == (S.CAPTURED, True)


def test_captured_before_authorized_is_the_end_state_arriving_first():
    assert advance(S.CAPTURED, S.AUTHORIZED) == (S.CAPTURED, False)


def test_a_repeat_is_no_move():
    assert advance(S.AUTHORIZED, S.AUTHORIZED).moved is False


@given(st.lists(st.sampled_from(list(S)), min_size=1, max_size=12))
def test_any_order_of_reports_ends_in_the_furthest_state_and_moves_at_most_once_per_state(reports):
    state = None
    moves = []
    for reported in reports:
        step = advance(state, reported)
        if step.moved:
            moves.append(step.status)
        state = step.status
    assert state == max(reports, key=lambda s: s.rank)
    assert len(moves) == len(set(moves))
    assert [m.rank for m in moves] == sorted(m.rank for m in moves)


def test_provider_statuses():
    assert from_provider_status("captured", False) is S.CAPTURED
    assert from_provider_status("authorized", True) is S.CAPTURED  # the razorpay-python test body's shape
    assert from_provider_status("refunded", True) is S.CAPTURED
    assert from_provider_status("failed", False) is S.FAILED
    assert from_provider_status("something_new", False) is None
