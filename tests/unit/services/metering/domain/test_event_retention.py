from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.metering.domain.event_retention import (
    DEDUPLICATION_WINDOW,
    MIN_RETENTION_AGE_DAYS,
    add_months,
    archivable,
    archivable_months,
    archive_name,
    day_slices,
    months_from,
)

NOW = datetime(2026, 6, 20, 12, tzinfo=UTC)
instants = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


def m(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def test_archive_names() -> None:
    assert archive_name(m(2026, 1)) == "events_2026_01"
    assert archive_name(m(2025, 12)) == "events_2025_12"


def test_age_and_horizon_both_needed() -> None:
    assert archivable(m(2026, 3), NOW, 62, None)  # ends 04-01, 80 days before
    assert not archivable(m(2026, 4), NOW, 62, None)  # ends 05-01, 50 days before
    assert not archivable(m(2026, 3), NOW, 62, m(2026, 3))  # March still open
    assert archivable_months({m(2026, 1), m(2026, 2), m(2026, 3), m(2026, 5)}, NOW, 62, m(2026, 3)) == [
        m(2026, 1), m(2026, 2)]


def test_months_from_first_to_the_last_ended() -> None:
    assert months_from(datetime(2025, 11, 17, tzinfo=UTC), m(2026, 2)) == [m(2025, 11), m(2025, 12), m(2026, 1)]
    assert months_from(m(2026, 2), datetime(2026, 2, 27, tzinfo=UTC)) == []


@given(instants, st.integers(min_value=MIN_RETENTION_AGE_DAYS, max_value=400), st.one_of(st.none(), instants))
def test_an_archivable_month_is_older_than_anything_ingest_still_accepts(
    now: datetime, min_age: int, horizon: datetime | None
) -> None:
    """Rows of an archived month never reappear: ingest refuses events older than the window."""
    for month in months_from(now - timedelta(days=min_age + 400), now):
        if archivable(month, now, min_age, horizon):
            assert add_months(month, 1) < now - DEDUPLICATION_WINDOW
            assert horizon is None or add_months(month, 1) <= horizon


@given(instants)
def test_day_slices_cover_the_month_exactly(instant: datetime) -> None:
    month = instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    slices = day_slices(month)
    assert slices[0][0] == month and slices[-1][1] == add_months(month, 1)
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))
    assert 28 <= len(slices) <= 31
