"""Auto-debit rules: the mandate's forward-only states, when a debit starts, and which invoices are debited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain.dunning import due_moment
from services.payments.domain.mandate import (
    LEAD,
    MIN_NOTICE,
    MOVES,
    DebitState,
    MandateMethod,
    MandateState,
    Route,
    advance,
    cycle,
    debit_at,
    debit_moves,
    route,
)

UPI, CARD, NACH = MandateMethod.UPI, MandateMethod.CARD, MandateMethod.EMANDATE
LAKH = 10_000_000  # ₹1,00,000.00 in paise


def test_a_mandate_is_confirmed_then_paused_then_cancelled_and_never_goes_back() -> None:
    assert advance(MandateState.CREATED, MandateState.CONFIRMED) == (MandateState.CONFIRMED, True)
    assert advance(MandateState.CONFIRMED, MandateState.PAUSED) == (MandateState.PAUSED, True)
    assert advance(MandateState.PAUSED, MandateState.CONFIRMED) == (MandateState.PAUSED, False)
    assert advance(MandateState.PAUSED, MandateState.CANCELLED) == (MandateState.CANCELLED, True)
    assert advance(MandateState.CANCELLED, MandateState.CONFIRMED) == (MandateState.CANCELLED, False)
    assert advance(MandateState.REJECTED, MandateState.CONFIRMED) == (MandateState.REJECTED, False)
    assert advance(MandateState.CONFIRMED, MandateState.REJECTED) == (MandateState.CONFIRMED, False)


@given(st.lists(st.sampled_from(list(MandateState)), max_size=12), st.randoms())
def test_whatever_order_token_reports_arrive_in_the_end_state_is_the_same_set_of_finals(reports, rnd) -> None:
    """Forward only: every report applied in any order ends in a state from which none of them moves it."""
    shuffled = list(reports)
    rnd.shuffle(shuffled)
    state = MandateState.CREATED
    for reported in shuffled:
        moved = advance(state, reported)
        if moved.moved:
            assert reported in MOVES[state]
        state = moved.state
    # No report moves it further: applying all again changes nothing once cancelled or rejected is reached.
    if state in (MandateState.CANCELLED, MandateState.REJECTED):
        assert all(not advance(state, r).moved for r in MandateState)
    assert state.live == (state in (MandateState.CREATED, MandateState.CONFIRMED, MandateState.PAUSED))


def test_debits_start_25_to_36_hours_before_the_due_moment_by_method() -> None:
    due = date(2026, 12, 20)
    moment = due_moment(due, "Asia/Kolkata")  # the end of the 20th in India: 2026-12-20 18:30 UTC
    assert moment == datetime(2026, 12, 20, 18, 30, tzinfo=UTC)
    early = datetime(2026, 12, 1, tzinfo=UTC)
    assert debit_at(due, UPI, early) == moment - timedelta(hours=25)
    assert debit_at(due, CARD, early) == moment - timedelta(hours=36)
    assert debit_at(due, NACH, early) == moment - timedelta(hours=30)
    assert all(timedelta(hours=25) <= lead <= timedelta(hours=36) for lead in LEAD.values())
    # Issued too late for the notice: started at once (it lands after the due date; dunning waits for it).
    late = moment - timedelta(hours=3)
    assert debit_at(due, UPI, late) == late


@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2035, 12, 31)), st.sampled_from(list(MandateMethod)),
       st.integers(min_value=0, max_value=90 * 24))
def test_a_debit_never_starts_before_now_and_leaves_at_least_the_notice_when_there_is_time(due, method, hours):
    now = due_moment(due, "Asia/Kolkata") - timedelta(hours=hours)
    start = debit_at(due, method, now)
    assert start >= now
    if hours >= LEAD[method].total_seconds() / 3600:
        assert due_moment(due, "Asia/Kolkata") - start == LEAD[method] >= MIN_NOTICE


def test_cards_and_upi_above_15000_rupees_get_a_link_and_enach_is_debited() -> None:
    assert route(UPI, LAKH, 1_500_000, "INR", 0).route is Route.DEBIT  # exactly ₹15,000.00
    over = route(UPI, LAKH, 1_500_001, "INR", 0)
    assert over.route is Route.LINK and "15,000" in over.reason
    assert route(CARD, LAKH, 1_500_001, "INR", 0).route is Route.LINK
    assert route(NACH, 100 * LAKH, 5_000_000, "INR", 0).route is Route.DEBIT
    assert route(NACH, LAKH, LAKH + 1, "INR", 0).reason == "the amount is above the mandate's maximum"


def test_one_upi_debit_per_cycle_and_inr_only() -> None:
    assert route(UPI, LAKH, 11_800, "INR", 1).route is Route.LINK
    assert route(CARD, LAKH, 11_800, "INR", 1).route is Route.DEBIT
    assert route(NACH, LAKH, 11_800, "INR", 3).route is Route.DEBIT
    # JPY (0 decimals) and KWD (3 decimals) invoices are never debited: Razorpay's recurring payments are INR.
    assert route(NACH, LAKH, 5_000, "JPY", 0).route is Route.LINK
    assert "INR only" in route(CARD, LAKH, 5_000, "KWD", 0).reason
    assert cycle(date(2026, 12, 31)) == cycle(date(2026, 12, 1)) == "2026-12" != cycle(date(2027, 1, 1))


@given(st.integers(min_value=100, max_value=10 * LAKH), st.sampled_from(list(MandateMethod)))
def test_the_limit_is_a_threshold(amount, method) -> None:
    decided = route(method, 10 * LAKH, amount, "INR", 0).route
    if method is NACH:
        assert decided is Route.DEBIT
    else:
        assert (decided is Route.DEBIT) == (amount <= 1_500_000)


def test_a_debit_is_settled_once() -> None:
    assert debit_moves(DebitState.REQUESTED, DebitState.CAPTURED)
    assert debit_moves(DebitState.ORDERED, DebitState.FAILED)
    assert not debit_moves(DebitState.FAILED, DebitState.CAPTURED)
    assert not debit_moves(DebitState.CAPTURED, DebitState.FAILED)
    assert not debit_moves(DebitState.REQUESTED, DebitState.SCHEDULED)
