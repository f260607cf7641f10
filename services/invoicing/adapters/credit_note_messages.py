"""Protobuf <-> domain for credit notes, and the ``credit_note.issued`` event."""

from __future__ import annotations

from billing.invoicing.v1 import events_pb2, invoicing_pb2
from billing_runtime.timestamps import to_timestamp
from services.invoicing.adapters.messages import party_to_pb
from services.invoicing.domain.credit_note import CreditNote, CreditNoteOutcome, CreditNoteReason, RefundState
from services.invoicing.domain.money import decimal_text

CREDIT_NOTE_ISSUED = "billing.invoicing.v1.credit_note.issued"

_REASONS = {
    invoicing_pb2.CreditNoteReason.Value(f"CREDIT_NOTE_REASON_{r.value.upper()}"): r for r in CreditNoteReason
}
_OUTCOMES = {
    invoicing_pb2.CreditNoteOutcome.Value(f"CREDIT_NOTE_OUTCOME_{o.value.upper()}"): o for o in CreditNoteOutcome
}
_REFUND_STATES = {
    s: invoicing_pb2.CreditNoteRefundState.Value(f"CREDIT_NOTE_REFUND_STATE_{s.value.upper()}") for s in RefundState
}
# Every value the contract names, to the domain's (a value added to one and not the other fails here, at import).
assert len(_REASONS) + 1 == len(invoicing_pb2.CreditNoteReason.keys()), "CreditNoteReason differs"
assert len(_OUTCOMES) + 1 == len(invoicing_pb2.CreditNoteOutcome.keys()), "CreditNoteOutcome differs"


def reason_from_pb(value: int) -> str:
    """The domain's reason code, or "" (which the use case refuses naming reason_code)."""
    reason = _REASONS.get(value)
    return reason.value if reason else ""


def outcome_from_pb(value: int) -> str:
    outcome = _OUTCOMES.get(value)
    return outcome.value if outcome else ""


def reason_to_pb(reason: CreditNoteReason) -> int:
    return invoicing_pb2.CreditNoteReason.Value(f"CREDIT_NOTE_REASON_{reason.value.upper()}")


def outcome_to_pb(outcome: CreditNoteOutcome) -> int:
    return invoicing_pb2.CreditNoteOutcome.Value(f"CREDIT_NOTE_OUTCOME_{outcome.value.upper()}")


def credit_note_to_pb(note: CreditNote) -> invoicing_pb2.CreditNote:
    message = invoicing_pb2.CreditNote(
        id=note.id,
        invoice_id=note.invoice_id,
        organisation_id=note.organisation_id,
        number=note.number,
        currency=note.currency,
        issue_date=note.issue_date.isoformat(),
        reason_code=reason_to_pb(note.reason_code),
        reason=note.reason,
        outcome=outcome_to_pb(note.outcome),
        lines=[
            invoicing_pb2.CreditNoteLine(
                invoice_line_number=line.invoice_line_number, description=line.description,
                quantity=decimal_text(line.quantity), unit_price=decimal_text(line.unit_price),
                amount_minor=line.amount_minor, gst_rate=decimal_text(line.gst_rate), sac_code=line.sac_code,
            )
            for line in note.lines
        ],
        tax_lines=[
            invoicing_pb2.TaxLine(
                kind=invoicing_pb2.TaxKind.Value(f"TAX_KIND_{tax.kind.value}"), rate=decimal_text(tax.rate),
                taxable_minor=tax.taxable_minor, amount_minor=tax.amount_minor,
            )
            for tax in note.tax_lines
        ],
        subtotal_minor=note.subtotal_minor,
        tax_minor=note.tax_minor,
        total_minor=note.total_minor,
        invoice_number=note.invoice_number,
        invoice_issue_date=note.invoice_issue_date.isoformat() if note.invoice_issue_date else "",
        tax_regime=invoicing_pb2.TaxRegime.Value(f"TAX_REGIME_{note.tax_regime.value.upper()}"),
        place_of_supply=note.place_of_supply,
        supplier=party_to_pb(note.supplier),
        customer=party_to_pb(note.customer),
        applied_to_due_minor=note.applied_to_due_minor,
        refund_minor=note.refund_minor,
        credit_minor=note.credit_minor,
        refund_state=_REFUND_STATES[note.refund_state],
        refund_ids=list(note.refund_ids),
        refund_error=note.refund_error,
        whole=note.whole,
    )
    if note.created_at is not None:
        message.create_time.CopyFrom(to_timestamp(note.created_at))
    return message


def credit_note_issued(event_id: str, note: CreditNote, invoice_amount_due_minor: int) -> events_pb2.CreditNoteIssued:
    return events_pb2.CreditNoteIssued(
        event_id=event_id,
        credit_note_id=note.id,
        invoice_id=note.invoice_id,
        organisation_id=note.organisation_id,
        currency=note.currency,
        total_minor=note.total_minor,
        applied_to_due_minor=note.applied_to_due_minor,
        refund_minor=note.refund_minor,
        credit_minor=note.credit_minor,
        outcome=outcome_to_pb(note.outcome),
        number=note.number,
        invoice_amount_due_minor=invoice_amount_due_minor,
    )
