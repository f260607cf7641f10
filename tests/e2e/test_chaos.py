"""The bounded chaos run (``make chaos`` sends a million): 100,000 sends, a fifth of them resends of ids already
sent, through the client library and REST, while metering is SIGKILLed three times, ingest once, and NATS and
PostgreSQL are each restarted on their data directory and port. Every distinct event counts exactly once.

It runs ``python -m bench.chaos`` as ``make chaos`` does, in a process of its own on a fresh stack of its own: the
session's PostgreSQL and NATS are shared with the other tests and must not be restarted under them, and a process
whose gRPC threads are busy must not be the one that forks PostgreSQL (see the top of bench/chaos.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos import SCHEDULE

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


def figure(output: str, name: str) -> int:
    match = re.search(rf"^{name}\s+([\d,]+)", output, re.MULTILINE)
    assert match, f"no {name!r} line in the report:\n{output[-3000:]}"
    return int(match.group(1).replace(",", ""))


def test_chaos_schedule_loses_and_doubles_nothing():
    run = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--events", "100000", "--duplicates", "0.2", "--rate", "10000"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    output = run.stdout + run.stderr
    print(output[-4000:])
    assert run.returncode == 0, f"chaos run failed:\n{output[-4000:]}"
    sent, distinct = figure(output, "sent"), figure(output, "distinct")
    assert sent == 100_000 and 70_000 < distinct < 90_000  # about a fifth resent: the duplicate side was exercised
    assert figure(output, "counted") == distinct
    assert (figure(output, "lost"), figure(output, "doubled")) == (0, 0)
    steps = re.search(r"^chaos: (.*)$", output, re.MULTILINE)
    assert steps and steps.group(1).count(";") == len(SCHEDULE) - 1, "a chaos step did not run"
    assert "restarts after an unplanned exit 0" in output, "a service died on its own during the chaos"
