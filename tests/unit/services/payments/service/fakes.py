"""In-memory stand-ins for payments' unit of work and the provider, for use-case tests without I/O.

The unit of work keeps a snapshot taken at ``async with`` and restores it on an exception, and publishes its
events only on commit, as the real one (one PostgreSQL transaction plus the outbox) does.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.payments.domain.dunning import Dunning, DunningPolicy, DunningState
from services.payments.domain.entities import (
    Cancellation,
    CreditNote,
    Invoice,
    Order,
    OrderStatus,
    Payment,
    PaymentLink,
    Refund,
    SupersededOrder,
    WebhookEvent,
)
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import FailureKind, ProviderFailure
from services.payments.domain.razorpay_events import (
    LinkRequest,
    ProviderLink,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
)
from services.payments.domain.refund import RefundStatus


@dataclass
class Store:
    invoices: dict[str, Invoice] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    refunds: dict[str, tuple[Refund, str]] = field(default_factory=dict)
    webhooks: dict[tuple[str, str], WebhookEvent] = field(default_factory=dict)
    links: dict[str, PaymentLink] = field(default_factory=dict)
    dunning: dict[str, tuple[Dunning, int]] = field(default_factory=dict)
    policies: dict[str, DunningPolicy] = field(default_factory=dict)
    choices: dict[str, Provider] = field(default_factory=dict)
    customers: dict[tuple[Provider, str], str] = field(default_factory=dict)
    mandates: dict[str, tuple[Any, str]] = field(default_factory=dict)  # id -> (Mandate, idempotency key)
    debits: dict[str, Any] = field(default_factory=dict)  # invoice id -> Debit
    credit_notes: dict[str, CreditNote] = field(default_factory=dict)
    superseded: dict[str, SupersededOrder] = field(default_factory=dict)  # provider order id -> the order
    published: list[tuple[str, str, Any]] = field(default_factory=list)


class Invoices:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, invoice: Invoice) -> bool:
        if invoice.invoice_id in self.s.invoices:
            return False
        self.s.invoices[invoice.invoice_id] = invoice
        return True

    async def get(self, invoice_id: str, *, lock: bool = False) -> Invoice | None:
        return self.s.invoices.get(invoice_id)

    async def update(self, invoice_id: str, **values: Any) -> None:
        self.s.invoices[invoice_id] = replace(self.s.invoices[invoice_id], **values)


class Orders:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, order: Order) -> None:
        self.s.orders[order.invoice_id] = order

    async def get(self, invoice_id: str, *, lock: bool = False) -> Order | None:
        return self.s.orders.get(invoice_id)

    async def by_provider_id(self, provider_order_id: str) -> Order | None:
        return next((o for o in self.s.orders.values() if o.provider_order_id == provider_order_id), None)

    async def invoice_of(self, provider_order_id: str) -> str | None:
        if not provider_order_id:
            return None
        current = await self.by_provider_id(provider_order_id)
        if current is not None:
            return current.invoice_id
        old = self.s.superseded.get(provider_order_id)
        return old.invoice_id if old is not None else None

    async def supersede(self, old: SupersededOrder) -> None:
        self.s.superseded.setdefault(old.provider_order_id, old)

    async def superseded(self, provider_order_id: str, *, lock: bool = False) -> SupersededOrder | None:
        return self.s.superseded.get(provider_order_id)

    async def superseded_of(self, invoice_id: str) -> list[SupersededOrder]:
        return sorted((o for o in self.s.superseded.values() if o.invoice_id == invoice_id), key=lambda o: o.revision)

    async def claim_superseded(self, now: datetime, lease: timedelta, limit: int,
                               providers=None) -> list[SupersededOrder]:
        due = [o for o in self.s.superseded.values()
               if o.cancel_state is Cancellation.PENDING and o.next_attempt_at is not None and o.next_attempt_at <= now
               and (providers is None or o.provider in providers)][:limit]
        claimed = []
        for old in due:
            old = replace(old, next_attempt_at=now + lease, cancel_attempts=old.cancel_attempts + 1)
            self.s.superseded[old.provider_order_id] = old
            claimed.append(old)
        return claimed

    async def update_superseded(self, provider_order_id: str, **values: Any) -> None:
        self.s.superseded[provider_order_id] = replace(self.s.superseded[provider_order_id], **values)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int, providers=None) -> list[Order]:
        due = [o for o in self.s.orders.values()
               if o.status is OrderStatus.PENDING and o.next_attempt_at is not None and o.next_attempt_at <= now
               and (providers is None or o.provider in providers)]
        claimed = []
        for order in due[:limit]:
            order = replace(order, next_attempt_at=now + lease, create_attempts=order.create_attempts + 1)
            self.s.orders[order.invoice_id] = order
            claimed.append(order)
        return claimed

    async def update(self, invoice_id: str, **values: Any) -> None:
        self.s.orders[invoice_id] = replace(self.s.orders[invoice_id], **values)

    async def mark_paid(self, invoice_id: str) -> None:
        order = self.s.orders.get(invoice_id)
        if order is not None and order.status in (OrderStatus.PENDING, OrderStatus.CREATED):
            self.s.orders[invoice_id] = replace(order, status=OrderStatus.PAID)


class Payments:
    def __init__(self, store: Store) -> None:
        self.s = store

    def _with_refunded(self, payment: Payment) -> Payment:
        held = sum(r.amount_minor for r, _ in self.s.refunds.values()
                   if r.payment_id == payment.id and r.status.holds_money)
        return replace(payment, refunded_minor=held)

    async def add(self, payment: Payment) -> bool:
        for other in self.s.payments.values():
            if payment.provider_payment_id and (other.provider, other.provider_payment_id) == (
                    payment.provider, payment.provider_payment_id):
                return False
        self.s.payments[payment.id] = payment
        return True

    async def get(self, payment_id: str, *, lock: bool = False) -> Payment | None:
        found = self.s.payments.get(payment_id)
        return self._with_refunded(found) if found else None

    async def by_provider_id(
        self, provider: Provider, provider_payment_id: str, *, lock: bool = False
    ) -> Payment | None:
        found = next((p for p in self.s.payments.values()
                      if p.provider is provider and p.provider_payment_id == provider_payment_id), None)
        return self._with_refunded(found) if found else None

    async def offline_by_reference(self, invoice_id: str, reference: str) -> Payment | None:
        return next((p for p in self.s.payments.values() if p.provider is Provider.OFFLINE
                     and p.invoice_id == invoice_id and p.reference == reference), None)

    async def update(self, payment_id: str, **values: Any) -> None:
        self.s.payments[payment_id] = replace(self.s.payments[payment_id], **values)

    async def for_invoice(self, invoice_id: str) -> list[Payment]:
        return [self._with_refunded(p) for p in self.s.payments.values() if p.invoice_id == invoice_id]

    async def claim_due_checks(self, now: datetime, lease: timedelta, limit: int, providers=None) -> list[Payment]:
        due = [p for p in self.s.payments.values() if p.status in (PaymentStatus.CREATED, PaymentStatus.AUTHORIZED)
               and p.check_due_at is not None and p.check_due_at <= now
               and (providers is None or p.provider in providers)][:limit]
        for payment in due:
            await self.update(payment.id, check_due_at=now + lease, check_attempts=payment.check_attempts + 1)
        return [self._with_refunded(self.s.payments[p.id]) for p in due]


class Refunds:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add_once(self, refund: Refund, fingerprint: str) -> tuple[Refund, bool]:
        self.s.refunds[refund.id] = (refund, fingerprint)
        return refund, True

    async def get(self, refund_id: str, *, lock: bool = False) -> Refund | None:
        found = self.s.refunds.get(refund_id)
        return found[0] if found else None

    async def by_idempotency_key(self, key: str) -> tuple[Refund, str] | None:
        return next(((r, f) for r, f in self.s.refunds.values() if r.idempotency_key == key), None)

    async def by_provider_id(self, provider_refund_id: str, *, lock: bool = False) -> Refund | None:
        return next((r for r, _ in self.s.refunds.values() if r.provider_refund_id == provider_refund_id), None)

    async def for_payment(self, payment_id: str) -> list[Refund]:
        return [r for r, _ in self.s.refunds.values() if r.payment_id == payment_id]

    async def for_invoice(self, invoice_id: str) -> list[Refund]:
        return [r for r, _ in self.s.refunds.values() if r.invoice_id == invoice_id]

    async def update(self, refund_id: str, **values: Any) -> None:
        refund, fingerprint = self.s.refunds[refund_id]
        self.s.refunds[refund_id] = (replace(refund, **values), fingerprint)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Refund]:
        due = [r for r, _ in self.s.refunds.values() if r.status is RefundStatus.REQUESTED
               and r.next_attempt_at is not None and r.next_attempt_at <= now][:limit]
        for refund in due:
            await self.update(refund.id, next_attempt_at=now + lease, send_attempts=refund.send_attempts + 1)
        return [self.s.refunds[r.id][0] for r in due]


class Links:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def for_invoice(self, invoice_id: str) -> list[PaymentLink]:
        return [link for link in self.s.links.values() if link.invoice_id == invoice_id]

    async def by_reference(self, reference_id: str) -> PaymentLink | None:
        return next((link for link in self.s.links.values() if link.reference_id == reference_id), None)

    async def by_provider_id(self, provider_link_id: str) -> PaymentLink | None:
        return next((link for link in self.s.links.values() if link.provider_link_id == provider_link_id), None)

    async def add(self, link: PaymentLink) -> bool:
        if await self.by_reference(link.reference_id):
            return False
        self.s.links[link.id] = link
        return True

    async def update(self, link_id: str, **values: Any) -> None:
        self.s.links[link_id] = replace(self.s.links[link_id], **values)

    async def made(self, link_id: str, provider_link_id: str, short_url: str, now: datetime) -> str:
        link = self.s.links[link_id]
        outdated = link.status != "creating"
        self.s.links[link_id] = replace(link, provider_link_id=provider_link_id, short_url=short_url,
                                        status=link.status if outdated else "created",
                                        next_attempt_at=now if outdated else None)
        return self.s.links[link_id].status

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[PaymentLink]:
        due = [link for link in self.s.links.values() if link.status in ("creating", "cancelling")
               and link.next_attempt_at is not None and link.next_attempt_at <= now][:limit]
        for link in due:
            await self.update(link.id, next_attempt_at=now + lease, attempts=link.attempts + 1)
        return [self.s.links[link.id] for link in due]


class CreditNotes:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, note: CreditNote) -> bool:
        if note.credit_note_id in self.s.credit_notes:
            return False
        self.s.credit_notes[note.credit_note_id] = note
        return True

    async def for_invoice(self, invoice_id: str) -> list[CreditNote]:
        return [n for n in self.s.credit_notes.values() if n.invoice_id == invoice_id]


class DunningRows:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, dunning: Dunning) -> None:
        self.s.dunning.setdefault(dunning.invoice_id, (dunning, 0))

    async def get(self, invoice_id: str, *, lock: bool = False) -> Dunning | None:
        found = self.s.dunning.get(invoice_id)
        return found[0] if found else None

    async def save(self, dunning: Dunning, errors: int = 0) -> None:
        self.s.dunning[dunning.invoice_id] = (dunning, errors)

    async def stop(self, invoice_id: str, reason: str) -> None:
        found = self.s.dunning.get(invoice_id)
        if found and found[0].state in (DunningState.SCHEDULED, DunningState.RETRYING):
            self.s.dunning[invoice_id] = (replace(found[0], state=DunningState.STOPPED, next_at=None, reason=reason),
                                          found[1])

    async def postpone(self, invoice_id: str, until: datetime, reason: str) -> None:
        dunning, errors = self.s.dunning[invoice_id]
        self.s.dunning[invoice_id] = (replace(dunning, next_at=until, reason=reason), errors + 1)

    async def errors(self, invoice_id: str) -> int:
        return self.s.dunning[invoice_id][1]

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Dunning]:
        due = [d for d, _ in self.s.dunning.values() if d.state in (DunningState.SCHEDULED, DunningState.RETRYING)
               and d.next_at is not None and d.next_at <= now][:limit]
        for d in due:
            self.s.dunning[d.invoice_id] = (replace(d, next_at=d.next_at + lease), self.s.dunning[d.invoice_id][1])
        return due

    async def policy_for(self, organisation_id: str) -> DunningPolicy | None:
        return self.s.policies.get(organisation_id)

    async def set_policy(self, organisation_id: str, policy: DunningPolicy | None) -> None:
        if policy is None:
            self.s.policies.pop(organisation_id, None)
        else:
            self.s.policies[organisation_id] = policy


class Choices:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, organisation_id: str) -> Provider | None:
        return self.s.choices.get(organisation_id)

    async def set(self, organisation_id: str, provider: Provider | None) -> None:
        if provider is None:
            self.s.choices.pop(organisation_id, None)
        else:
            self.s.choices[organisation_id] = provider


class Customers:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, provider: Provider, organisation_id: str) -> str | None:
        return self.s.customers.get((provider, organisation_id))

    async def add(self, provider: Provider, organisation_id: str, customer_id: str) -> str:
        return self.s.customers.setdefault((provider, organisation_id), customer_id)


class Webhooks:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def claim(self, provider: str, event_id: str, event_type: str, body: bytes, received_at: datetime) -> bool:
        if (provider, event_id) in self.s.webhooks:
            return False
        self.s.webhooks[(provider, event_id)] = WebhookEvent(provider, event_id, event_type, received_at, None,
                                                             "processing")
        return True

    async def set_outcome(self, provider: str, event_id: str, outcome: str) -> None:
        self.s.webhooks[(provider, event_id)] = replace(self.s.webhooks[(provider, event_id)], outcome=outcome)


class FakeUnit:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[tuple[str, str, Any]] = []
        self._after: list = []

    async def __aenter__(self) -> FakeUnit:
        self._snapshot = copy.deepcopy({k: v for k, v in self._store.__dict__.items() if k != "published"})
        self.invoices, self.orders = Invoices(self._store), Orders(self._store)
        self.payments, self.refunds = Payments(self._store), Refunds(self._store)
        self.links, self.webhooks = Links(self._store), Webhooks(self._store)
        self.dunning = DunningRows(self._store)
        self.choices, self.customers = Choices(self._store), Customers(self._store)
        self.credit_notes = CreditNotes(self._store)
        from tests.unit.services.payments.service.fake_mandates import Mandates

        self.mandates = Mandates(self._store)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._store.__dict__.update(self._snapshot)
            return
        self._store.published.extend(self._pending)
        for callback in self._after:
            callback()

    async def publish(self, subject: str, event_id: str, message: Any) -> None:
        # The outbox's event id is unique: a second record of the same id would fail the transaction.
        assert event_id not in {e for _, e, _ in self._store.published + self._pending}, event_id
        self._pending.append((subject, event_id, message))

    def after_commit(self, callback) -> None:
        self._after.append(callback)


class FakeProvider:
    """Razorpay (or, with ``name=Provider.STRIPE``, Stripe) as a dictionary; ``failures`` are raised, in turn, by
    the next calls."""

    key_id = "rzp_test_fake"

    def __init__(self, name: Provider = Provider.RAZORPAY) -> None:
        self.name = name
        stripe = name is Provider.STRIPE
        self.uses_customers, self.makes_links, self.verifies_checkout = stripe, not stripe, not stripe
        self.cancels_orders = stripe
        self.customers: dict[str, tuple[str, str, str]] = {}
        self.orders: dict[str, ProviderOrder] = {}
        self.payments: dict[str, ProviderPayment] = {}
        self.refunds: dict[str, ProviderRefund] = {}
        self.links: dict[str, tuple[ProviderLink, LinkRequest]] = {}
        self.failures: list[ProviderFailure] = []
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.failures:
            raise self.failures.pop(0)

    async def create_customer(self, organisation_id, name, email) -> str:
        self._maybe_fail("create_customer")
        made = next((c for c, (org, _, _) in self.customers.items() if org == organisation_id), None)
        if made is None:  # the idempotency key is the organisation's
            made = f"cus_{next(self._ids)}"
            self.customers[made] = (organisation_id, name, email)
        return made

    async def create_order(self, amount_minor, currency, receipt, notes, customer_id="") -> ProviderOrder:
        self._maybe_fail("create_order")
        prefix = "pi" if self.name is Provider.STRIPE else "order"
        order = ProviderOrder(f"{prefix}_{next(self._ids)}", amount_minor, 0, currency, receipt, "created",
                              {**notes, **({"customer": customer_id} if customer_id else {})},
                              client_secret=f"{prefix}_secret" if self.name is Provider.STRIPE else "")
        self.orders[order.id] = order
        return order

    async def fetch_order(self, order_id) -> ProviderOrder:
        self._maybe_fail("fetch_order")
        return self.orders[order_id]

    async def find_order(self, receipt) -> ProviderOrder | None:
        self._maybe_fail("find_order")
        return next((o for o in self.orders.values() if o.receipt == receipt), None)

    async def cancel_order(self, order_id) -> ProviderOrder:
        """Stripe's: an order nobody pays ("created" here) is cancelled; a paid one is answered as it is."""
        self._maybe_fail("cancel_order")
        order = self.orders[order_id]
        if order.status in ("created", "canceled"):
            order = self.orders[order_id] = replace(order, status="canceled", cancelled=True)
        return order

    async def fetch_payment(self, payment_id) -> ProviderPayment:
        self._maybe_fail("fetch_payment")
        return self.payments[payment_id]

    async def capture_payment(self, payment_id, amount_minor, currency) -> ProviderPayment:
        self._maybe_fail("capture_payment")
        self.payments[payment_id] = replace(self.payments[payment_id], status="captured", captured=True)
        return self.payments[payment_id]

    async def create_refund(self, payment_id, amount_minor, *, idempotency_key, notes, receipt,
                            currency="") -> ProviderRefund:
        self._maybe_fail("create_refund")
        existing = next((r for r in self.refunds.values() if r.receipt == idempotency_key), None)
        if existing:
            return existing
        refund = ProviderRefund(f"rfnd_{next(self._ids)}", payment_id, amount_minor, "INR", "pending", None, notes,
                                receipt=idempotency_key)
        self.refunds[refund.id] = refund
        return refund

    async def fetch_refund(self, refund_id) -> ProviderRefund:
        self._maybe_fail("fetch_refund")
        return self.refunds[refund_id]


    async def create_payment_link(self, link: LinkRequest) -> ProviderLink:
        self._maybe_fail("create_payment_link")
        made = ProviderLink(f"plink_{next(self._ids)}", f"https://rzp.io/i/{next(self._ids)}", "created",
                            link.reference_id)
        self.links[made.id] = (made, link)
        return made

    async def find_payment_link(self, reference_id: str) -> ProviderLink | None:
        self._maybe_fail("find_payment_link")
        return next((made for made, _ in self.links.values() if made.reference_id == reference_id), None)

    async def cancel_payment_link(self, link_id: str) -> ProviderLink:
        """Razorpay's: only a link still payable can be cancelled (400 otherwise)."""
        self._maybe_fail("cancel_payment_link")
        made, request = self.links[link_id]
        if made.status != "created":
            raise rejection(f"Payment link cannot be cancelled in {made.status} state")
        made = replace(made, status="cancelled")
        self.links[link_id] = (made, request)
        return made


def outage() -> ProviderFailure:
    return ProviderFailure(FailureKind.UNAVAILABLE, http_status=503, code="SERVER_ERROR", description="down")


def rejection(description: str = "bad") -> ProviderFailure:
    return ProviderFailure(FailureKind.REJECTED, http_status=400, code="BAD_REQUEST_ERROR", description=description,
                           field="amount")


def unknown() -> ProviderFailure:
    return ProviderFailure(FailureKind.UNKNOWN, description="no answer in time")
