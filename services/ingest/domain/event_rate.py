"""How fast one project may send events: a rate with bursts, counted by GCRA (``billing_runtime/gcra.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from billing_runtime.gcra import Rate


@dataclass(frozen=True)
class EventRate:
    """``events_per_second`` sustained, ``burst`` at once from idle."""

    events_per_second: int
    burst: int

    def __post_init__(self) -> None:
        if self.events_per_second < 1 or self.burst < 1:
            raise ValueError("an event rate admits at least one event per second, one at once")

    @property
    def gcra(self) -> Rate:
        return Rate(self.burst, timedelta(seconds=self.burst / self.events_per_second))

    def describe(self) -> str:
        return f"{self.events_per_second:,} events/s with bursts of {self.burst:,}"
