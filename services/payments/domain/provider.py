"""What a call to the payment provider can end in, and what each outcome allows us to do next.

Kill Bill's distinction, kept here: a **rejection** (4xx: the provider understood and refused) is final for
that request; an **outage** (5xx, connection refused) means nothing was done, so the same request is retried
soon with backoff; an **unknown** outcome (a timeout after the request left) may or may not have taken
effect, so it is settled by asking the provider what exists (fetch by id or receipt), never by doing it again
blindly.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from datetime import timedelta


class FailureKind(enum.StrEnum):
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


@dataclass
class ProviderFailure(Exception):
    """A failed provider call, with the HTTP status and Razorpay's error fields as given. (Not frozen: an
    exception must stay copyable and picklable.)"""

    kind: FailureKind
    http_status: int = 0
    code: str = ""
    description: str = ""
    field: str = ""
    reason: str = ""
    source: str = ""
    step: str = ""

    def __str__(self) -> str:
        status = f"HTTP {self.http_status}" if self.http_status else "no answer"
        detail = self.description or self.code or "no description"
        return f"{self.kind} ({status}): {detail}" + (f" [field {self.field}]" if self.field else "")

    def record(self) -> dict[str, object]:
        """The form stored beside the object the call was about."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, object] | None) -> ProviderFailure | None:
        if not record:
            return None
        fields = {k: record.get(k, "") for k in ("http_status", "code", "description", "field", "reason", "source",
                                                  "step")}
        return cls(kind=FailureKind(str(record.get("kind", "unknown"))), **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Backoff:
    """Delays between retries of a provider call: base * factor**attempt, capped."""

    base: timedelta = timedelta(seconds=2)
    factor: float = 2.0
    cap: timedelta = timedelta(minutes=10)

    def delay(self, attempts: int) -> timedelta:
        """The wait after ``attempts`` failed attempts (1 for the first failure)."""
        seconds = self.base.total_seconds() * self.factor ** max(attempts - 1, 0)
        return min(timedelta(seconds=seconds), self.cap)
