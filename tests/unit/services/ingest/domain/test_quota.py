"""Quota rules ingest applies: the ceiling (with grace), a window's arithmetic, and the RateLimit fields."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.quota import (
    Measure,
    QuotaReport,
    QuotaWindow,
    enforcement_ceiling,
    ratelimit_fields,
    window_bounds,
)

NOW = 1_800_000_000


def ceiling(**overrides):
    values = dict(hard=True, enforced_at_ingest=True, limit=Decimal(100), grace_limit=None, grace_end_seconds=None,
                  now_seconds=NOW)
    return enforcement_ceiling(**{**values, **overrides})


def test_only_hard_caps_enforced_at_ingest_have_a_ceiling():
    assert ceiling() == Decimal(100)
    assert ceiling(hard=False) is None
    assert ceiling(enforced_at_ingest=False) is None
    assert ceiling(limit=None) is None


def test_grace_raises_the_ceiling_until_it_ends():
    assert ceiling(grace_limit=Decimal(120)) == Decimal(120)  # not started yet: it lies ahead
    assert ceiling(grace_limit=Decimal(120), grace_end_seconds=NOW + 1) == Decimal(120)
    assert ceiling(grace_limit=Decimal(120), grace_end_seconds=NOW) == Decimal(100)


@given(st.integers(0, 1000), st.integers(0, 1000), st.lists(st.integers(0, 50), max_size=30))
def test_a_window_admits_in_order_exactly_what_fits(used, limit, amounts):
    window = QuotaWindow("m", 0, 10, Decimal(used), Decimal(limit), Decimal(limit), "hard")
    admitted = []
    for amount in amounts:
        if window.take(Decimal(amount), Measure.SUM, at=0):
            admitted.append(amount)
    assert used + sum(admitted) <= max(limit, used) or not admitted
    total = used
    for amount in amounts:  # the same walk, by hand
        if total + amount <= limit:
            total += amount
    assert window.used + window.admitted == total


def test_a_window_without_a_period_covers_all_time():
    start, reset = window_bounds(None, None)
    assert start < -(10**15) and reset > 10**15
    assert window_bounds(10, 20) == (10, 20)


def test_ratelimit_fields_are_structured_field_lists_with_integers():
    reports = [
        QuotaReport("api_calls", Decimal(1000), 2_592_000, 250, 86_400),
        QuotaReport("gb.stored", Decimal("10.5"), 2_592_000, 3, 0),
    ]
    policy, current = ratelimit_fields(reports)
    assert policy == '"api_calls";q=1000;w=2592000, "gb.stored";q=10;w=2592000'
    assert current == '"api_calls";r=250;t=86400, "gb.stored";r=3;t=0'


def test_reports_round_the_remainder_down():
    window = QuotaWindow("m", 0, 100, Decimal("2.5"), Decimal(10), None, "soft")
    report = window.report(now_seconds=40)
    assert report is not None and (report.remaining, report.reset_seconds, report.window_seconds) == (7, 60, 100)


def test_a_newer_answer_carries_what_was_admitted_since_shortly_before_its_read():
    older = QuotaWindow("m", 0, 100, Decimal(0), Decimal(10), Decimal(10), "hard")
    for at in (10.0, 19.5, 20.5):
        assert older.take(Decimal(1), Measure.SUM, at)
    newer = QuotaWindow("m", 0, 100, Decimal(1), Decimal(10), Decimal(10), "hard", usage_time=20.0)
    newer.carry_from(older, lag_seconds=1.0)
    # Metering grew by 1: the oldest admission. 19.5 (maybe not metered yet) and 20.5 (after the read) still count.
    assert newer.admitted == 2
    unknown = QuotaWindow("m", 0, 100, Decimal(1), Decimal(10), Decimal(10), "hard")
    unknown.carry_from(older, lag_seconds=1.0)
    assert unknown.admitted == 0


def test_an_admission_metering_has_counted_is_not_counted_again_so_the_last_unit_fits():
    """Nine used of ten: the ninth was admitted here, then metered; the newer answer (9 used) includes it, and the
    tenth event still fits exactly at the limit. One more is refused."""
    older = QuotaWindow("m", 0, 100, Decimal(8), Decimal(10), Decimal(10), "hard", usage_time=49.0)
    assert older.take(Decimal(1), Measure.SUM, 50.0)
    newer = QuotaWindow("m", 0, 100, Decimal(9), Decimal(10), Decimal(10), "hard", usage_time=50.3)
    newer.carry_from(older, lag_seconds=1.0)
    assert newer.admitted == 0
    assert newer.take(Decimal(1), Measure.SUM, 50.4)
    assert not newer.take(Decimal(1), Measure.SUM, 50.5)


def test_growth_covers_admissions_oldest_first_and_partly():
    older = QuotaWindow("m", 0, 100, Decimal(0), Decimal(100), Decimal(100), "hard", usage_time=9.0)
    for at, amount in ((10.0, 3), (10.5, 5)):
        assert older.take(Decimal(amount), Measure.SUM, at)
    newer = QuotaWindow("m", 0, 100, Decimal(4), Decimal(100), Decimal(100), "hard", usage_time=10.8)
    newer.carry_from(older, lag_seconds=1.0)
    assert newer.recent == [(10.5, Decimal(4))] and newer.admitted == 4  # 3 + 1 of the 5 were metered
