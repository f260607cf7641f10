"""Credit notes through gRPC against the real invoicing service and PostgreSQL: a partial then a full credit of an
issued invoice (numbers in sequence, GST reversed, the invoice owing less and then nothing), over-credit refused,
idempotent retries, the PDF and HTML; and on a paid invoice, the refund asked of payments once, by the credit
note's id, with settlement then seeing the refund."""

from __future__ import annotations

import asyncio
import re
from functools import partial

import grpc
import sqlalchemy as sa

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2 as pb
from services.invoicing.adapters.tables import outbox
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.domain.credit_note import RefundState
from services.invoicing.service.credit_notes import CreateCreditNote, CreditNotes, RequestedLine
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.test_settlement import Payments, invoice_when, issued_invoice, payments_stream
from tests.integration.metering.conftest import eventually

__all__ = ["payments_stream"]

TOTAL = 1_180_000  # a base fee of 10,000.00 INR + 18 % GST
ISSUED = "billing.invoicing.v1.credit_note.issued"


def request(invoice: pb.Invoice, key: str, *, amount: int = 0, whole: bool = False,
            outcome: int = pb.CREDIT_NOTE_OUTCOME_CREDIT) -> pb.CreateCreditNoteRequest:
    lines = [] if whole else [pb.CreditNoteLineRequest(line_number=1, amount_minor=amount)]
    return pb.CreateCreditNoteRequest(
        invoice_id=invoice.id, whole=whole, lines=lines, reason_code=pb.CREDIT_NOTE_REASON_SERVICE_ISSUE,
        reason="Outage on 12 Sep: 25% of the month's fee back", outcome=outcome, idempotency_key=key,
    )


async def get_invoice(stub, invoice_id: str) -> pb.Invoice:
    return (await stub.GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice_id))).invoice


async def issued_events(invoicing, credit_note_id: str) -> list[invoicing_events.CreditNoteIssued]:
    async with invoicing.engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(outbox.c.payload).where(outbox.c.subject == ISSUED,
                                              outbox.c.event_id == f"credit_note.issued:{credit_note_id}")
        )).scalars().all()
    return [invoicing_events.CreditNoteIssued.FromString(bytes(row)) for row in rows]


async def test_partial_then_full_credit_of_an_unpaid_invoice(invoicing, invoicing_stub, metering):
    invoice = await issued_invoice(invoicing, invoicing_stub, base_fee="10000")
    assert invoice.total_minor == TOTAL
    tag = invoice.id

    first = await invoicing_stub.CreateCreditNote(request(invoice, f"{tag}-1", amount=250_000))
    note = first.credit_note
    assert first.created
    assert re.fullmatch(r"CN/\d{4}/\d{5}", note.number) and len(note.number) <= 16
    assert (note.subtotal_minor, note.tax_minor, note.total_minor) == (250_000, 45_000, 295_000)
    assert sum(t.amount_minor for t in note.tax_lines) == 45_000
    assert {t.kind for t in note.tax_lines} <= {pb.TAX_KIND_CGST, pb.TAX_KIND_SGST, pb.TAX_KIND_IGST}
    assert (note.applied_to_due_minor, note.refund_minor, note.credit_minor) == (295_000, 0, 0)
    assert note.refund_state == pb.CREDIT_NOTE_REFUND_STATE_NOT_NEEDED
    assert (note.invoice_number, note.invoice_issue_date) == (invoice.number, invoice.issue_date)
    after = await get_invoice(invoicing_stub, invoice.id)
    assert (after.status, after.amount_due_minor, after.amount_credited_minor) == (
        pb.INVOICE_STATUS_ISSUED, TOTAL - 295_000, 295_000)

    # A retry is the same credit note; the key with another request is refused; nothing more is credited.
    again = await invoicing_stub.CreateCreditNote(request(invoice, f"{tag}-1", amount=250_000))
    assert (again.created, again.credit_note.id, again.credit_note.number) == (False, note.id, note.number)
    await expect_rpc_error(invoicing_stub.CreateCreditNote(request(invoice, f"{tag}-1", amount=1)),
                           grpc.StatusCode.ABORTED)
    # Over-credit: the line has 7,500.00 left.
    error = await expect_rpc_error(invoicing_stub.CreateCreditNote(request(invoice, f"{tag}-2", amount=750_001)),
                                   grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "lines[0].amount_minor"
    refused = pb.CreateCreditNoteRequest(invoice_id=invoice.id, whole=True, reason="x", idempotency_key=f"{tag}-3",
                                         outcome=pb.CREDIT_NOTE_OUTCOME_CREDIT)
    error = await expect_rpc_error(invoicing_stub.CreateCreditNote(refused), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "reason_code"
    assert (await get_invoice(invoicing_stub, invoice.id)).amount_credited_minor == 295_000

    full = (await invoicing_stub.CreateCreditNote(request(invoice, f"{tag}-4", whole=True))).credit_note
    assert full.whole
    assert (full.subtotal_minor, full.tax_minor, full.total_minor) == (750_000, 135_000, 885_000)
    fy, sequence = note.number.split("/")[1:]
    assert full.number == f"CN/{fy}/{int(sequence) + 1:05d}"  # the next number: no gap
    settled = await get_invoice(invoicing_stub, invoice.id)
    assert (settled.status, settled.amount_due_minor, settled.amount_credited_minor) == (
        pb.INVOICE_STATUS_PAID, 0, TOTAL)
    await expect_rpc_error(invoicing_stub.CreateCreditNote(request(invoice, f"{tag}-5", whole=True)),
                           grpc.StatusCode.FAILED_PRECONDITION)

    listed = await invoicing_stub.ListCreditNotes(pb.ListCreditNotesRequest(invoice_id=invoice.id))
    assert [n.id for n in listed.credit_notes] == [full.id, note.id]
    by_org = await invoicing_stub.ListCreditNotes(pb.ListCreditNotesRequest(organisation_id=invoice.organisation_id))
    assert len(by_org.credit_notes) == 2
    got = (await invoicing_stub.GetCreditNote(pb.GetCreditNoteRequest(credit_note_id=note.id))).credit_note
    assert got == note
    await expect_rpc_error(invoicing_stub.GetCreditNote(pb.GetCreditNoteRequest(credit_note_id="cn_nope")),
                           grpc.StatusCode.NOT_FOUND)

    pdf = await invoicing_stub.RenderCreditNote(pb.RenderCreditNoteRequest(credit_note_id=note.id))
    assert pdf.content.startswith(b"%PDF") and pdf.content_type == "application/pdf"
    assert pdf.filename == note.number.replace("/", "-") + ".pdf"
    html = await invoicing_stub.RenderCreditNote(
        pb.RenderCreditNoteRequest(credit_note_id=note.id, format=pb.INVOICE_FORMAT_HTML))
    text = html.content.decode()
    assert "CREDIT NOTE" in text and invoice.number in text and note.number in text and "2,950.00" in text

    (event,) = await issued_events(invoicing, note.id)
    assert (event.total_minor, event.credit_minor, event.currency, event.organisation_id) == (
        295_000, 0, "INR", invoice.organisation_id)
    assert event.invoice_amount_due_minor == TOTAL - 295_000


class FakeRefunds:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int, str]] = []

    async def refund(self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str) -> str:
        self.asked.append((payment_id, amount_minor, idempotency_key))
        return f"rfd_{len(self.asked)}"


async def test_a_paid_invoice_is_refunded_through_payments_once(invoicing, invoicing_stub, metering, payments_stream):
    invoice = await issued_invoice(invoicing, invoicing_stub, base_fee="10000")
    payments = Payments(payments_stream, invoice)
    await payments.publish(payments.captured("p", TOTAL))
    await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)

    refunds = FakeRefunds()
    notes = CreditNotes(partial(InvoicingUnitOfWork, invoicing.engine), invoicing.outbox, refunds)
    command = CreateCreditNote(invoice.id, "billing_error", "Overcharged", "refund",
                               lines=(RequestedLine(1, amount_minor=250_000),), idempotency_key=f"{invoice.id}-r")
    note, created = await notes.create(command)
    assert created and note.refund_state is RefundState.REQUESTED and note.refund_ids == ("rfd_1",)
    assert (note.applied_to_due_minor, note.refund_minor) == (0, 295_000)
    payment_id = f"pmt_{payments.tag}_p"
    assert refunds.asked == [(payment_id, 295_000, f"{note.id}:{payment_id}")]
    again, created = await notes.create(command)
    assert (again.id, created, len(refunds.asked)) == (note.id, False, 1)

    # Payments unreachable (the service's own client: nothing listens there in these tests): the credit note
    # stands, its refund pending, and a retry asks again.
    pending = (await invoicing_stub.CreateCreditNote(
        request(invoice, f"{invoice.id}-p", amount=100_000, outcome=pb.CREDIT_NOTE_OUTCOME_REFUND))).credit_note
    assert pending.refund_state == pb.CREDIT_NOTE_REFUND_STATE_PENDING and pending.refund_minor == 118_000

    # Payments' refund.processed reaches settlement as any refund does.
    await payments.publish(payments.refunded("r1", 295_000))
    refunded = await invoice_when(invoicing_stub, invoice.id,
                                  lambda i: i.status == pb.INVOICE_STATUS_PARTIALLY_REFUNDED)
    assert (refunded.amount_paid_minor, refunded.amount_refunded_minor, refunded.amount_due_minor) == (
        TOTAL, 295_000, 0)
    assert refunded.amount_credited_minor == 295_000 + 118_000

    # The rest left as credit: the whole remaining total, a prepaid credit grant keyed by the credit note, and
    # announced.
    rest = (await invoicing_stub.CreateCreditNote(request(invoice, f"{invoice.id}-c", whole=True))).credit_note
    assert rest.credit_minor == TOTAL - 295_000 - 118_000 and rest.refund_minor == 0
    (event,) = await eventually(lambda: issued_events(invoicing, rest.id), lambda found: len(found) == 1)
    assert (event.credit_minor, event.outcome) == (rest.credit_minor, pb.CREDIT_NOTE_OUTCOME_CREDIT)
    balance = await invoicing_stub.GetCreditBalance(
        pb.GetCreditBalanceRequest(organisation_id=invoice.organisation_id))
    (grant,) = balance.grants
    assert (grant.source, grant.source_id, grant.amount_minor, grant.status) == (
        pb.CREDIT_GRANT_SOURCE_CREDIT_NOTE, rest.id, rest.credit_minor, pb.CREDIT_GRANT_STATUS_AVAILABLE)
    assert [(b.currency, b.available_minor) for b in balance.balances] == [("INR", rest.credit_minor)]


async def test_a_retry_racing_its_first_try_makes_one_credit_note(invoicing, invoicing_stub, metering):
    invoice = await issued_invoice(invoicing, invoicing_stub, base_fee="10000")
    both = await asyncio.gather(*(invoicing_stub.CreateCreditNote(request(invoice, f"{invoice.id}-race", amount=1))
                                  for _ in range(2)))
    assert sorted(r.created for r in both) == [False, True]
    assert both[0].credit_note.id == both[1].credit_note.id
    assert (await get_invoice(invoicing_stub, invoice.id)).amount_credited_minor == 1  # its GST rounds to 0
