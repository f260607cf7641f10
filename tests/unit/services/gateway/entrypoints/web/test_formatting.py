"""Amounts in the organisation's currency and locale (Indian grouping for INR, the currency's own decimals: JPY 0,
INR 2, KWD 3), times in its zone, and the meters' bands."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.gateway.entrypoints.web.formatting import Meter, Presentation, locale_of


def test_rupees_are_grouped_in_lakhs_and_crores():
    india = Presentation.of("IN", "Asia/Kolkata")
    assert india.money("123456.78", "INR") == "₹1,23,456.78"
    assert india.money("12345678.9", "INR") == "₹1,23,45,678.90"
    assert india.number("1234567.5") == "12,34,567.5"


def test_each_currency_keeps_its_own_decimals():
    assert Presentation.of("JP", "Asia/Tokyo").money("1234", "JPY") == "¥1,234"
    assert Presentation.of("KW", "Asia/Kuwait").money("1.234", "KWD").endswith("1.234")
    assert Presentation.of("US", "UTC").money("1000", "USD") == "$1,000.00"


def test_an_amount_that_is_no_number_shows_a_dash_and_unknown_places_write_plain_english():
    assert Presentation().money("", "INR") == "—"
    assert Presentation().money(None, "INR") == "—"
    assert locale_of("ZZ") == "en" and locale_of("") == "en" and locale_of("IN") == "en_IN"
    assert Presentation.of("IN", "Not/AZone").time_zone == "UTC"


def test_times_are_written_in_the_organisations_zone():
    moment = datetime(2026, 12, 5, 20, 30, tzinfo=UTC)
    assert Presentation.of("IN", "Asia/Kolkata").datetime(moment) == "6 Dec 2026, 02:00:00 IST"
    assert Presentation.of("IN", "Asia/Kolkata").date(moment) == "6 Dec 2026"
    assert Presentation.of("US", "America/New_York").date(moment) == "5 Dec 2026"


def test_meters_turn_amber_at_80_percent_and_red_at_100():
    assert Meter.of("79.99", "100").band == "ok"
    assert Meter.of("80", "100").band == "warning"
    assert Meter.of("100", "100").band == "over"
    over = Meter.of("150", "100")
    assert (over.percent_shown, over.remaining) == (100, Decimal(0))
    assert Meter.of("5", None).band == "none" and Meter.of("5", None).remaining is None


@given(st.decimals(min_value=0, max_value=10**12, places=2), st.decimals(min_value=1, max_value=10**12, places=2))
def test_a_meter_is_never_wider_than_its_bar_and_remaining_never_negative(used, limit):
    meter = Meter(used=used, limit=limit)
    assert 0 <= meter.percent_shown <= 100
    assert meter.remaining is not None and meter.remaining >= 0
    assert (meter.band == "over") == (used >= limit)


def test_a_period_shows_its_last_day_not_the_exclusive_end():
    india = Presentation.of("IN", "Asia/Kolkata")
    start, end = datetime(2026, 11, 30, 18, 30, tzinfo=UTC), datetime(2026, 12, 31, 18, 30, tzinfo=UTC)
    assert india.period(start, end) == "1 Dec 2026 – 31 Dec 2026"
