from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.metering.domain.event_retention import (
    add_months,
    archivable,
    archivable_months,
    months_to_create,
    partition_month,
    partition_name,
)

NOW = datetime(2026, 6, 20, 12, tzinfo=UTC)


def m(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def test_names_round_trip() -> None:
    assert partition_name(m(2026, 1)) == "events_2026_01"
    assert partition_month("events_2026_01") == m(2026, 1)
    assert partition_month("events_default") is None


def test_age_and_horizon_both_needed() -> None:
    assert archivable(m(2026, 3), NOW, 62, None)  # ends 04-01, 80 days before
    assert not archivable(m(2026, 4), NOW, 62, None)  # ends 05-01, 50 days before
    assert not archivable(m(2026, 3), NOW, 62, m(2026, 3))  # March still open
    assert archivable_months({m(2026, 1), m(2026, 2), m(2026, 3), m(2026, 5)}, NOW, 62, m(2026, 3)) == [
        m(2026, 1), m(2026, 2)]


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
       st.integers(min_value=42, max_value=400))
def test_created_months_cover_the_window_and_are_never_archivable(now: datetime, min_age: int) -> None:
    months = months_to_create(now, min_age)
    assert months[0] <= now - timedelta(days=35) < add_months(months[-1], 1)
    assert add_months(months[-1], 1) > now + timedelta(days=31)
    assert not any(archivable(month, now, min_age, None) for month in months)
