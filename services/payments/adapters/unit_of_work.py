"""The payments unit of work: one transaction, its repositories, and the outbox recording in it."""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.database import UnitOfWork
from billing_runtime.outbox import Outbox
from services.payments.adapters.dunning_repository import DunningRepository
from services.payments.adapters.mandate_repository import MandateRepository
from services.payments.adapters.order_repository import CreditNoteRepository, OrderRepository
from services.payments.adapters.provider_repository import CustomerRepository, ProviderChoiceRepository
from services.payments.adapters.reconciliation_repository import ReconciliationRepository
from services.payments.adapters.repository import (
    InvoiceRepository,
    PaymentLinkRepository,
    PaymentRepository,
    RefundRepository,
    WebhookRepository,
)


class PaymentsUnitOfWork(UnitOfWork):
    invoices: InvoiceRepository
    orders: OrderRepository
    payments: PaymentRepository
    refunds: RefundRepository
    links: PaymentLinkRepository
    webhooks: WebhookRepository
    dunning: DunningRepository
    reconciliation: ReconciliationRepository
    choices: ProviderChoiceRepository
    customers: CustomerRepository
    mandates: MandateRepository
    credit_notes: CreditNoteRepository

    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        super().__init__(engine)
        self._outbox = outbox

    async def __aenter__(self) -> PaymentsUnitOfWork:
        await super().__aenter__()
        conn = self.connection
        self.invoices = InvoiceRepository(conn)
        self.orders = OrderRepository(conn)
        self.payments = PaymentRepository(conn)
        self.refunds = RefundRepository(conn)
        self.links = PaymentLinkRepository(conn)
        self.webhooks = WebhookRepository(conn)
        self.dunning = DunningRepository(conn)
        self.reconciliation = ReconciliationRepository(conn)
        self.choices = ProviderChoiceRepository(conn)
        self.customers = CustomerRepository(conn)
        self.mandates = MandateRepository(conn)
        self.credit_notes = CreditNoteRepository(conn)
        return self

    async def publish(self, subject: str, event_id: str, message: Message) -> None:
        """Record an event in this transaction's outbox: it is published if and only if the transaction commits."""
        await self._outbox.record(self, subject, event_id, message)
