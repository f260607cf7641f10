"""Issuing credit notes with in-memory fakes: numbers in their own series per financial year, the invoice's
settlement recomputed, the event for the wallets, idempotent retries, nothing changed by a refusal, and the refund
asked of payments once per payment (left pending while payments is unreachable, asked again on a retry)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.invoicing.domain.credit_note import RefundState
from services.invoicing.domain.invoice import InvoiceStatus, TaxRegime
from services.invoicing.domain.settlement import RecordedSettlement, Settlement, SettlementKind
from services.invoicing.service.credit_notes import CreateCreditNote, CreditNotes, RequestedLine
from tests.unit.services.invoicing.domain.credit_note_fixtures import ten_thousand_rupees
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TOTAL = 1_180_000


class Refunds:
    def __init__(self, failing: Exception | None = None) -> None:
        self.asked: list[tuple[str, int, str]] = []
        self.failing = failing

    async def refund(self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str) -> str:
        self.asked.append((payment_id, amount_minor, idempotency_key))
        if self.failing is not None:
            raise self.failing
        return f"rfd_{len(self.asked)}"


def setup(*, paid: int = 0, refunds: Refunds | None = None) -> tuple[Tables, CreditNotes, Refunds]:
    tables = Tables()
    invoice = ten_thousand_rupees(TaxRegime.INTRA_STATE, paid=paid)
    if paid:
        invoice = replace(invoice, status=InvoiceStatus.PAID)
        captured = Settlement("evt_pay", SettlementKind.PAYMENT_CAPTURED, NOW, paid, "INR", payment_id="pay_1",
                              provider="razorpay")
        tables.settlements[invoice.id] = [RecordedSettlement(invoice.id, captured, NOW, True)]
    tables.invoices[invoice.id] = invoice
    refunds = refunds or Refunds()
    service = CreditNotes(lambda: FakeUnitOfWork(tables), FakeOutbox(), refunds, clock=lambda: NOW)
    return tables, service, refunds


def partial(amount: int, key: str = "k1", outcome: str = "credit") -> CreateCreditNote:
    return CreateCreditNote("inv_1", "service_issue", "Outage", outcome, lines=(RequestedLine(1, amount),),
                            idempotency_key=key)


def whole(key: str = "k2", outcome: str = "credit") -> CreateCreditNote:
    return CreateCreditNote("inv_1", "cancellation", "Cancelled", outcome, whole=True, idempotency_key=key)


async def test_partial_then_whole_numbers_in_sequence_and_settles_the_unpaid_invoice():
    tables, service, _ = setup()
    first, created = await service.create(partial(250_000))
    assert created and first.number == "CN/2627/00001" and first.total_minor == 295_000
    assert (first.applied_to_due_minor, first.credit_minor, first.refund_state) == (295_000, 0, RefundState.NOT_NEEDED)
    invoice = tables.invoices["inv_1"]
    assert (invoice.status, invoice.amount_due_minor, invoice.amount_credited_minor) == (
        InvoiceStatus.ISSUED, TOTAL - 295_000, 295_000)
    second, _ = await service.create(whole())
    assert second.number == "CN/2627/00002" and second.total_minor == TOTAL - 295_000
    invoice = tables.invoices["inv_1"]
    assert (invoice.status, invoice.amount_due_minor) == (InvoiceStatus.PAID, 0)
    assert tables.status_changes == [("inv_1", "issued", "paid", f"credit note {second.id}")]
    assert [(subject, event_id) for subject, event_id, _ in tables.outbox] == [
        ("billing.invoicing.v1.credit_note.issued", f"credit_note.issued:{first.id}"),
        ("billing.invoicing.v1.credit_note.issued", f"credit_note.issued:{second.id}")]
    assert tables.outbox[1][2].invoice_amount_due_minor == 0


async def test_a_retry_is_the_first_credit_note_and_a_reused_key_is_refused():
    tables, service, _ = setup()
    first, _ = await service.create(partial(250_000))
    again, created = await service.create(partial(250_000))
    assert (again.id, created, len(tables.credit_notes)) == (first.id, False, 1)
    with pytest.raises(Conflict):
        await service.create(partial(1))
    assert tables.invoices["inv_1"].amount_credited_minor == 295_000


async def test_refusals_change_nothing():
    tables, service, _ = setup()
    for command, error, field in [
        (partial(1_000_001, "a"), InvalidArgument, "lines[0].amount_minor"),
        (CreateCreditNote("inv_1", "nope", "x", "credit", whole=True), InvalidArgument, "reason_code"),
        (CreateCreditNote("inv_1", "other", "x", "cash", whole=True), InvalidArgument, "outcome"),
        (CreateCreditNote("inv_1", "other", "x", "credit"), InvalidArgument, "lines"),
        (CreateCreditNote("inv_1", "other", "x", "credit", whole=True, lines=(RequestedLine(1, 1),)),
         InvalidArgument, "lines"),
        (CreateCreditNote("inv_1", "other", "x", "credit", lines=(RequestedLine(1, 0, "1.5e"),)), InvalidArgument,
         "lines[0].quantity"),
        (CreateCreditNote("", "other", "x", "credit", whole=True), InvalidArgument, "invoice_id"),
    ]:
        with pytest.raises(error) as caught:
            await service.create(command)
        assert caught.value.field == field
    with pytest.raises(NotFound):
        await service.create(CreateCreditNote("inv_nope", "other", "x", "credit", whole=True))
    assert tables.credit_notes == {} and tables.outbox == [] and tables.number_series == {}


async def test_a_paid_invoice_is_refunded_once_per_payment():
    tables, service, refunds = setup(paid=TOTAL)
    note, _ = await service.create(partial(250_000, outcome="refund"))
    assert (note.refund_minor, note.refund_state, note.refund_ids) == (295_000, RefundState.REQUESTED, ("rfd_1",))
    assert refunds.asked == [("pay_1", 295_000, f"{note.id}:pay_1")]
    await service.create(partial(250_000, outcome="refund"))
    assert len(refunds.asked) == 1
    # The rest, refunded too: the first refund counts as refunded even before settlement saw it.
    rest, _ = await service.create(whole(outcome="refund"))
    assert rest.refund_minor == TOTAL - 295_000 and refunds.asked[-1] == ("pay_1", TOTAL - 295_000,
                                                                          f"{rest.id}:pay_1")


async def test_payments_unreachable_leaves_the_refund_pending_and_a_retry_asks_again():
    failing = Refunds(Unavailable("service unavailable"))
    tables, service, refunds = setup(paid=TOTAL, refunds=failing)
    note, created = await service.create(partial(250_000, outcome="refund"))
    assert created and note.refund_state is RefundState.PENDING
    refunds.failing = None
    again, created = await service.create(partial(250_000, outcome="refund"))
    assert (created, again.refund_state, len(refunds.asked)) == (False, RefundState.REQUESTED, 2)
    assert refunds.asked[0][2] == refunds.asked[1][2]  # the same idempotency key: payments refunds once


async def test_a_refusal_by_payments_is_kept_for_a_person():
    refused = Refunds(FailedPrecondition("only 100 left to refund"))
    tables, service, _ = setup(paid=TOTAL, refunds=refused)
    note, _ = await service.create(partial(250_000, outcome="refund"))
    assert note.refund_state is RefundState.FAILED and "only 100 left" in note.refund_error
