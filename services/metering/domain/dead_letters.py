"""What an operator may do with a dead letter: replay it (again, harmlessly) until it is discarded, discard it
(again, harmlessly) until it is replayed. Pure rules; where the state is kept is the adapter's business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing_runtime.errors import FailedPrecondition, InvalidArgument

MAX_DISCARD_REASON_LENGTH = 500


class DeadLetterState(StrEnum):
    PENDING = "pending"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class LetterState:
    state: DeadLetterState = DeadLetterState.PENDING
    changed_at: datetime | None = None
    reason: str = ""


def check_replayable(state: DeadLetterState) -> None:
    if state is DeadLetterState.DISCARDED:
        raise FailedPrecondition("the dead letter was discarded and cannot be replayed", field="sequence")


def check_discardable(state: DeadLetterState) -> None:
    if state is DeadLetterState.REPLAYED:
        raise FailedPrecondition("the dead letter was replayed and cannot be discarded", field="sequence")


def discard_reason(reason: str) -> str:
    """One line, trimmed; required and bounded."""
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InvalidArgument("is required: say why the dead letter is discarded", field="reason")
    if len(cleaned) > MAX_DISCARD_REASON_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_DISCARD_REASON_LENGTH} characters", field="reason")
    return cleaned
