"""The quota decision: its rules as properties over generated usage, and the exact boundaries as examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.metering.domain.plan_in_force import Cap, PlanInForce, QuotaTerms
from services.metering.domain.quota import MAX_MESSAGE_LENGTH, QuotaReason, decide

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def plan(*quotas: QuotaTerms, found: bool = True) -> PlanInForce:
    return PlanInForce(
        organisation_id="org_1", currency="INR", timezone="UTC", found=found, period_start=START, period_end=END,
        valid_until=END, subscription_id="sub_1" if found else "", plan_code="standard" if found else "",
        plan_version=2 if found else 0, quotas={q.metric_code: q for q in quotas},
    )


def hard(limit: str, grace_percent: str = "0", grace_hours: int = 0) -> QuotaTerms:
    return QuotaTerms("api.calls", Decimal(limit), Cap.HARD, Decimal(grace_percent), grace_hours)


def soft(limit: str) -> QuotaTerms:
    return QuotaTerms("api.calls", Decimal(limit), Cap.SOFT)


amounts = st.decimals(min_value=0, max_value=10**12, places=6, allow_nan=False, allow_infinity=False)
limits = st.decimals(min_value=Decimal("0.000001"), max_value=10**12, places=6, allow_nan=False,
                     allow_infinity=False)
percents = st.decimals(min_value=Decimal("0.01"), max_value=100, places=2, allow_nan=False, allow_infinity=False)
moments = st.datetimes(min_value=START.replace(tzinfo=None), max_value=(END - timedelta(microseconds=1)).replace(
    tzinfo=None), timezones=st.just(UTC))


# -- properties ---------------------------------------------------------------------------------------------------

@given(limit=limits, used=amounts, quantity=amounts, now=moments)
def test_a_hard_cap_without_grace_allows_exactly_what_fits(limit, used, quantity, now):
    decision = decide(plan(hard(str(limit))), "api.calls", used, quantity, now, None)
    assert decision.allowed == (used + quantity <= limit)
    assert decision.reason is (QuotaReason.WITHIN_LIMIT if decision.allowed else QuotaReason.OVER_HARD_CAP)
    assert decision.remaining == max(limit - used, Decimal(0))
    assert decision.grace_limit is None


@given(limit=limits, used=amounts, quantity=amounts, now=moments)
def test_a_soft_cap_always_allows_and_says_when_over(limit, used, quantity, now):
    decision = decide(plan(soft(str(limit))), "api.calls", used, quantity, now, None)
    assert decision.allowed
    over = used + quantity > limit
    assert decision.reason is (QuotaReason.OVER_SOFT_CAP if over else QuotaReason.WITHIN_LIMIT)
    assert decision.cap is Cap.SOFT


@given(limit=limits, percent=percents, hours=st.integers(0, 24 * 40), used=amounts, quantity=amounts, now=moments,
       first_over=st.one_of(st.none(), moments))
def test_grace_allows_up_to_the_grace_limit_until_the_grace_ends(limit, percent, hours, used, quantity, now,
                                                                  first_over):
    terms = hard(str(limit), str(percent), hours)
    decision = decide(plan(terms), "api.calls", used, quantity, now, first_over)
    after = used + quantity
    grace = limit * (1 + percent / 100)
    start = first_over or now
    ends = END if hours == 0 else min(start + timedelta(hours=hours), END)
    if after <= limit:
        expected = QuotaReason.WITHIN_LIMIT
    elif after > grace:
        expected = QuotaReason.OVER_HARD_CAP
    elif now < ends:
        expected = QuotaReason.WITHIN_GRACE
    else:
        expected = QuotaReason.GRACE_EXPIRED
    assert decision.reason is expected
    assert decision.allowed == (expected in (QuotaReason.WITHIN_LIMIT, QuotaReason.WITHIN_GRACE))
    assert decision.grace_limit == grace
    if first_over is not None or after > limit:
        assert decision.grace_end == ends
    else:
        assert decision.grace_end is None


@given(used=amounts, quantity=amounts, now=moments)
def test_without_a_quota_or_a_subscription_everything_is_allowed(used, quantity, now):
    no_quota = decide(plan(hard("1", "10", 1)), "other.metric", used, quantity, now, None)
    assert (no_quota.allowed, no_quota.reason, no_quota.limit) == (True, QuotaReason.NO_QUOTA, None)
    unsubscribed = decide(plan(hard("1"), found=False), "api.calls", used, quantity, now, None)
    assert (unsubscribed.allowed, unsubscribed.reason) == (True, QuotaReason.NO_SUBSCRIPTION)


@given(code=st.from_regex(r"[a-z][a-z0-9_.-]{0,63}", fullmatch=True), used=st.decimals(
    min_value=0, max_value=Decimal("9" * 30), places=18, allow_nan=False, allow_infinity=False))
def test_the_message_is_bounded_whatever_the_values(code, used):
    terms = QuotaTerms(code, Decimal("9" * 29), Cap.HARD, Decimal("99.99"), 1)
    decision = decide(plan(terms), code, used, Decimal("1e29"), NOW, NOW)
    assert len(decision.message) <= MAX_MESSAGE_LENGTH


def test_sums_of_large_values_are_exact_not_rounded_to_28_digits():
    limit = Decimal("100000000000000000000000000000")  # 1e29, 30 digits
    decision = decide(plan(hard(str(limit))), "api.calls", limit - Decimal("0.000000000000000001"),
                      Decimal("0.000000000000000002"), NOW, None)
    assert decision.reason is QuotaReason.OVER_HARD_CAP


# -- the boundaries ----------------------------------------------------------------------------------------------

def test_exactly_at_the_limit_is_allowed_and_one_unit_over_is_denied():
    at = decide(plan(hard("1000")), "api.calls", Decimal(999), Decimal(1), NOW, None)
    assert (at.allowed, at.reason, at.remaining) == (True, QuotaReason.WITHIN_LIMIT, Decimal(1))
    over = decide(plan(hard("1000")), "api.calls", Decimal(1000), Decimal(1), NOW, None)
    assert (over.allowed, over.reason, over.remaining) == (False, QuotaReason.OVER_HARD_CAP, Decimal(0))
    assert over.message == (
        "hard cap of 1000 api.calls per period on plan standard (v2) reached: 1000 used; "
        "resets 2026-04-01T00:00:00Z"
    )


def test_a_quantity_of_zero_asks_whether_usage_is_still_within_the_limit():
    assert decide(plan(hard("1000")), "api.calls", Decimal(1000), Decimal(0), NOW, None).allowed
    assert not decide(plan(hard("1000")), "api.calls", Decimal(1001), Decimal(0), NOW, None).allowed


def test_grace_up_to_its_limit_then_denied():
    terms = hard("1000", "10", 24)
    within = decide(plan(terms), "api.calls", Decimal(1099), Decimal(1), NOW, NOW - timedelta(hours=1))
    assert (within.allowed, within.reason, within.grace_limit) == (True, QuotaReason.WITHIN_GRACE, Decimal(1100))
    assert within.grace_end == NOW + timedelta(hours=23)
    beyond = decide(plan(terms), "api.calls", Decimal(1100), Decimal(1), NOW, NOW - timedelta(hours=1))
    assert (beyond.allowed, beyond.reason) == (False, QuotaReason.OVER_HARD_CAP)


def test_grace_ends_exactly_grace_hours_after_usage_first_went_over():
    terms = hard("1000", "10", 24)
    first_over = NOW - timedelta(hours=24)
    expired = decide(plan(terms), "api.calls", Decimal(1050), Decimal(1), NOW, first_over)
    assert (expired.allowed, expired.reason, expired.grace_end) == (False, QuotaReason.GRACE_EXPIRED, NOW)
    just_before = decide(plan(terms), "api.calls", Decimal(1050), Decimal(1), NOW - timedelta(microseconds=1),
                         first_over)
    assert just_before.reason is QuotaReason.WITHIN_GRACE


def test_grace_of_zero_hours_lasts_the_rest_of_the_period():
    decision = decide(plan(hard("1000", "50", 0)), "api.calls", Decimal(1400), Decimal(1),
                      END - timedelta(seconds=1), START)
    assert (decision.reason, decision.grace_end) == (QuotaReason.WITHIN_GRACE, END)


def test_first_going_over_starts_the_grace_now():
    decision = decide(plan(hard("1000", "10", 2)), "api.calls", Decimal(1000), Decimal(5), NOW, None)
    assert (decision.reason, decision.grace_end) == (QuotaReason.WITHIN_GRACE, NOW + timedelta(hours=2))
