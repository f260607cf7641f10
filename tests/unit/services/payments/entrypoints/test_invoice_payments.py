"""GetInvoicePayments reports what credit notes took off an invoice and what payments is collecting now, so no
client has to work "due" out of the total, captures and refunds (which leave credit notes out)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.payments.v1 import payments_pb2
from services.payments.domain.entities import InvoiceState
from services.payments.entrypoints.grpc import Collecting, PaymentsServicer
from services.payments.service import checkout, invoices, webhooks
from services.payments.service.invoices import CreditOutcome
from services.payments.service.ports import Providers
from tests.unit.services.payments.service.fakes import FakeProvider
from tests.unit.services.payments.service.test_partial_credit import (
    BACKOFF,
    CAPTURE_AFTER,
    NOW,
    RULES,
    TOTAL,
    credit,
    issued,
    note,
    paid,
    work,
)


@pytest.fixture
def providers() -> Providers:
    return Providers(FakeProvider())


def servicer(uow, providers: Providers) -> PaymentsServicer:
    return PaymentsServicer(uow, Collecting(providers, checkout.Merchant("Demo", "rzp_test_fake", ""), "secret",
                                            BACKOFF, CAPTURE_AFTER, RULES))


async def amounts(uow, providers: Providers) -> tuple[int, int, int, int]:
    """(total, captured, credited, due) as GetInvoicePayments answers them."""
    reply = await servicer(uow, providers).GetInvoicePayments(
        payments_pb2.GetInvoicePaymentsRequest(invoice_id="inv_1"), None)
    return reply.total_minor, reply.amount_captured_minor, reply.amount_credited_minor, reply.amount_due_minor


async def test_without_a_credit_note_the_whole_total_is_due(uow, providers):
    await issued(uow, providers)
    assert await amounts(uow, providers) == (TOTAL, 0, 0, TOTAL)


async def test_a_partial_credit_note_and_a_part_payment_lower_what_is_due_and_a_settled_invoice_owes_nothing(
        uow, store, providers):
    old = await issued(uow, providers)
    assert await credit(uow, note(1, 41417, TOTAL - 41417)) is CreditOutcome.COLLECTING_LESS
    assert await amounts(uow, providers) == (TOTAL, 0, 41417, TOTAL - 41417)
    await work(uow, providers)
    # Part of it paid on the order the credit note replaced (still the invoice's).
    await webhooks.process(uow, paid(old, 50000, "pay_part"), NOW, CAPTURE_AFTER)
    assert await amounts(uow, providers) == (TOTAL, 50000, 41417, TOTAL - 41417 - 50000)
    new = store.orders["inv_1"].provider_order_id
    await webhooks.process(uow, paid(new, TOTAL - 41417 - 50000, "pay_rest"), NOW + timedelta(minutes=1),
                           CAPTURE_AFTER)
    assert store.invoices["inv_1"].state is InvoiceState.SETTLED
    assert await amounts(uow, providers) == (TOTAL, TOTAL - 41417, 41417, 0)


async def test_a_credit_in_full_leaves_nothing_due(uow, providers):
    await issued(uow, providers)
    assert await credit(uow, note(1, TOTAL, 0)) is CreditOutcome.CREDITED_IN_FULL
    assert await amounts(uow, providers) == (TOTAL, 0, TOTAL, 0)


async def test_a_void_invoice_is_no_longer_collected(uow, store, providers):
    await issued(uow, providers)
    await credit(uow, note(1, 1000, TOTAL - 1000))
    assert await invoices.void(uow, "inv_1", NOW)
    # Its due_minor is still positive: nobody is asked for it.
    assert store.invoices["inv_1"].due_minor == TOTAL - 1000
    assert await amounts(uow, providers) == (TOTAL, 0, 1000, 0)
