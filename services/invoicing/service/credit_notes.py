"""Credit notes: issuing one against an issued invoice, asking payments for its refund, reading them.

Issuing is one transaction: lock the invoice row (so two credit notes of one invoice queue, and each sees what
the other took), read its earlier credit notes, compute what this one takes and its reversed GST
(``domain/credit_note.py``), take the next number of the credit-note series for the financial year (the series
row stays locked until commit: no gaps, no reuse), store it and add its total to the invoice's credited amount,
recompute the invoice's settlement with it (an unpaid invoice now owes less; one credited in full owes nothing and
is settled), leave what it does not refund with the customer as a prepaid credit grant (outcome ``credit``), and
record ``credit_note.issued`` in the outbox.

A refund is asked of payments after that commit (a network call never holds the invoice's lock), once per
captured payment it draws on, with the idempotency key "<credit note id>:<payment id>", so asking again (a retry
of the create with the same idempotency key, after payments was unreachable) never refunds twice. Payments'
refund.processed events then reach settlement like any refund: the invoice becomes partially refunded or
refunded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from billing_runtime import paging
from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.invoicing.adapters import credit_note_messages as messages
from services.invoicing.domain.billing_period import zone_of
from services.invoicing.domain.credit import GrantSource, grant_terms
from services.invoicing.domain.credit_note import (
    DEFAULT_SERIES,
    CreditNote,
    CreditNoteOutcome,
    CreditNoteReason,
    LineCredit,
    RefundState,
    credit_amounts,
    format_credit_note_number,
    split_outcome,
    validate_outcome,
    validate_reason,
)
from services.invoicing.domain.invoice import Invoice
from services.invoicing.domain.invoice_number import financial_year
from services.invoicing.domain.money import parse_decimal
from services.invoicing.domain.settlement import InvoiceTerms, Settlement, SettlementKind, settle
from services.invoicing.service import einvoicing
from services.invoicing.service.credits import add_grant
from services.invoicing.service.einvoicing import DISABLED, EinvoicePolicy
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.organisations import existing_organisation
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction, PaymentRefunds

log = get_logger(__name__)

MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class RequestedLine:
    """A line of the request as it came: a line number and an amount (minor units) or a quantity (text)."""

    line_number: int
    amount_minor: int = 0
    quantity: str = ""


@dataclass(frozen=True)
class CreateCreditNote:
    invoice_id: str
    reason_code: str
    reason: str
    outcome: str
    whole: bool = False
    lines: tuple[RequestedLine, ...] = ()
    idempotency_key: str = ""


def _parse_lines(command: CreateCreditNote) -> list[LineCredit] | None:
    if command.whole:
        if command.lines:
            raise InvalidArgument("must be empty when the whole invoice is credited", field="lines")
        return None
    if not command.lines:
        raise InvalidArgument("name at least one line, or set whole to credit the whole invoice", field="lines")
    parsed = []
    for index, line in enumerate(command.lines):
        quantity = parse_decimal(line.quantity, f"lines[{index}].quantity") if line.quantity else Decimal(0)
        parsed.append(LineCredit(line.line_number, line.amount_minor, quantity))
    return parsed


class CreditNotes:
    def __init__(
        self,
        uow: Callable[[], InvoicingTransaction],
        outbox: EventOutbox,
        refunds: PaymentRefunds,
        *,
        time_zone: str = "Asia/Kolkata",
        series: str = DEFAULT_SERIES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        einvoicing: EinvoicePolicy = DISABLED,
    ) -> None:
        self._einvoicing = einvoicing
        self._uow = uow
        self._outbox = outbox
        self._refunds = refunds
        self._zone = zone_of(time_zone)
        self._series = series
        self._clock = clock

    async def create(self, command: CreateCreditNote) -> tuple[CreditNote, bool]:
        """Issue a credit note (see the module docstring); (credit note, created). A repeat with the same
        idempotency key returns the first (asking payments again for a refund it has not taken yet); the key with
        another request is CONFLICT."""
        if not command.invoice_id:
            raise InvalidArgument("is required", field="invoice_id")
        if len(command.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument(f"must be at most {MAX_IDEMPOTENCY_KEY} characters", field="idempotency_key")
        reason_code, reason = validate_reason(command.reason_code, command.reason)
        outcome = validate_outcome(command.outcome)
        requested = _parse_lines(command)
        request_print = fingerprint(
            {"invoice_id": command.invoice_id, "reason_code": reason_code.value, "reason": reason,
             "outcome": outcome.value, "whole": command.whole,
             "lines": [(x.line_number, x.amount_minor, str(x.quantity)) for x in requested or ()]}
        )
        now = self._clock()
        async with self._uow() as uow:
            # The invoice's row lock first: two deliveries of one request (a client's retry racing its first try)
            # queue on it, and the second then finds the first's key rather than tripping its unique index.
            invoice = await uow.invoices.get(command.invoice_id, for_update=True)
            found = await uow.credit_notes.made_with_key(command.idempotency_key)
            if found is not None:
                note, first_print = found
                if first_print != request_print:
                    raise Conflict("was already used for a different credit note", field="idempotency_key")
                created = False
            else:
                if invoice is None:
                    raise NotFound(f"no invoice with id {command.invoice_id!r}")
                note = await self._issue(uow, invoice, command, requested, reason_code, reason, outcome,
                                         request_print, now)
                created = True
        if note.refund_state is RefundState.PENDING:
            note = await self._request_refund(note)
        return note, created

    async def _issue(
        self, uow: InvoicingTransaction, invoice: Invoice, command: CreateCreditNote,
        requested: list[LineCredit] | None, reason_code: CreditNoteReason, reason: str, outcome: CreditNoteOutcome,
        request_print: str, now: datetime,
    ) -> CreditNote:
        earlier = await uow.credit_notes.of_invoice(invoice.id)
        amounts = credit_amounts(invoice, earlier, requested)
        refunded_by_notes = sum(n.refund_minor for n in earlier)
        # Refunds asked for by earlier credit notes may not have reached settlement yet: count the larger.
        refundable = invoice.amount_paid_minor - max(invoice.amount_refunded_minor, refunded_by_notes)
        assert invoice.amount_due_minor is not None
        split = split_outcome(amounts.total_minor, invoice.amount_due_minor, refundable, outcome, invoice.currency)
        issue_date = now.astimezone(self._zone).date()
        fy = financial_year(issue_date)
        (sequence,) = await uow.invoices.take_numbers(f"credit_note:{self._series}", fy, 1)
        note = CreditNote(
            id=new_id("cn"), invoice_id=invoice.id, organisation_id=invoice.organisation_id,
            number=format_credit_note_number(self._series, fy, sequence), currency=invoice.currency,
            issue_date=issue_date, reason_code=reason_code, reason=reason, outcome=outcome, lines=amounts.lines,
            tax_lines=amounts.tax_lines, subtotal_minor=amounts.subtotal_minor, tax_minor=amounts.tax_minor,
            total_minor=amounts.total_minor, invoice_number=invoice.number, invoice_issue_date=invoice.issue_date,
            tax_regime=invoice.tax_regime, place_of_supply=invoice.place_of_supply, supplier=invoice.supplier,
            customer=invoice.customer, applied_to_due_minor=split.applied_to_due_minor,
            refund_minor=split.refund_minor, credit_minor=split.credit_minor,
            refund_state=RefundState.PENDING if split.refund_minor else RefundState.NOT_NEEDED,
            whole=requested is None, created_at=now, time_zone=invoice.time_zone,
        )
        await uow.credit_notes.add(note, idempotency_key=command.idempotency_key, fingerprint=request_print)
        # An e-invoiced invoice's credit note is e-invoiced too (Typ CRN), queued as invoices are.
        await einvoicing.queue_credit_note(uow, self._einvoicing, note, invoice, now)
        if note.credit_minor:
            await self._leave_credit(uow, note, now)
        due_after = await self._resettle(uow, invoice, note, now)
        event_id = f"credit_note.issued:{note.id}"
        await self._outbox.record(uow, messages.CREDIT_NOTE_ISSUED, event_id,
                                  messages.credit_note_issued(event_id, note, due_after))
        return note

    @staticmethod
    async def _leave_credit(uow: InvoicingTransaction, note: CreditNote, now: datetime) -> None:
        """What the credit note leaves with the customer becomes prepaid credit (``domain/credit.py``), spent on
        their next invoices, in the transaction that issues the note: once, keyed by the credit note."""
        organisation = await existing_organisation(uow, note.organisation_id)
        terms = grant_terms(
            currency=note.currency, amount_minor=note.credit_minor, priority=0, source=GrantSource.CREDIT_NOTE.value,
            expires_at=None, source_id=note.id, description=f"Credit note {note.number}",
            organisation_currency=organisation.details.billing_currency, now=now,
        )
        await add_grant(uow, organisation.id, terms, "", now)

    async def _resettle(self, uow: InvoicingTransaction, invoice: Invoice, note: CreditNote, now: datetime) -> int:
        """The invoice's settlement recomputed with the credit note counted; its amount due after."""
        recorded = await uow.settlements.for_invoice(invoice.id)
        earlier = [n for n in await uow.credit_notes.of_invoice(invoice.id) if n.id != note.id]
        terms = InvoiceTerms(invoice.currency, invoice.payable_minor,
                             credited_minor=invoice.amount_credited_minor + note.total_minor,
                             credited_against_due_minor=sum(n.applied_to_due_minor for n in [*earlier, note]))
        balance = settle(terms, [r.settlement for r in recorded]).balance
        await uow.invoices.set_balance(invoice.id, balance)
        if balance.status is not invoice.status:
            await uow.settlements.add_status_change(
                invoice.id, invoice.status, balance.status, now,
                reason=f"credit note {note.number} issued", cause=f"credit note {note.id}",
            )
        return balance.amount_due_minor

    async def _request_refund(self, note: CreditNote) -> CreditNote:
        """Ask payments to refund the credit note's refund amount from the invoice's captured payments, newest
        first; record what it took (or why it refused). Payments unreachable leaves it pending (the
        credit note returned as it is: a retry of the create asks again)."""
        async with self._uow() as uow:
            recorded = await uow.settlements.for_invoice(note.invoice_id)
        left = _refundable_by_payment([r.settlement for r in recorded if r.applied])
        remaining = note.refund_minor
        refund_ids: list[str] = []
        error = ""
        for payment_id, available in reversed(left):
            if remaining <= 0:
                break
            take = min(available, remaining)
            if take <= 0:
                continue
            reason = f"credit note {note.number}"
            try:
                refund_ids.append(await self._refunds.refund(payment_id, take, reason, f"{note.id}:{payment_id}"))
            except (Conflict, FailedPrecondition, InvalidArgument, NotFound) as refused:
                # Payments said no (nothing left on the payment, ...): kept with the reason, for a person.
                error = str(refused)[:500]
                break
            except Exception as failure:  # noqa: BLE001 - whatever it is, the credit note stands
                # Unreachable or failing: may be transient, so the credit note stays pending and says so (a retry
                # of the create asks again; what was taken is found again by its idempotency key).
                log.warning("credit note refund not taken yet", credit_note_id=note.id, error=str(failure))
                return note
            remaining -= take
        if not error and remaining > 0:
            error = f"{remaining} minor units found no captured payment to refund from"
        state = RefundState.FAILED if error else RefundState.REQUESTED
        async with self._uow() as uow:
            await uow.credit_notes.set_refund(note.id, state, refund_ids, error)
            stored = await uow.credit_notes.get(note.id)
        assert stored is not None
        return stored

    async def get(self, credit_note_id: str) -> CreditNote:
        if not credit_note_id:
            raise InvalidArgument("is required", field="credit_note_id")
        async with self._uow() as uow:
            note = await uow.credit_notes.get(credit_note_id)
        if note is None:
            raise NotFound(f"no credit note with id {credit_note_id!r}")
        return note

    async def get_with_invoice(self, credit_note_id: str) -> tuple[CreditNote, Invoice]:
        note = await self.get(credit_note_id)
        async with self._uow() as uow:
            invoice = await uow.invoices.get(note.invoice_id)
        assert invoice is not None  # a credit note's invoice is never deleted (foreign key)
        return note, invoice

    async def list(
        self, *, invoice_id: str = "", organisation_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[CreditNote], str]:
        """Newest first."""
        size, before = paging.page_size(page_size), paging.page_after(page_token)
        async with self._uow() as uow:
            if invoice_id and await uow.invoices.get(invoice_id) is None:
                raise NotFound(f"no invoice with id {invoice_id!r}")
            found = await uow.credit_notes.list(
                invoice_id=invoice_id, organisation_id=organisation_id, limit=size + 1, before=before
            )
        return paging.split_page(found, size)


def _refundable_by_payment(settlements: Sequence[Settlement]) -> list[tuple[str, int]]:
    """(payment id, captured less processed refunds) per captured payment, in capture order."""
    captured: dict[str, int] = {}
    for s in settlements:
        if s.kind is SettlementKind.PAYMENT_CAPTURED and s.payment_id and s.amount_minor > 0:
            captured[s.payment_id] = captured.get(s.payment_id, 0) + s.amount_minor
    for s in settlements:
        if s.kind is SettlementKind.REFUND_PROCESSED and s.payment_id in captured:
            captured[s.payment_id] -= s.amount_minor
    return list(captured.items())

