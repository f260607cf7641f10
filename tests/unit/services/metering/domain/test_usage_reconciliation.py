"""The pure part of usage reconciliation: which aggregates differ, missing events per (project, hour), the cap on
stored discrepancies, and the windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.metering.domain.usage_reconciliation import (
    MAX_STORED_DISCREPANCIES,
    Aggregate,
    DiscrepancyKind,
    Findings,
    HourCount,
    ReconciliationStatus,
    Window,
    check_window,
    compare_aggregates,
    hour_of,
    previous_hour,
)

T = datetime(2026, 3, 1, 10, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)

aggregates = st.builds(
    Aggregate,
    st.integers(1, 10),
    st.decimals(-100, 100, places=2),
    st.decimals(-100, 100, places=2),
    st.decimals(-100, 100, places=2),
)
keys = st.tuples(st.sampled_from(["org_a", "org_b"]), st.sampled_from(["m1", "m2"]),
                 st.sampled_from([T, T + timedelta(minutes=15)]), st.sampled_from(["p1", "p2"]))
tables = st.dictionaries(keys, aggregates, max_size=8)


@given(tables)
def test_a_table_equal_to_its_recomputation_has_no_discrepancy(table) -> None:
    assert compare_aggregates(DiscrepancyKind.BUCKET_MISMATCH, table, dict(table)) == []


@given(tables, tables)
def test_exactly_the_keys_that_differ_or_exist_on_one_side_are_reported(expected, found) -> None:
    reported = compare_aggregates(DiscrepancyKind.BUCKET_MISMATCH, expected, found)
    differing = {k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)}
    assert [(d.organisation_id, d.metric, d.period_start, d.project_id) for d in reported] == sorted(differing)
    for d in reported:
        key = (d.organisation_id, d.metric, d.period_start, d.project_id)
        assert (d.expected == "none") == (key not in expected)
        assert (d.found == "none") == (key not in found)


def test_values_compare_as_numbers_and_print_normalised() -> None:
    key = ("org", "m", T, "p")
    assert compare_aggregates(
        DiscrepancyKind.DAY_MISMATCH,
        {key: Aggregate(2, Decimal("3.5"), Decimal("1"), Decimal("2.5"))},
        {key: Aggregate(2, Decimal("3.50"), Decimal("1.0"), Decimal("2.500"))},
    ) == []
    [d] = compare_aggregates(
        DiscrepancyKind.DAY_MISMATCH,
        {key: Aggregate(2, Decimal("3.50"), Decimal("1.0"), Decimal("2.50"))},
        {key: Aggregate(3, Decimal("4.50"), Decimal("1.0"), Decimal("2.50"))},
    )
    assert (d.kind, d.expected, d.found) == (
        DiscrepancyKind.DAY_MISMATCH, "count=2 sum=3.5 min=1 max=2.5", "count=3 sum=4.5 min=1 max=2.5"
    )


def test_only_hours_with_missing_events_are_discrepancies_and_totals_count_all() -> None:
    findings = Findings()
    findings.add_counts([
        HourCount("org", "p1", T, 5, 5),
        HourCount("org", "p1", T + timedelta(hours=1), 3, 1, ("e1", "e2")),
    ])
    assert (findings.totals.accepted, findings.totals.stored, findings.totals.missing) == (8, 6, 2)
    [d] = findings.discrepancies
    assert (d.kind, d.period_start, d.expected, d.found, d.detail) == (
        DiscrepancyKind.MISSING_EVENTS, T + timedelta(hours=1), "3", "1", "missing e.g. e1, e2"
    )
    assert findings.status is ReconciliationStatus.DISCREPANCIES
    assert Findings().status is ReconciliationStatus.CLEAN


def test_stored_discrepancies_are_capped_but_all_are_counted() -> None:
    findings = Findings()
    many = {("org", "m", T + timedelta(minutes=15 * n), "p"): Aggregate(1, Decimal(n), Decimal(n), Decimal(n))
            for n in range(MAX_STORED_DISCREPANCIES + 5)}
    findings.add_aggregates(compare_aggregates(DiscrepancyKind.BUCKET_MISMATCH, many, {}))
    findings.add_counts([HourCount("org", "p", T, 2, 1)])
    assert len(findings.discrepancies) == MAX_STORED_DISCREPANCIES
    assert findings.totals.discrepancies == MAX_STORED_DISCREPANCIES + 6
    assert findings.totals.aggregate_mismatches == MAX_STORED_DISCREPANCIES + 5


def test_windows() -> None:
    assert previous_hour(NOW) == Window(datetime(2026, 3, 2, 11, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert previous_hour(NOW, timedelta(minutes=10)).end == datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert check_window(T, T + timedelta(hours=24), NOW) == Window(T, T + timedelta(hours=24))
    for start, end, field in [
        (None, T, "start_time"), (T, None, "end_time"), (T, T, "end_time"),
        (T, T + timedelta(hours=24, seconds=1), "end_time"), (NOW, NOW + timedelta(seconds=1), "end_time"),
    ]:
        with pytest.raises(InvalidArgument) as error:
            check_window(start, end, NOW)
        assert error.value.field == field
    assert hour_of(3_600_000_000 * 5 + 17) == 3_600_000_000 * 5
