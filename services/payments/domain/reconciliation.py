"""Reconciliation: comparing our payments and refunds with the provider's, object by object.

Both sides are reduced to the same record (kind of object, provider id, status in our words, currency,
amount) and matched by the provider's id. Every difference is a :class:`Finding`: missing on our side,
missing on the provider's, or a different amount, currency or status. A refund we hold as ``requested`` is
compared as ``pending``: the provider accepting it is what both words mean once it has reached the provider.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class DiscrepancyKind(enum.StrEnum):
    MISSING_OURS = "missing_ours"
    MISSING_PROVIDER = "missing_provider"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"


@dataclass(frozen=True)
class Record:
    object_type: str  # "payment" or "refund"
    provider_id: str
    status: str
    currency: str
    amount_minor: int
    our_id: str = ""
    # Whose it is (razorpay, stripe): where it is fetched from when a listing missed it.
    provider: str = ""

    def describe(self) -> str:
        return f"{self.status} {self.amount_minor} {self.currency}"


@dataclass(frozen=True)
class Finding:
    kind: DiscrepancyKind
    object_type: str
    provider_id: str
    our_id: str
    detail: str
    ours: str
    theirs: str


def _comparable_status(record: Record) -> str:
    return "pending" if record.object_type == "refund" and record.status == "requested" else record.status


def compare(ours: Iterable[Record], theirs: Iterable[Record]) -> list[Finding]:
    """Every difference between the two sides, in a stable order (by object type, then provider id)."""
    mine = {(r.object_type, r.provider_id): r for r in ours}
    provider = {(r.object_type, r.provider_id): r for r in theirs}
    findings: list[Finding] = []
    for key in sorted(mine.keys() | provider.keys()):
        a, b = mine.get(key), provider.get(key)
        kind_of, provider_id = key
        if a is None:
            assert b is not None
            findings.append(Finding(DiscrepancyKind.MISSING_OURS, kind_of, provider_id, "",
                                    f"the provider has {kind_of} {provider_id}; we have no record of it", "",
                                    b.describe()))
            continue
        if b is None:
            findings.append(Finding(DiscrepancyKind.MISSING_PROVIDER, kind_of, provider_id, a.our_id,
                                    f"we record {kind_of} {provider_id}; the provider does not have it",
                                    a.describe(), ""))
            continue
        if a.currency != b.currency:
            findings.append(Finding(DiscrepancyKind.CURRENCY_MISMATCH, kind_of, provider_id, a.our_id,
                                    f"currency: ours {a.currency}, the provider's {b.currency}", a.describe(),
                                    b.describe()))
        if a.amount_minor != b.amount_minor:
            findings.append(Finding(DiscrepancyKind.AMOUNT_MISMATCH, kind_of, provider_id, a.our_id,
                                    f"amount: ours {a.amount_minor}, the provider's {b.amount_minor} minor units",
                                    a.describe(), b.describe()))
        if _comparable_status(a) != _comparable_status(b):
            findings.append(Finding(DiscrepancyKind.STATUS_MISMATCH, kind_of, provider_id, a.our_id,
                                    f"status: ours {a.status}, the provider's {b.status}", a.describe(),
                                    b.describe()))
    return findings
