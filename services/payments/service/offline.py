"""Money received outside the provider (bank transfer, cheque, cash), recorded by an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.payments.domain import money
from services.payments.domain.entities import Payment
from services.payments.domain.payment import OFFLINE_METHODS, PaymentStatus, Provider
from services.payments.service import provider_reports
from services.payments.service.ports import UnitFactory

MAX_REFERENCE = 64
MAX_NOTE = 500


@dataclass(frozen=True)
class OfflinePayment:
    invoice_id: str
    amount_minor: int
    currency: str
    method: str
    reference: str
    note: str = ""
    received_at: datetime | None = None


async def record_offline_payment(uow: UnitFactory, command: OfflinePayment, now: datetime) -> tuple[Payment, bool]:
    """Record it once per (invoice, reference); returns (payment, created). The amount and currency are taken
    as the operator gives them: a partial payment leaves the invoice partially paid, and a currency or amount
    that does not fit goes to invoicing's review list rather than being refused here, because the money was
    received whatever it was."""
    if not command.invoice_id:
        raise InvalidArgument("is required", field="invoice_id")
    money.check_amount(command.amount_minor)
    money.check_currency(command.currency)
    if command.method not in OFFLINE_METHODS:
        raise InvalidArgument(f"must be one of {', '.join(OFFLINE_METHODS)}", field="method")
    reference = command.reference.strip()
    if not reference or len(reference) > MAX_REFERENCE:
        raise InvalidArgument(f"is required: the bank's UTR or the cheque number, at most {MAX_REFERENCE} characters",
                              field="reference")
    if len(command.note) > MAX_NOTE:
        raise InvalidArgument(f"must be at most {MAX_NOTE} characters", field="note")
    received = command.received_at or now
    if received > now:
        raise InvalidArgument("must not be in the future", field="receive_time")
    async with uow() as unit:
        invoice = await unit.invoices.get(command.invoice_id, lock=True)
        if invoice is None:
            raise NotFound(f"no issued invoice with id {command.invoice_id!r}")
        existing: Payment | None = await unit.payments.offline_by_reference(invoice.invoice_id, reference)
        if existing is not None:
            return existing, False
        payment = Payment(
            id=new_id("pmt"), invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id,
            provider=Provider.OFFLINE, status=PaymentStatus.CAPTURED, currency=command.currency,
            amount_minor=command.amount_minor, method=command.method, reference=reference, note=command.note,
            captured_at=received, authorized_at=received,
        )
        await provider_reports.record_captured(unit, payment, invoice)
    return payment, True
