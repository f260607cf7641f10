"""Refund limits and states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.payments.domain.refund import RefundStatus, advance, check_refund, refundable

R = RefundStatus


def test_a_failed_refund_gives_its_amount_back():
    assert refundable(1000, [(R.PROCESSED, 300), (R.FAILED, 500), (R.REQUESTED, 100), (R.PENDING, 50)]) == 550


def test_zero_means_everything_left():
    assert check_refund(0, "duplicate charge", 1000, 400, "INR").amount_minor == 400


@pytest.mark.parametrize(
    ("amount", "reason", "captured", "left", "error", "field"),
    [
        (100, "", 1000, 1000, InvalidArgument, "reason"),
        (100, "x" * 256, 1000, 1000, InvalidArgument, "reason"),
        (-1, "r", 1000, 1000, InvalidArgument, "amount_minor"),
        (100, "r", 0, 0, FailedPrecondition, None),
        (100, "r", 1000, 0, FailedPrecondition, None),
        (401, "r", 1000, 400, FailedPrecondition, "amount_minor"),
    ],
)
def test_bad_refunds_say_what_is_wrong(amount, reason, captured, left, error, field):
    with pytest.raises(error) as caught:
        check_refund(amount, reason, captured, left, "INR")
    assert caught.value.field == field


def test_final_states_do_not_change():
    assert advance(R.PROCESSED, R.FAILED) is None
    assert advance(R.FAILED, R.PROCESSED) is None
    assert advance(R.PENDING, R.PROCESSED) is R.PROCESSED
    assert advance(R.REQUESTED, R.PROCESSED) is R.PROCESSED
    assert advance(R.PENDING, R.PENDING) is None


@given(st.integers(1, 10**6), st.lists(st.integers(1, 10**5), max_size=20))
def test_accepted_refunds_never_exceed_the_capture(captured, requests):
    held: list[tuple[RefundStatus, int]] = []
    for amount in requests:
        left = refundable(captured, held)
        try:
            accepted = check_refund(amount, "r", captured, left, "INR")
        except FailedPrecondition:
            continue
        held.append((R.PENDING, accepted.amount_minor))
    assert sum(a for _, a in held) <= captured
