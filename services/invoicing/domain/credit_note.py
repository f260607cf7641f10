"""Credit notes: adjustments to an issued invoice after issue, full or partial, with GST reversed.

What a credit note may take (integer minor units of the invoice's currency)
- Per line: a line's amount less what earlier credit notes took from it (``remaining``). A partial credit note
  names lines with an amount or a quantity off each (only lines that charge something: base fee, usage, minimum
  spend); a whole credit note takes every line's remaining amount, discount lines included, so it mirrors the
  invoice.
- Per GST rate: the invoice's net taxable amount at that rate (its lines, discounts included) less what earlier
  credit notes took at that rate. This is what keeps a partial credit of a discounted line from exceeding the
  invoice.

GST reversed
- Each of the invoice's tax lines (CGST and SGST at half the rate, or IGST) is reversed in proportion to the
  taxable amount credited at its rate, computed on the running total: after credit notes that took ``x`` of the
  rate's taxable ``t``, the tax reversed so far is ``round_half_up(tax * x / t)``, and a credit note reverses the
  difference that it makes to that figure. So the reversed tax only grows (no credit note has negative tax), it
  never exceeds the invoice's tax line (``x <= t``), a credit of everything left reverses it exactly to the minor
  unit (``x == t``), and the sum over credit notes is the same whatever order partial credits come in.

Outcome
- What the credit note first does is reduce what the invoice still owes (``applied_to_due_minor``, at most its
  amount due when issued). Whatever is left was already paid: it is refunded through payments (``refund``) or
  left with the customer as prepaid credit (``credit``, a grant spent on later invoices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.invoice import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Party,
    TaxKind,
    TaxLine,
    TaxRegime,
)
from services.invoicing.domain.invoice_number import MAX_LENGTH, SEQUENCE_DIGITS, validate_series
from services.invoicing.domain.money import round_minor

MAX_REASON_LENGTH = 500
MAX_LINES = 1000
DEFAULT_SERIES = "CN"
# Lines that charge something; the others (discounts, caps) only ever go with a whole credit note.
CREDITABLE_KINDS = frozenset({LineKind.BASE_FEE, LineKind.USAGE, LineKind.MINIMUM_SPEND})
# An invoice a credit note may adjust: issued, whatever settlement has made of it since (not draft, not void).
CREDITABLE_STATUSES = frozenset(set(InvoiceStatus) - {InvoiceStatus.DRAFT, InvoiceStatus.VOID})


class CreditNoteReason(StrEnum):
    """Why the invoice is adjusted (the code; the words go in ``reason``)."""

    BILLING_ERROR = "billing_error"  # wrong price, quantity or tax
    SERVICE_ISSUE = "service_issue"  # outage, SLA credit
    GOODWILL = "goodwill"
    CANCELLATION = "cancellation"  # service cancelled or not delivered
    DUPLICATE = "duplicate"  # charged twice
    OTHER = "other"


class CreditNoteOutcome(StrEnum):
    REFUND = "refund"  # what was already paid goes back through payments
    CREDIT = "credit"  # what was already paid stays with the customer as credit


class RefundState(StrEnum):
    NOT_NEEDED = "not_needed"  # nothing to refund (outcome credit, or the whole amount reduced what was due)
    PENDING = "pending"  # to be asked of payments (asked again by a retry of the create)
    REQUESTED = "requested"  # payments took the refund(s); settlement sees them as refunds are processed
    FAILED = "failed"  # payments refused (its reason kept); a person decides


@dataclass(frozen=True)
class LineCredit:
    """One line of a partial credit request: an amount (minor units) or a quantity off invoice line ``line_number``."""

    line_number: int
    amount_minor: int = 0
    quantity: Decimal = Decimal(0)


@dataclass(frozen=True)
class CreditNoteLine:
    invoice_line_number: int
    description: str
    quantity: Decimal  # credited quantity; 0 when credited by amount
    unit_price: Decimal
    amount_minor: int
    gst_rate: Decimal = Decimal(0)
    sac_code: str = ""


@dataclass(frozen=True)
class CreditNote:
    id: str
    invoice_id: str
    organisation_id: str
    number: str
    currency: str
    issue_date: date
    reason_code: CreditNoteReason
    reason: str
    outcome: CreditNoteOutcome
    lines: tuple[CreditNoteLine, ...]
    tax_lines: tuple[TaxLine, ...]
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    invoice_number: str
    invoice_issue_date: date | None
    tax_regime: TaxRegime
    place_of_supply: str
    supplier: Party
    customer: Party
    applied_to_due_minor: int = 0
    refund_minor: int = 0
    credit_minor: int = 0
    refund_state: RefundState = RefundState.NOT_NEEDED
    refund_ids: tuple[str, ...] = ()
    refund_error: str = ""
    whole: bool = False
    created_at: datetime | None = None
    time_zone: str = ""
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CreditNoteAmounts:
    """What a credit note takes: its lines, its reversed tax, and its totals."""

    lines: tuple[CreditNoteLine, ...]
    tax_lines: tuple[TaxLine, ...]
    subtotal_minor: int
    tax_minor: int
    total_minor: int


@dataclass(frozen=True)
class Credited:
    """What earlier credit notes of an invoice took: per line (amount, quantity), per GST rate, per tax line."""

    line_amounts: dict[int, int]
    line_quantities: dict[int, Decimal]
    rate_taxable: dict[Decimal, int]
    tax: dict[tuple[TaxKind, Decimal], int]
    total_minor: int

    @staticmethod
    def of(earlier: Sequence[CreditNote]) -> Credited:
        amounts: dict[int, int] = {}
        quantities: dict[int, Decimal] = {}
        rates: dict[Decimal, int] = {}
        tax: dict[tuple[TaxKind, Decimal], int] = {}
        for note in earlier:
            for line in note.lines:
                amounts[line.invoice_line_number] = amounts.get(line.invoice_line_number, 0) + line.amount_minor
                quantities[line.invoice_line_number] = (
                    quantities.get(line.invoice_line_number, Decimal(0)) + line.quantity
                )
                rates[line.gst_rate] = rates.get(line.gst_rate, 0) + line.amount_minor
            for tax_line in note.tax_lines:
                key = (tax_line.kind, tax_line.rate)
                tax[key] = tax.get(key, 0) + tax_line.amount_minor
        return Credited(amounts, quantities, rates, tax, sum(n.total_minor for n in earlier))


def validate_reason(reason_code: str, reason: str) -> tuple[CreditNoteReason, str]:
    """The reason code and text, each checked; InvalidArgument naming the field (never echoing the text)."""
    try:
        code = CreditNoteReason(reason_code)
    except ValueError:
        allowed = ", ".join(r.value for r in CreditNoteReason)
        raise InvalidArgument(f"must be one of {allowed}", field="reason_code") from None
    text = reason.strip()
    if not text:
        raise InvalidArgument("is required: say why the invoice is credited", field="reason")
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_REASON_LENGTH} characters", field="reason")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidArgument("must not contain control characters", field="reason")
    return code, text


def validate_outcome(outcome: str) -> CreditNoteOutcome:
    try:
        return CreditNoteOutcome(outcome)
    except ValueError:
        raise InvalidArgument("must be refund or credit", field="outcome") from None


def format_credit_note_number(series: str, fy: str, sequence: int) -> str:
    """``CN/2627/00001`` for ("CN", "2627", 1): the invoice numbers' shape (at most 16 characters), own series.
    FailedPrecondition once the series has run out of numbers for the financial year."""
    validate_series(series)
    if sequence < 1:
        raise InvalidArgument(f"is {sequence}; sequences start at 1", field="sequence")
    number = f"{series}/{fy}/{sequence:0{SEQUENCE_DIGITS}d}"
    if len(number) > MAX_LENGTH:
        raise FailedPrecondition(
            f"credit note number {number} would be {len(number)} characters; GST allows at most {MAX_LENGTH}"
        )
    return number


def check_creditable(invoice: Invoice) -> None:
    if invoice.status not in CREDITABLE_STATUSES:
        raise FailedPrecondition(
            f"invoice {invoice.id} is {invoice.status.value}; only an issued invoice can be credited"
            + (" (a draft is corrected by recomputing it)" if invoice.status is InvoiceStatus.DRAFT else "")
        )


def credit_amounts(
    invoice: Invoice, earlier: Sequence[CreditNote], requested: Sequence[LineCredit] | None
) -> CreditNoteAmounts:
    """The lines, reversed tax and totals of a new credit note of ``invoice``, given its ``earlier`` credit notes.
    ``requested`` None credits everything still creditable; otherwise each named line by amount or quantity.
    InvalidArgument naming the field for a request that is malformed or takes more than is left."""
    check_creditable(invoice)
    credited = Credited.of(earlier)
    by_number = {line.number: line for line in invoice.lines}
    if requested is None:
        lines = _whole(invoice, credited)
    else:
        lines = _partial(invoice, by_number, credited, requested)
    taken: dict[Decimal, int] = {}
    for line in lines:
        taken[line.gst_rate] = taken.get(line.gst_rate, 0) + line.amount_minor
    net = _net_taxable(invoice.lines)
    for rate, amount in taken.items():
        left = net.get(rate, 0) - credited.rate_taxable.get(rate, 0)
        if amount > left:
            raise InvalidArgument(
                f"take {amount} minor units at GST {rate}% but only {max(left, 0)} is left to credit at that rate "
                "(the invoice's lines at that rate, net of discounts, less earlier credit notes)",
                field="lines",
            )
    subtotal = sum(line.amount_minor for line in lines)
    if subtotal <= 0:
        raise FailedPrecondition(f"nothing is left to credit on invoice {invoice.number or invoice.id}")
    tax_lines = reversed_tax(invoice, credited, taken)
    tax = sum(t.amount_minor for t in tax_lines)
    return CreditNoteAmounts(tuple(lines), tax_lines, subtotal, tax, subtotal + tax)


def _net_taxable(lines: Sequence[InvoiceLine]) -> dict[Decimal, int]:
    net: dict[Decimal, int] = {}
    for line in lines:
        net[line.gst_rate] = net.get(line.gst_rate, 0) + line.amount_minor
    return net


def _whole(invoice: Invoice, credited: Credited) -> list[CreditNoteLine]:
    lines = []
    for line in invoice.lines:
        left = line.amount_minor - credited.line_amounts.get(line.number, 0)
        if left == 0:
            continue
        quantity = max(line.quantity - credited.line_quantities.get(line.number, Decimal(0)), Decimal(0))
        lines.append(_credit_line(line, quantity, left))
    return lines


def _partial(
    invoice: Invoice, by_number: dict[int, InvoiceLine], credited: Credited, requested: Sequence[LineCredit]
) -> list[CreditNoteLine]:
    if not requested:
        raise InvalidArgument("name at least one line, or credit the whole invoice", field="lines")
    if len(requested) > MAX_LINES:
        raise InvalidArgument(f"must have at most {MAX_LINES} entries", field="lines")
    seen: set[int] = set()
    lines = []
    for index, ask in enumerate(requested):
        where = f"lines[{index}]"
        line = by_number.get(ask.line_number)
        if line is None:
            raise InvalidArgument(f"invoice has no line {ask.line_number}", field=f"{where}.line_number")
        if ask.line_number in seen:
            raise InvalidArgument(f"line {ask.line_number} is named twice", field=f"{where}.line_number")
        seen.add(ask.line_number)
        if line.kind not in CREDITABLE_KINDS or line.amount_minor <= 0:
            raise InvalidArgument(
                f"line {line.number} is a {line.kind.value} line; only lines that charge something can be credited "
                "one by one (a whole credit note reverses the others)",
                field=f"{where}.line_number",
            )
        left = line.amount_minor - credited.line_amounts.get(line.number, 0)
        if (ask.amount_minor != 0) == (ask.quantity != 0):
            raise InvalidArgument("give an amount or a quantity to credit (one of them)", field=f"{where}.amount_minor")
        if ask.amount_minor < 0 or ask.quantity < 0:
            which = "amount_minor" if ask.amount_minor else "quantity"
            raise InvalidArgument("must be positive", field=f"{where}.{which}")
        if ask.amount_minor:
            if ask.amount_minor > left:
                raise InvalidArgument(
                    f"is {ask.amount_minor} minor units but line {line.number} has {left} left to credit",
                    field=f"{where}.amount_minor",
                )
            lines.append(_credit_line(line, Decimal(0), ask.amount_minor))
            continue
        quantity_left = line.quantity - credited.line_quantities.get(line.number, Decimal(0))
        if ask.quantity > quantity_left:
            raise InvalidArgument(
                f"is more than the {quantity_left} left to credit on line {line.number}", field=f"{where}.quantity"
            )
        # The rest of a line's quantity takes the rest of its amount, so rounding never strands a minor unit.
        amount = left if ask.quantity == quantity_left else min(round_minor(ask.quantity * line.unit_price,
                                                                            invoice.currency), left)
        if amount <= 0:
            raise InvalidArgument(f"credits nothing on line {line.number}", field=f"{where}.quantity")
        lines.append(_credit_line(line, ask.quantity, amount))
    return lines


def _credit_line(line: InvoiceLine, quantity: Decimal, amount: int) -> CreditNoteLine:
    return CreditNoteLine(line.number, line.description, quantity, line.unit_price, amount, line.gst_rate,
                          line.sac_code)


def _full_rate(tax_line: TaxLine, regime: TaxRegime) -> Decimal:
    """The GST rate of the invoice lines a tax line taxes (CGST and SGST each carry half of it)."""
    return tax_line.rate * 2 if regime is TaxRegime.INTRA_STATE else tax_line.rate


def reversed_tax(invoice: Invoice, credited: Credited, taken: dict[Decimal, int]) -> tuple[TaxLine, ...]:
    """The invoice's tax lines, each reversed for ``taken`` (taxable credited now, per GST rate) on top of what
    ``credited`` already took (see the module docstring)."""
    result = []
    for tax_line in invoice.tax_lines:
        rate = _full_rate(tax_line, invoice.tax_regime)
        now = taken.get(rate, 0)
        if now == 0:
            continue
        before = credited.rate_taxable.get(rate, 0)
        amount = reversed_so_far(tax_line, before + now) - reversed_so_far(tax_line, before)
        result.append(TaxLine(tax_line.kind, tax_line.rate, now, amount))
    return tuple(result)


def reversed_so_far(tax_line: TaxLine, credited_taxable: int) -> int:
    """The tax of ``tax_line`` reversed once ``credited_taxable`` of its taxable amount is credited: exact at the
    ends (0 and everything) and never decreasing in between."""
    if tax_line.taxable_minor <= 0 or credited_taxable <= 0:
        return 0
    if credited_taxable >= tax_line.taxable_minor:
        return tax_line.amount_minor
    with localcontext(Context(prec=80)):
        exact = Decimal(tax_line.amount_minor) * credited_taxable / tax_line.taxable_minor
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Split:
    """How a credit note's total is used: first against what the invoice still owes, the rest refunded or left
    as credit."""

    applied_to_due_minor: int
    refund_minor: int
    credit_minor: int


def split_outcome(total_minor: int, amount_due_minor: int, refundable_minor: int,
                  outcome: CreditNoteOutcome, currency: str) -> Split:
    """``total_minor`` against the invoice's amount due, the rest by ``outcome``. FailedPrecondition for a refund
    beyond what was paid and not yet refunded."""
    applied = min(total_minor, max(amount_due_minor, 0))
    rest = total_minor - applied
    if outcome is CreditNoteOutcome.CREDIT:
        return Split(applied, 0, rest)
    if rest > refundable_minor:
        raise FailedPrecondition(
            f"the credit note leaves {rest} minor units of {currency} to refund but only {max(refundable_minor, 0)} "
            "paid is not yet refunded; issue it with outcome credit instead"
        )
    return Split(applied, rest, 0)
