"""In-memory mandates and debits (the MandateRepository's methods), and Razorpay's recurring API as a dictionary."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from services.payments.domain.mandate import Debit, DebitState, Mandate, MandateState
from services.payments.domain.razorpay_events import ProviderOrder, ProviderPayment
from tests.unit.services.payments.service.fakes import FakeProvider, Store

WORKING = (DebitState.SCHEDULED, DebitState.ORDERED, DebitState.REQUESTED)


class Mandates:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, mandate: Mandate, idempotency_key: str) -> bool:
        if idempotency_key and any(key == idempotency_key for _, key in self.s.mandates.values()):
            return False
        if any(m.organisation_id == mandate.organisation_id and m.state.live for m, _ in self.s.mandates.values()):
            return False
        self.s.mandates[mandate.id] = (replace(mandate, created_at=datetime.now()), idempotency_key)
        return True

    async def get(self, mandate_id: str, *, lock: bool = False) -> Mandate | None:
        found = self.s.mandates.get(mandate_id)
        return found[0] if found else None

    async def by_key(self, idempotency_key: str) -> Mandate | None:
        return next((m for m, key in self.s.mandates.values() if key == idempotency_key), None)

    async def live(self, organisation_id: str, *, lock: bool = False) -> Mandate | None:
        return next((m for m, _ in self.s.mandates.values() if m.organisation_id == organisation_id and m.state.live),
                    None)

    async def by_provider(self, token_id: str, customer_id: str, order_id: str, *, lock: bool = False):
        mandates = [m for m, _ in self.s.mandates.values()]
        for found in ([m for m in mandates if token_id and m.token_id == token_id],
                      [m for m in mandates if order_id and m.auth_order_id == order_id],
                      [m for m in reversed(mandates) if customer_id and m.customer_id == customer_id]):
            if found:
                return found[0]
        return None

    async def update(self, mandate_id: str, **changes: Any) -> None:
        mandate, key = self.s.mandates[mandate_id]
        self.s.mandates[mandate_id] = (replace(mandate, **changes), key)

    async def list(self, organisation_id: str, include_finished: bool) -> list[Mandate]:
        return [m for m, _ in reversed(self.s.mandates.values())
                if (not organisation_id or m.organisation_id == organisation_id) and (include_finished or m.state.live)]

    async def add_debit(self, debit: Debit) -> bool:
        if debit.invoice_id in self.s.debits:
            return False
        self.s.debits[debit.invoice_id] = debit
        return True

    async def debit(self, invoice_id: str, *, lock: bool = False) -> Debit | None:
        return self.s.debits.get(invoice_id)

    async def debit_by_order(self, order_id: str, *, lock: bool = False) -> Debit | None:
        return next((d for d in self.s.debits.values() if order_id and d.provider_order_id == order_id), None)

    async def debits_of(self, mandate_id: str, limit: int) -> list[Debit]:
        mine = [d for d in self.s.debits.values() if d.mandate_id == mandate_id]
        return sorted(mine, key=lambda d: d.due_at, reverse=True)[:limit]

    async def debits_in_cycle(self, mandate_id: str, cycle: str, invoice_id: str) -> int:
        return sum(1 for d in self.s.debits.values() if d.mandate_id == mandate_id and d.cycle == cycle
                   and d.invoice_id != invoice_id
                   and d.state in (DebitState.ORDERED, DebitState.REQUESTED, DebitState.CAPTURED))

    async def update_debit(self, invoice_id: str, **changes: Any) -> None:
        self.s.debits[invoice_id] = replace(self.s.debits[invoice_id], **changes)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Debit]:
        due = sorted((d for d in self.s.debits.values() if d.state in WORKING and d.next_at and d.next_at <= now),
                     key=lambda d: d.next_at)[:limit]
        claimed = [replace(d, next_at=now + lease, attempts=d.attempts + 1) for d in due]
        for debit in claimed:
            self.s.debits[debit.invoice_id] = debit
        return claimed


class Crash(Exception):
    """The worker's process died (raised after the provider did what was asked)."""


class FakeRecurring(FakeProvider):
    """Razorpay with tokens: debits are recorded per order; ``crash_after_request`` makes the next
    create/recurring reach Razorpay and then kills the caller."""

    def __init__(self) -> None:
        super().__init__()
        self.recurring_customers: dict[str, str] = {}
        self.tokens: dict[str, str] = {}  # token id -> state
        self.debits: dict[str, list[str]] = {}  # order id -> payment ids
        self.crash_after_request = False
        self.debit_status: dict[str, str] = {}  # payment id -> status, once the bank has answered
        self._rids = itertools.count(1)

    async def create_recurring_customer(self, name: str, email: str, contact: str) -> str:
        self._maybe_fail("create_recurring_customer")
        return self.recurring_customers.setdefault(email, f"cust_{next(self._rids)}")

    async def create_authorisation_order(self, customer_id, method, max_amount_minor, expire_at, receipt,
                                         notes) -> ProviderOrder:
        self._maybe_fail("create_authorisation_order")
        order = ProviderOrder(f"order_auth{next(self._rids)}", 0 if method == "emandate" else 100, 0, "INR",
                              receipt, "created", notes)
        self.orders[order.id] = order
        return order

    async def order_payments(self, order_id: str) -> list[ProviderPayment]:
        self._maybe_fail("order_payments")
        order = self.orders[order_id]
        return [ProviderPayment(pid, order_id, order.amount_minor, "INR", self.debit_status.get(pid, "created"),
                                self.debit_status.get(pid) == "captured", "upi", "", "", 0, "", "", "", None,
                                dict(order.notes)) for pid in self.debits.get(order_id, [])]

    async def create_recurring_payment(self, order_id, customer_id, token_id, amount_minor, currency, email,
                                       contact, notes) -> str:
        self._maybe_fail("create_recurring_payment")
        payment_id = f"pay_rec{next(self._rids)}"
        self.debits.setdefault(order_id, []).append(payment_id)
        if self.crash_after_request:
            self.crash_after_request = False
            raise Crash("killed after create/recurring reached Razorpay")
        return payment_id

    async def pause_token(self, customer_id: str, token_id: str) -> None:
        self._maybe_fail("pause_token")
        self.tokens[token_id] = "paused"

    async def cancel_token(self, customer_id: str, token_id: str) -> None:
        self._maybe_fail("cancel_token")
        self.tokens[token_id] = "cancelled"


def confirmed(mandate: Mandate, token_id: str = "token_1") -> Mandate:
    return replace(mandate, state=MandateState.CONFIRMED, token_id=token_id)
