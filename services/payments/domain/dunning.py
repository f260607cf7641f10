"""Dunning: what happens to an issued invoice that is not paid by its due date.

Once the due date has passed unpaid the invoice is **overdue** (announced once). Then retries follow the
policy's schedule, each counted from the due date: either explicit days (``[1, 3, 7]``: one, three and seven
days after it) or exponential backoff (``base * factor**n``, capped), up to ``max_attempts``. Each attempt
makes a fresh way to pay (a payment link) and announces it, so the customer is emailed. When the last attempt
has had its time (one more step of the schedule) and the invoice is still unpaid, it is **uncollectible**.
A payment stops the schedule at once.

Kept apart, as Kill Bill does: a customer's **decline** (payment.failed) changes nothing here, it is what the
schedule is for; a **provider error** while making an attempt's link is retried quickly with backoff and does
not count as an attempt; an attempt whose outcome is **unknown** is settled by looking the link up by its
reference, never by making another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from billing_runtime.errors import InvalidArgument

MAX_ATTEMPTS = 20
MAX_DELAY = timedelta(days=120)


class DunningState(enum.StrEnum):
    # Not due yet.
    SCHEDULED = "scheduled"
    # Overdue; attempts follow the schedule.
    RETRYING = "retrying"
    # Paid (or voided): nothing more happens.
    STOPPED = "stopped"
    # The last attempt passed unpaid.
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class DunningPolicy:
    """When to retry after the due date. ``retry_days`` wins over the backoff fields when given."""

    max_attempts: int = 3
    retry_days: tuple[int, ...] = ()
    base: timedelta = timedelta(days=1)
    factor: float = 2.0
    cap: timedelta = timedelta(days=14)

    def __post_init__(self) -> None:
        if not 0 <= self.max_attempts <= MAX_ATTEMPTS:
            raise InvalidArgument(f"must be between 0 and {MAX_ATTEMPTS}", field="max_attempts")
        if self.retry_days:
            if len(self.retry_days) != self.max_attempts:
                raise InvalidArgument("must give one day per attempt (as many as max_attempts)", field="retry_days")
            if any(d < 0 or d > MAX_DELAY.days for d in self.retry_days) or list(self.retry_days) != sorted(
                    set(self.retry_days)):
                raise InvalidArgument(f"must be increasing days after the due date, at most {MAX_DELAY.days}",
                                      field="retry_days")
        if not timedelta(minutes=1) <= self.base <= MAX_DELAY:
            raise InvalidArgument("must be between a minute and 120 days", field="base_seconds")
        if not 1.0 <= self.factor <= 10.0:
            raise InvalidArgument("must be between 1 and 10", field="factor")
        if not self.base <= self.cap <= MAX_DELAY:
            raise InvalidArgument("must be at least the base and at most 120 days", field="cap_seconds")

    def offset(self, attempt: int) -> timedelta:
        """How long after the due moment attempt ``attempt`` (1-based) is made; attempt max_attempts + 1 is when
        the invoice is given up."""
        if self.retry_days:
            if attempt <= len(self.retry_days):
                return timedelta(days=self.retry_days[attempt - 1])
            last = self.retry_days[-1] if self.retry_days else 0
            gap = last - (self.retry_days[-2] if len(self.retry_days) > 1 else 0)
            return timedelta(days=last + max(gap, 1))
        total = timedelta(0)
        for n in range(attempt):
            # Capped before it becomes a timedelta: factor**n overflows one long before it overflows a float.
            total += timedelta(seconds=min(self.base.total_seconds() * self.factor**n, self.cap.total_seconds()))
        return total

    def record(self) -> dict[str, object]:
        return {"max_attempts": self.max_attempts, "retry_days": list(self.retry_days),
                "base_seconds": self.base.total_seconds(), "factor": self.factor,
                "cap_seconds": self.cap.total_seconds()}

    @classmethod
    def from_record(cls, record: dict[str, object]) -> DunningPolicy:
        return cls(max_attempts=int(record["max_attempts"]),  # type: ignore[arg-type]
                   retry_days=tuple(int(d) for d in record.get("retry_days") or ()),  # type: ignore[union-attr]
                   base=timedelta(seconds=float(record["base_seconds"])),  # type: ignore[arg-type]
                   factor=float(record["factor"]),  # type: ignore[arg-type]
                   cap=timedelta(seconds=float(record["cap_seconds"])))  # type: ignore[arg-type]


def due_moment(due_date: date, zone: str) -> datetime:
    """The end of the due date in the supplier's zone: an invoice due on the 20th is overdue from the 21st."""
    return datetime.combine(due_date + timedelta(days=1), time(0), ZoneInfo(zone))


class Step(enum.StrEnum):
    OVERDUE = "overdue"
    ATTEMPT = "attempt"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Dunning:
    """One invoice's dunning, as stored."""

    invoice_id: str
    policy: DunningPolicy
    due_at: datetime
    state: DunningState = DunningState.SCHEDULED
    attempts: int = 0
    next_at: datetime | None = None
    reason: str = ""

    def next_step(self) -> Step:
        if self.state is DunningState.SCHEDULED:
            return Step.OVERDUE
        if self.attempts < self.policy.max_attempts:
            return Step.ATTEMPT
        return Step.GIVE_UP

    def after(self, step: Step) -> Dunning:
        """The dunning once ``step`` is done: its new state, attempt count and next due time."""
        if step is Step.OVERDUE:
            return self._at(DunningState.RETRYING, 0)
        if step is Step.ATTEMPT:
            return self._at(DunningState.RETRYING, self.attempts + 1)
        return Dunning(self.invoice_id, self.policy, self.due_at, DunningState.EXHAUSTED, self.attempts, None,
                       "the last attempt passed unpaid")

    def _at(self, state: DunningState, attempts: int) -> Dunning:
        return Dunning(self.invoice_id, self.policy, self.due_at, state, attempts,
                       self.due_at + self.policy.offset(attempts + 1))
