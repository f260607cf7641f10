"""What the use cases need from the world, as Protocols: the unit of work with its repositories, and the
payment providers (Razorpay, Stripe: one port, one adapter each). The adapters implement them; the unit tests
fake them in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from billing_runtime.errors import FailedPrecondition
from services.payments.domain.payment import DEFAULT_PROVIDER, Provider
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
    ``webhooks``, ``dunning``, ``reconciliation``, ``choices`` (each organisation's provider), ``customers``
    (provider customers by organisation), ``mandates`` (recurring mandates and their debits), ``credit_notes``
    (invoicing's credit notes applied)) exist inside ``async with``; see :mod:`services.payments.adapters.repository`
    and its siblings for their methods."""

    invoices: Any
    orders: Any
    payments: Any
    refunds: Any
    links: Any
    webhooks: Any
    dunning: Any
    reconciliation: Any
    choices: Any
    customers: Any
    mandates: Any
    credit_notes: Any

    async def __aenter__(self) -> Unit: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def publish(self, subject: str, event_id: str, message: Message) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...


UnitFactory = Callable[[], Unit]


class PaymentProvider(Protocol):
    """One provider's API (Razorpay's or Stripe's) as the use cases call it. Every method raises
    ProviderFailure when it fails; the adapters translate each provider's objects into :mod:`..domain.reports`.

    What differs between providers is said by attributes, not by asking which provider it is: Stripe wants a
    customer before a PaymentIntent (``uses_customers``); Razorpay makes payment links for an amount
    (``makes_links``); Razorpay has Checkout's signed callback (``verifies_checkout``); Stripe's PaymentIntents
    can be cancelled, Razorpay's orders cannot (``cancels_orders``)."""

    name: Provider
    # The public key the payer's browser uses: Razorpay's key id, Stripe's publishable key.
    key_id: str
    uses_customers: bool
    makes_links: bool
    verifies_checkout: bool
    cancels_orders: bool

    async def create_customer(self, organisation_id: str, name: str, email: str) -> str:
        """The provider's id of a new customer for the organisation (made once: the caller keeps the id)."""
        ...

    async def create_order(self, amount_minor: int, currency: str, receipt: str, notes: dict[str, str],
                           customer_id: str = "") -> ProviderOrder: ...

    async def find_order(self, receipt: str) -> ProviderOrder | None: ...

    async def fetch_order(self, order_id: str) -> ProviderOrder: ...

    async def cancel_order(self, order_id: str) -> ProviderOrder:
        """Cancel an order nobody is paying (where ``cancels_orders``), and answer it as it then is: ``cancelled``,
        or left as it was because it is paid or being paid."""
        ...

    async def fetch_payment(self, payment_id: str) -> ProviderPayment: ...

    async def capture_payment(self, payment_id: str, amount_minor: int, currency: str) -> ProviderPayment: ...

    async def create_refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str,
                            notes: dict[str, str], receipt: str, currency: str = "") -> ProviderRefund: ...

    async def fetch_refund(self, refund_id: str) -> ProviderRefund: ...

    async def create_payment_link(self, link: LinkRequest) -> ProviderLink: ...

    async def find_payment_link(self, reference_id: str) -> ProviderLink | None: ...

    async def cancel_payment_link(self, link_id: str) -> ProviderLink: ...

    async def list_payments(self, start: int, end: int) -> list[ProviderPayment]:
        """Every payment the provider made in [start, end) (Unix seconds), all pages."""
        ...

    async def list_refunds(self, start: int, end: int) -> list[ProviderRefund]:
        """Every refund the provider made in [start, end) (Unix seconds), all pages."""
        ...


class RecurringProvider(Protocol):
    """Razorpay's recurring payments (tokens on a card, UPI AutoPay, eNACH), as auto-debit calls them. Raises
    ProviderFailure like :class:`PaymentProvider`."""

    async def create_recurring_customer(self, name: str, email: str, contact: str) -> str:
        """The customer for this email and contact: a new one, or the one made before (safe to repeat)."""
        ...

    async def create_authorisation_order(self, customer_id: str, method: str, max_amount_minor: int,
                                         expire_at: datetime, receipt: str, notes: dict[str, str]) -> ProviderOrder:
        """An order authorising a token (``token``: max_amount, expire_at, frequency as_presented)."""
        ...

    async def find_order(self, receipt: str) -> ProviderOrder | None: ...

    async def create_order(self, amount_minor: int, currency: str, receipt: str, notes: dict[str, str],
                           customer_id: str = "") -> ProviderOrder: ...

    async def order_payments(self, order_id: str) -> list[ProviderPayment]:
        """The payments made on an order (to find a debit whose answer was lost)."""
        ...

    async def create_recurring_payment(self, order_id: str, customer_id: str, token_id: str, amount_minor: int,
                                       currency: str, email: str, contact: str, notes: dict[str, str]) -> str:
        """Ask for a debit on the token; the provider's payment id. The debit happens after the notice."""
        ...

    async def pause_token(self, customer_id: str, token_id: str) -> None: ...

    async def cancel_token(self, customer_id: str, token_id: str) -> None: ...


class Providers:
    """The providers this deployment has keys for, by name, and the one an organisation collects through unless
    it chose another. Empty when no provider is configured: invoices are then payable offline only."""

    def __init__(self, *configured: PaymentProvider, default: Provider = DEFAULT_PROVIDER) -> None:
        self._by_name = {provider.name: provider for provider in configured}
        self.default = default

    def get(self, name: Provider | str) -> PaymentProvider | None:
        return self._by_name.get(Provider(name))

    @property
    def names(self) -> list[Provider]:
        return list(self._by_name)

    def __iter__(self) -> Iterator[PaymentProvider]:
        return iter(self._by_name.values())

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def required(self, name: Provider | str) -> PaymentProvider:
        """The provider ``name``, or FailedPrecondition saying it is not configured here."""
        found = self.get(name)
        if found is None:
            raise FailedPrecondition(
                f"online payments are not configured (no {Provider(name).title} keys): pay offline")
        return found
