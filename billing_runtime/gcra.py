"""Rate limits as the generic cell rate algorithm (GCRA): pure arithmetic on one timestamp per key, no I/O.

A :class:`Rate` of ``limit`` per ``period`` admits ``limit`` requests back to back from idle, then one every
``interval`` (``period / limit``, rounded down to the microsecond, at least 1 µs). The state of a key is its
*theoretical arrival time* (TAT): when the key will be idle again. A request at ``now`` is admitted when
``max(tat, now) + interval - now <= window`` (``window = limit * interval``), and then moves the TAT to
``max(tat, now) + interval``; a refused request changes nothing. So, whatever the arrival pattern:

- a fresh (or idle) key admits exactly ``limit`` requests at once, and refuses the next;
- in any time window of length ``w``, at most ``limit + w // interval`` requests are admitted (``limit`` in any
  window shorter than ``interval``; 30 per minute admits 30 at once, then one every 2 s);
- a refused request's ``retry_after`` is exact: at ``now + retry_after`` the next request is admitted.

The PostgreSQL store runs :func:`check` as one atomic statement (``billing_runtime/rate_limit_store.py``); the
in-memory fake of the unit tests runs it as written here.

Weighted requests (:func:`take`: a batch of events costs one per event) move the TAT by ``cost * interval``, and
may take more than they need at once (a lease a process spends locally, so a stream of batches costs one shared
check per lease, not one per batch).

Login failures (:func:`fail`) use the same TAT, plus a count of lockouts (``strikes``) for exponential backoff:
once ``limit`` failures fill the window, the key is locked out for ``interval``, then twice that after the next
failure, and so on up to ``max_backoff``; a key that has drained completely (TAT in the past) starts over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

_ZERO = timedelta(0)


@dataclass(frozen=True)
class Rate:
    """``limit`` admitted per ``period`` (``limit`` of them at once from idle)."""

    limit: int
    period: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a rate admits at least 1 per period")
        if self.period <= _ZERO:
            raise ValueError("a rate's period is positive")

    @property
    def interval(self) -> timedelta:
        """The emission interval: one more is admitted every ``interval`` once the burst is spent."""
        return max(self.period // self.limit, timedelta(microseconds=1))

    @property
    def window(self) -> timedelta:
        """How far ahead of now the TAT may be after an admission (the burst tolerance plus one interval)."""
        return self.interval * self.limit


@dataclass(frozen=True)
class Decision:
    """The answer to one request: whether it is admitted, the key's TAT afterwards, and the IETF fields' numbers."""

    allowed: bool
    tat: datetime
    retry_after: timedelta  # zero when allowed
    remaining: int  # admitted back to back after this one
    reset: timedelta  # until the key is idle (everything available again)

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` in whole seconds, rounded up (at least 1 when refused)."""
        return max(1, math.ceil(self.retry_after.total_seconds())) if not self.allowed else 0


def _remaining(rate: Rate, tat: datetime, now: datetime) -> int:
    return max(0, (rate.window - max(tat - now, _ZERO)) // rate.interval)


def admitted(rate: Rate, tat: datetime, now: datetime) -> Decision:
    """The decision of an admitted request that moved the key's TAT to ``tat``."""
    return Decision(True, tat, _ZERO, _remaining(rate, tat, now), max(tat - now, _ZERO))


def refused(rate: Rate, tat: datetime | None, now: datetime) -> Decision:
    """The decision of a refused request while the key's TAT is ``tat``: retry when one more fits."""
    current = now if tat is None or tat < now else tat
    retry = max(current + rate.interval - rate.window - now, timedelta(microseconds=1))
    return Decision(False, current, retry, 0, current - now)


def peek(rate: Rate, tat: datetime | None, now: datetime) -> Decision:
    """Would a request at ``now`` be admitted? Changes nothing (the returned TAT is the current one)."""
    current = now if tat is None or tat < now else tat
    if current + rate.interval - now <= rate.window:
        return admitted(rate, current, now)
    return refused(rate, current, now)


def check(rate: Rate, tat: datetime | None, now: datetime) -> Decision:
    """Admit a request at ``now`` or not. The returned TAT is the key's new state (unchanged when refused)."""
    current = now if tat is None or tat < now else tat
    after = current + rate.interval
    if after - now <= rate.window:
        return admitted(rate, after, now)
    return refused(rate, current, now)


@dataclass(frozen=True)
class Grant:
    """The answer to :func:`take`: how many units were granted (0: refused), the key's TAT afterwards, and when
    to retry a refused request."""

    granted: int
    tat: datetime
    retry_after: timedelta  # zero when granted

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` in whole seconds, rounded up (at least 1 when refused)."""
        return max(1, math.ceil(self.retry_after.total_seconds())) if not self.granted else 0


def take(rate: Rate, tat: datetime | None, now: datetime, need: int, want: int | None = None) -> Grant:
    """Take at least ``need`` units at ``now`` (and up to ``want``, as many as fit) or none.

    ``need`` units fit when ``need * interval`` more stays within the window; a refused request changes nothing
    and is told when ``need`` will fit. A request larger than the whole burst (``need > limit``) could never
    fit: it is granted when the key is idle, and the TAT moves ``need`` intervals ahead, so what follows waits
    until it has been paid for at the rate (over any long stretch, the rate still holds).
    """
    if need < 1:
        raise ValueError("take at least one unit")
    want = max(need, want or need)
    current = now if tat is None or tat < now else tat
    free = (rate.window - (current - now)) // rate.interval
    if free >= need:
        granted = min(want, free)
    elif need > rate.limit and current == now:
        granted = need
    else:
        ready = current - now if need > rate.limit else current + rate.interval * need - rate.window - now
        return Grant(0, current, max(ready, timedelta(microseconds=1)))
    return Grant(granted, current + rate.interval * granted, _ZERO)


@dataclass(frozen=True)
class Backoff:
    """A login key's state: the GCRA TAT and how many lockouts in a row it has earned."""

    tat: datetime
    strikes: int = 0


def fail(rate: Rate, state: Backoff | None, now: datetime, max_backoff: timedelta) -> Backoff:
    """Charge a failure (always: a failure is a fact, not a request). Filling the window locks the key out for
    ``interval * 2 ** (strikes - 1)``, at most ``max_backoff``."""
    if state is None or state.tat <= now:
        tat, strikes = now, 0  # idle again: forgiven
    else:
        tat, strikes = state.tat, state.strikes
    tat += rate.interval
    if tat - now > rate.window - rate.interval:  # the next failure would not fit: locked out
        strikes += 1
        lockout = min(rate.interval * 2 ** min(strikes - 1, 40), max(max_backoff, rate.interval))
        tat = max(tat, now + rate.window - rate.interval + lockout)
    return Backoff(tat, strikes)
