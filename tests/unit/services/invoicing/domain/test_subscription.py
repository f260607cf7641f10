"""Subscription transitions (start, plan change, cancel) and the segments a billing period splits into."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.billing_period import days, period_for_key, start_of_day
from services.invoicing.domain.subscription import (
    PlanPhase,
    Segment,
    SubscriptionStatus,
    cancel,
    change_plan,
    segments,
    start,
)

KOLKATA = "Asia/Kolkata"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOV = period_for_key("2026-11", KOLKATA)  # 2026-10-31T18:30Z .. 2026-11-30T18:30Z, 30 days


def kolkata_midnight(year: int, month: int, day: int) -> datetime:
    return start_of_day(datetime(year, month, day).date(), KOLKATA)


def subscribed(starts_at: datetime = T0, anchor: int = 1):
    return start(
        subscription_id="sub_1",
        organisation_id="org_1",
        plan_version_id="pv_free",
        starts_at=starts_at,
        created_at=starts_at,
        billing_anchor_day=anchor,
    )


def test_start() -> None:
    sub = subscribed()
    assert sub.status is SubscriptionStatus.ACTIVE
    assert sub.phases == (PlanPhase("pv_free", T0, None),)
    assert sub.ends_at is None and not sub.cancel_at_period_end


def test_start_refuses_bad_input() -> None:
    with pytest.raises(InvalidArgument, match="from 1 to 28") as error:
        subscribed(anchor=29)
    assert error.value.field == "billing_anchor_day"
    with pytest.raises(InvalidArgument, match="aware"):
        subscribed(starts_at=datetime(2026, 1, 1))
    with pytest.raises(InvalidArgument, match="before the organisation was created") as error:
        start(subscription_id="s", organisation_id="o", plan_version_id="pv", starts_at=T0, created_at=T0,
              organisation_created_at=datetime(2026, 2, 1, tzinfo=UTC))
    assert error.value.field == "starts_at"


def test_whole_period_is_one_segment() -> None:
    assert segments(subscribed(), NOV) == [Segment("pv_free", NOV.start, NOV.end, 30)]


def test_plan_change_mid_period_splits_by_local_days() -> None:
    # Moved to Standard from 19 November (local): 18 days on Free (1..18), 12 on Standard (19..30).
    sub = change_plan(subscribed(), "pv_standard", kolkata_midnight(2026, 11, 19), KOLKATA)
    assert sub.phases[0].ends_at == kolkata_midnight(2026, 11, 19)
    assert sub.current_phase == PlanPhase("pv_standard", kolkata_midnight(2026, 11, 19), None)
    parts = segments(sub, NOV)
    assert [(s.plan_version_id, s.days) for s in parts] == [("pv_free", 18), ("pv_standard", 12)]
    assert parts[0].start == NOV.start and parts[0].end == parts[1].start and parts[1].end == NOV.end
    # October knows nothing of the change; December is all Standard.
    assert [s.plan_version_id for s in segments(sub, period_for_key("2026-10", KOLKATA))] == ["pv_free"]
    assert [s.plan_version_id for s in segments(sub, period_for_key("2026-12", KOLKATA))] == ["pv_standard"]


def test_plan_change_must_be_start_of_local_day() -> None:
    utc_midnight = datetime(2026, 11, 19, tzinfo=UTC)  # 05:30 in Kolkata
    with pytest.raises(InvalidArgument, match="start of a day in the organisation's time zone Asia/Kolkata"):
        change_plan(subscribed(), "pv_standard", utc_midnight, KOLKATA)


def test_plan_change_refusals() -> None:
    sub = subscribed(starts_at=kolkata_midnight(2026, 11, 10))
    with pytest.raises(InvalidArgument, match="already on"):
        change_plan(sub, "pv_free", kolkata_midnight(2026, 11, 19), KOLKATA)
    with pytest.raises(InvalidArgument, match="after the current plan version's start"):
        change_plan(sub, "pv_standard", kolkata_midnight(2026, 11, 10), KOLKATA)
    with pytest.raises(InvalidArgument, match="after the current plan version's start"):
        change_plan(sub, "pv_standard", kolkata_midnight(2026, 11, 1), KOLKATA)
    canceled = cancel(sub, at_period_end=False, now=kolkata_midnight(2026, 11, 12), time_zone=KOLKATA)
    with pytest.raises(FailedPrecondition, match="is canceled"):
        change_plan(canceled, "pv_standard", kolkata_midnight(2026, 11, 19), KOLKATA)
    ending = cancel(sub, at_period_end=True, now=kolkata_midnight(2026, 11, 12), time_zone=KOLKATA)
    with pytest.raises(FailedPrecondition, match="would come after it"):
        change_plan(ending, "pv_standard", kolkata_midnight(2026, 12, 1), KOLKATA)
    # Before the end it is still allowed.
    assert change_plan(ending, "pv_standard", kolkata_midnight(2026, 11, 20), KOLKATA).current_phase.plan_version_id \
        == "pv_standard"


def test_cancel_now_clips_and_bills_the_partial_day() -> None:
    now = kolkata_midnight(2026, 11, 12) + (datetime(2026, 1, 1, 9, tzinfo=UTC) - T0)  # 12 Nov 14:30 local
    sub = cancel(subscribed(), at_period_end=False, now=now, time_zone=KOLKATA)
    assert sub.status is SubscriptionStatus.CANCELED and sub.ends_at == now
    assert segments(sub, NOV) == [Segment("pv_free", NOV.start, now, 12)]  # 1..12 November, the 12th in full
    assert segments(sub, period_for_key("2026-12", KOLKATA)) == []
    with pytest.raises(FailedPrecondition, match="already canceled"):
        cancel(sub, at_period_end=False, now=now, time_zone=KOLKATA)


def test_cancel_at_period_end_keeps_the_period() -> None:
    sub = cancel(subscribed(anchor=15), at_period_end=True, now=datetime(2026, 11, 20, tzinfo=UTC), time_zone="UTC")
    assert sub.status is SubscriptionStatus.ACTIVE and sub.cancel_at_period_end
    assert sub.ends_at == datetime(2026, 12, 15, tzinfo=UTC)
    assert segments(sub, period_for_key("2026-11", "UTC", 15))[0].days == 30
    assert segments(sub, period_for_key("2026-12", "UTC", 15)) == []
    with pytest.raises(FailedPrecondition, match="already set to end"):
        cancel(sub, at_period_end=True, now=datetime(2026, 11, 21, tzinfo=UTC), time_zone="UTC")
    # Cancelling now after asking for period end is allowed and ends it now.
    assert cancel(sub, at_period_end=False, now=datetime(2026, 11, 21, tzinfo=UTC), time_zone="UTC").status \
        is SubscriptionStatus.CANCELED


def test_subscription_starting_after_the_period_has_no_segment() -> None:
    assert segments(subscribed(starts_at=NOV.end), NOV) == []
    assert segments(subscribed(starts_at=kolkata_midnight(2026, 11, 21)), NOV)[0].days == 10


@given(
    st.lists(st.integers(2, 30), min_size=0, max_size=5, unique=True),
    st.sampled_from([KOLKATA, "UTC", "America/New_York"]),
)
def test_segments_tile_the_period(change_days: list[int], zone: str) -> None:
    period = period_for_key("2026-11", zone)
    sub = start(subscription_id="s", organisation_id="o", plan_version_id="pv_0", starts_at=period.start,
                created_at=period.start)
    for index, day in enumerate(sorted(change_days), start=1):
        sub = change_plan(sub, f"pv_{index}", start_of_day(datetime(2026, 11, day).date(), zone), zone)
    parts = segments(sub, period)
    assert len(parts) == len(change_days) + 1
    assert parts[0].start == period.start and parts[-1].end == period.end
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
    assert sum(s.days for s in parts) == days(period)
