"""An invoice's registration with the IRP: what the IRP acknowledged, what went wrong, and what happens next.

States
- ``pending``: to be sent (a worker picks it up; ``next_attempt_at`` spaces the retries).
- ``registered``: the IRP acknowledged it (IRN, AckNo, AckDt, SignedInvoice, SignedQRCode); the PDF prints them.
- ``failed``: the IRP refused the document, or it was blocked before sending (past the 30-day limit, a check
  failed): the invoice stays issued but is flagged and listed for operators. A person fixes the cause and retries.
- ``cancelled``: the IRN was cancelled within 24 hours (the invoice was voided). The number is never reused.

Retries: an unreachable IRP (outage, timeout, 5xx) leaves the registration ``pending`` with an exponential backoff
(``backoff``); a refusal does not retry by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

MAX_ERROR_LENGTH = 2000
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


class RegistrationStatus(StrEnum):
    PENDING = "pending"
    REGISTERED = "registered"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Acknowledgement:
    """The IRP's answer to Generate IRN (or Get IRN)."""

    irn: str
    ack_no: str
    ack_at: datetime
    signed_invoice: str
    signed_qr_code: str
    status: str = "ACT"  # the IRP's: ACT or CNL


class IrpRefusal(Exception):
    """The IRP answered Status 0: its error codes and messages; for a duplicate (2150) the existing IRN."""

    def __init__(self, errors: list[tuple[str, str]], existing_irn: str = "") -> None:
        super().__init__("; ".join(f"{code}: {message}" for code, message in errors)[:MAX_ERROR_LENGTH])
        self.errors = errors
        self.existing_irn = existing_irn

    @property
    def codes(self) -> set[str]:
        return {code for code, _ in self.errors}


class IrpUnavailable(Exception):
    """The IRP could not be reached or answered 5xx: try again later."""


@dataclass(frozen=True)
class Registration:
    document_id: str  # the invoice's id, or the credit note's
    invoice_id: str  # the invoice (the credit note's invoice)
    document_type: str  # INV / CRN
    document_number: str
    document_date: date
    irn: str  # computed locally before sending (the idempotency key)
    status: RegistrationStatus
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    ack_no: str = ""
    ack_at: datetime | None = None
    signed_invoice: str = ""
    signed_qr_code: str = ""
    cancelled_at: datetime | None = None
    cancel_reason: str = ""


@dataclass(frozen=True)
class ListedRegistration:
    """A registration as it is listed: with the organisation its invoice bills (the registration itself names only
    the invoice), so operators see whose document it is and a customer's view can be narrowed to its own."""

    registration: Registration
    organisation_id: str


def backoff(attempts: int, first: timedelta = BACKOFF_FIRST, most: timedelta = BACKOFF_MAX) -> timedelta:
    """Delay before attempt ``attempts + 1``: 30 s, 1 min, 2 min ... at most an hour (by default)."""
    return min(first * (2 ** min(max(attempts - 1, 0), 30)), most)
