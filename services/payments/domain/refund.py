"""Refunds: never more in total than was captured, and a refusal gives the amount back.

A refund is ``requested`` once stored (before the provider has it), ``pending`` once the provider accepted it,
then ``processed`` or ``failed``. Requested, pending and processed refunds all count against what may still be
refunded; a failed one does not. ``processed`` and ``failed`` are final: the provider reports one of them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from billing_runtime.errors import FailedPrecondition, InvalidArgument

MAX_REASON_LENGTH = 255


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (RefundStatus.PROCESSED, RefundStatus.FAILED)

    @property
    def holds_money(self) -> bool:
        """Whether the refund's amount is spoken for (it has not been refused)."""
        return self is not RefundStatus.FAILED


def advance(current: RefundStatus, reported: RefundStatus) -> RefundStatus | None:
    """The new state after a report, or None when it changes nothing (a repeat, or a report older than what
    we know: ``pending`` after ``processed``). A final state never changes into the other final state."""
    if current.final or reported == current:
        return None
    if reported in (RefundStatus.REQUESTED,):
        return None
    if current is RefundStatus.PENDING and reported is RefundStatus.PENDING:
        return None
    return reported


def from_provider_status(status: str) -> RefundStatus | None:
    return {"pending": RefundStatus.PENDING, "created": RefundStatus.PENDING,
            "processed": RefundStatus.PROCESSED, "failed": RefundStatus.FAILED}.get(status)


@dataclass(frozen=True)
class RefundRequest:
    amount_minor: int
    reason: str


def refundable(captured_minor: int, refunds: Iterable[tuple[RefundStatus, int]]) -> int:
    """What may still be refunded of a captured payment."""
    return captured_minor - sum(amount for status, amount in refunds if status.holds_money)


def check_refund(amount_minor: int, reason: str, captured_minor: int, left_minor: int, currency: str) -> RefundRequest:
    """Validate a refund of ``amount_minor`` (0: everything left) against what is left to refund."""
    reason = reason.strip()
    if not reason:
        raise InvalidArgument("is required: say why the money goes back", field="reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_REASON_LENGTH} characters", field="reason")
    if amount_minor < 0:
        raise InvalidArgument("must not be negative (0 refunds everything not yet refunded)", field="amount_minor")
    if captured_minor <= 0:
        raise FailedPrecondition("the payment has not been captured: there is nothing to refund")
    if left_minor <= 0:
        raise FailedPrecondition(f"the payment of {captured_minor} {currency} minor units is already fully refunded")
    amount = amount_minor or left_minor
    if amount > left_minor:
        raise FailedPrecondition(
            f"a refund of {amount} exceeds what is left to refund: {left_minor} of {captured_minor} {currency} "
            "minor units", field="amount_minor",
        )
    return RefundRequest(amount, reason)
