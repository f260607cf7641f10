"""What the use cases need from the world, as Protocols: the unit of work with its repositories, and the
payment provider. The adapters implement them; the unit tests fake them in memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from services.payments.domain.reports import (
    LinkRequest,
    ProviderLink,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
)

# The time now. Retries after a failed provider call are counted from when the failure was known, not from the
# start of the round: a call that timed out took the whole timeout, and the provider may still be finishing it.
Clock = Callable[[], datetime]


class Unit(Protocol):
    """One transaction. Repositories (``invoices``, ``orders``, ``payments``, ``refunds``, ``links``,
    ``webhooks``, ``dunning``,
    ``reconciliation``) exist inside ``async with``; see :mod:`services.payments.adapters.repository` for their
    methods."""

    invoices: Any
    orders: Any
    payments: Any
    refunds: Any
    links: Any
    webhooks: Any
    dunning: Any
    reconciliation: Any

    async def __aenter__(self) -> Unit: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def publish(self, subject: str, event_id: str, message: Message) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...


UnitFactory = Callable[[], Unit]


class PaymentProvider(Protocol):
    """Razorpay's API as the use cases call it; every method raises ProviderFailure when it fails."""

    key_id: str

    async def create_order(self, amount_minor: int, currency: str, receipt: str,
                           notes: dict[str, str]) -> ProviderOrder: ...

    async def find_order(self, receipt: str) -> ProviderOrder | None: ...

    async def fetch_payment(self, payment_id: str) -> ProviderPayment: ...

    async def capture_payment(self, payment_id: str, amount_minor: int, currency: str) -> ProviderPayment: ...

    async def create_refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str,
                            notes: dict[str, str], receipt: str) -> ProviderRefund: ...

    async def fetch_refund(self, refund_id: str) -> ProviderRefund: ...

    async def create_payment_link(self, link: LinkRequest) -> ProviderLink: ...

    async def find_payment_link(self, reference_id: str) -> ProviderLink | None: ...

    async def list_payments(self, start: int, end: int, skip: int, count: int) -> list[ProviderPayment]: ...

    async def list_refunds(self, start: int, end: int, skip: int, count: int) -> list[ProviderRefund]: ...
