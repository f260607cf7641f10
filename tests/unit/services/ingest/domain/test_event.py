"""The event rules, value by value."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain import event as rules

LIMITS = rules.EventLimits()
NOW = 1_800_000_000.0


@pytest.mark.parametrize("value", ["0", "1", "-3", "+.5", "5.", "0.25", "1e3", "1E-7", "9.99e29", "1e-18", "1.50"])
def test_finite_decimals_are_accepted(value):
    assert rules.check_value(value) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "required"),
        ("NaN", "not a finite"),
        ("-Infinity", "not a finite"),
        ("sNaN", "not a finite"),
        (" 1", "not a finite"),
        ("1\n", "not a finite"),
        ("1_000", "not a finite"),
        ("0x10", "not a finite"),
        ("1,5", "not a finite"),
        ("1e30", "too large"),
        ("-1e30", "too large"),
        ("1e-19", "more than 18 decimal places"),
        ("0.0000000000000000001", "more than 18 decimal places"),
        ("1" * 65, "not a finite"),
    ],
)
def test_what_is_not_a_bounded_finite_decimal_is_rejected(value, words):
    rejection = rules.check_value(value)
    assert rejection is not None and rejection.field == "value" and words in rejection.reason


def test_trailing_zeros_do_not_count_as_decimal_places():
    assert rules.check_value("1." + "0" * 30) is None
    assert rules.check_value("15.0e-1") is None


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e29"), max_value=Decimal("1e29"),
                   places=6))
def test_every_bounded_decimal_as_python_writes_it_is_accepted(number):
    assert rules.check_value(str(number)) is None


@pytest.mark.parametrize("metric", ["a", "api_calls", "llm.tokens", "storage-gb", "x" * 64])
def test_metric_codes(metric):
    assert rules.check_metric(metric) is None


@pytest.mark.parametrize("metric", ["", "Api", "1calls", "_x", "api calls", "x" * 65, "api\n"])
def test_bad_metric_codes(metric):
    rejection = rules.check_metric(metric)
    assert rejection is not None and rejection.field == "metric"


@pytest.mark.parametrize("event_id", ["a", "0b6c0f8e-6f2e-4f57-9a0e-2f5bd5f4a3c1", "order-42:line/3", "é" * 128])
def test_event_ids(event_id):
    assert rules.check_event_id(event_id) is None


@pytest.mark.parametrize("event_id", ["a b", "a\tb", "a\n", "\x00", "x" * 129])
def test_bad_event_ids(event_id):
    rejection = rules.check_event_id(event_id)
    assert rejection is not None and rejection.field == "event_id"


def test_the_timestamp_window_is_inclusive_at_both_ends():
    oldest = int(NOW - LIMITS.past_window.total_seconds())
    latest = int(NOW + LIMITS.future_window.total_seconds())
    assert rules.check_timestamp(oldest, NOW, LIMITS) is None
    assert rules.check_timestamp(latest, NOW, LIMITS) is None
    assert "35 days" in rules.check_timestamp(oldest - 1, NOW, LIMITS).reason
    assert "5 minutes in the future" in rules.check_timestamp(latest + 1, NOW, LIMITS).reason


def test_windows_are_described_in_the_unit_they_were_set_in():
    limits = rules.EventLimits(past_window=timedelta(hours=2), future_window=timedelta(seconds=90))
    assert "120 minutes" in rules.check_timestamp(0, NOW, limits).reason
    assert "90 seconds" in rules.check_timestamp(int(NOW) + 91, NOW, limits).reason


def test_dimension_bounds():
    assert rules.check_dimensions({f"k{i}": "v" * 256 for i in range(32)}, LIMITS) is None
    assert "at most 32" in rules.check_dimensions({f"k{i}": "v" for i in range(33)}, LIMITS).reason
    assert "at most 256" in rules.check_dimensions({"k": "v" * 257}, LIMITS).reason
    assert "1 to 64" in rules.check_dimensions({"": "v"}, LIMITS).reason
    assert "NUL" in rules.check_dimensions({"k": "a\x00"}, LIMITS).reason
    assert "NUL" in rules.check_dimensions({"\x00": "v"}, LIMITS).reason


def test_batch_size_names_the_limit():
    assert rules.check_batch_size(10_000, LIMITS) is None
    assert "at most 10000 events" in rules.check_batch_size(10_001, LIMITS)
