"""The notification unit of work: one transaction and its repositories."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.database import UnitOfWork
from services.notification.adapters.reminder_repository import ReminderRepository
from services.notification.adapters.repository import InvoiceFactsRepository, MessageRepository, RecipientsRepository
from services.notification.adapters.webhook_repository import DeliveryRepository, EndpointRepository


class NotificationUnitOfWork(UnitOfWork):
    invoices: InvoiceFactsRepository
    messages: MessageRepository
    recipients: RecipientsRepository
    endpoints: EndpointRepository
    deliveries: DeliveryRepository
    reminders: ReminderRepository

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)

    async def __aenter__(self) -> NotificationUnitOfWork:
        await super().__aenter__()
        self.invoices = InvoiceFactsRepository(self.connection)
        self.messages = MessageRepository(self.connection)
        self.recipients = RecipientsRepository(self.connection)
        self.endpoints = EndpointRepository(self.connection)
        self.deliveries = DeliveryRepository(self.connection)
        self.reminders = ReminderRepository(self.connection)
        return self
