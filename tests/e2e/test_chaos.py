"""The bounded chaos run (``make chaos`` sends a million): 100,000 sends, a fifth of them resends of ids already
sent, through the client library and REST, while metering is SIGKILLed three times, ingest once, and NATS and
PostgreSQL are each restarted on their data directory and port. Every distinct event counts exactly once.

It runs on a fresh stack of its own (bench's ``fresh_stack``): the session's PostgreSQL and NATS are shared with
the other tests and must not be restarted under them.
"""

from __future__ import annotations

import pytest

from bench.chaos import SCHEDULE, run_chaos
from bench.stack import fresh_stack

pytestmark = pytest.mark.e2e


def test_chaos_schedule_loses_and_doubles_nothing():
    with fresh_stack(lambda message: print(f"[chaos] {message}")) as stack:
        report = run_chaos(stack, events=100_000, duplicates=0.2, rate=10_000, catch_up_timeout=60)
    print("\n".join(report.lines()))
    assert len(report.steps) == len(SCHEDULE), "a chaos step did not run"
    assert report.distinct < report.sent, "no resends were sent: the duplicate side is untested"
    assert report.rejected == 0
    assert (report.lost, report.doubled) == (0, 0)
    assert report.counted_sum == report.expected_sum  # Decimal to the last digit
    assert report.unexpected_exits == [], "a service died on its own during the chaos"
