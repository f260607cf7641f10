"""Checks an invoice must pass before it is stored: its amounts add up, its tax is the law's, and a recomputation
from scratch gives the same amounts. Each failure is a FailedPrecondition saying exactly which figure is off.
"""

from __future__ import annotations

from decimal import Decimal

from billing_runtime.errors import FailedPrecondition
from services.invoicing.domain import currencies, gst
from services.invoicing.domain.invoice import Invoice, LineKind, TaxKind, TaxRegime
from services.invoicing.domain.money import MAX_AMOUNT_MINOR, beyond_bound

_KINDS_BY_REGIME: dict[TaxRegime, frozenset[TaxKind]] = {
    TaxRegime.INTRA_STATE: frozenset({TaxKind.CGST, TaxKind.SGST}),
    TaxRegime.INTER_STATE: frozenset({TaxKind.IGST}),
    TaxRegime.EXPORT: frozenset(),
}


def _fail(invoice: Invoice, problem: str) -> FailedPrecondition:
    return FailedPrecondition(f"invoice {invoice.id} ({invoice.period_key}) is inconsistent: {problem}")


def validate_invoice(invoice: Invoice) -> None:
    """Raise FailedPrecondition unless ``invoice`` is internally consistent:

    a currency one can invoice in; lines numbered 1..n; discount lines take off (never add) and leave no GST
    rate's lines below zero; lines sum to the subtotal; tax lines sum to the tax; subtotal + tax = total; only the
    tax kinds of its regime (none on export); each tax line is its rate of its taxable amount rounded half-up; per
    tax kind the taxable amounts sum to the subtotal; and the tax lines are what the lines' GST rates give."""
    if not currencies.is_invoiceable(invoice.currency):
        raise _fail(invoice, f"currency {invoice.currency!r} is not an ISO 4217 currency one can invoice in")
    check_amount_bounds(invoice)
    numbers = [line.number for line in invoice.lines]
    if numbers != list(range(1, len(numbers) + 1)):
        raise _fail(invoice, f"lines are numbered {numbers}, expected 1 to {len(numbers)} in order")
    _check_discounts(invoice)
    _check_credits(invoice)
    lines_sum = sum(line.amount_minor for line in invoice.lines)
    if lines_sum != invoice.subtotal_minor:
        raise _fail(invoice, f"lines sum to {lines_sum} minor units but the subtotal is {invoice.subtotal_minor} "
                             f"(off by {invoice.subtotal_minor - lines_sum})")
    tax_sum = sum(t.amount_minor for t in invoice.tax_lines)
    if tax_sum != invoice.tax_minor:
        raise _fail(invoice, f"tax lines sum to {tax_sum} minor units but the tax is {invoice.tax_minor} "
                             f"(off by {invoice.tax_minor - tax_sum})")
    if invoice.subtotal_minor + invoice.tax_minor != invoice.total_minor:
        raise _fail(invoice, f"subtotal {invoice.subtotal_minor} + tax {invoice.tax_minor} = "
                             f"{invoice.subtotal_minor + invoice.tax_minor}, but the total is {invoice.total_minor}")
    allowed = _KINDS_BY_REGIME[invoice.tax_regime]
    for index, tax_line in enumerate(invoice.tax_lines):
        if tax_line.kind not in allowed:
            raise _fail(invoice, f"tax_lines[{index}] is {tax_line.kind}, which a {invoice.tax_regime} invoice "
                                 f"does not charge")
        expected = gst.tax_amount_minor(tax_line.taxable_minor, tax_line.rate)
        if tax_line.amount_minor != expected:
            raise _fail(invoice, f"tax_lines[{index}] {tax_line.kind} at {tax_line.rate}% of "
                                 f"{tax_line.taxable_minor} is {tax_line.amount_minor}, expected {expected}")
    for kind in sorted(allowed):
        taxable = sum(t.taxable_minor for t in invoice.tax_lines if t.kind is kind)
        if taxable != invoice.subtotal_minor:
            raise _fail(invoice, f"{kind} taxable amounts sum to {taxable} but the subtotal is "
                                 f"{invoice.subtotal_minor}")
    expected_taxes = gst.tax_lines(invoice.lines, invoice.tax_regime)
    if invoice.tax_lines != expected_taxes:
        raise _fail(invoice, f"tax lines {_describe_taxes(invoice.tax_lines)} differ from what the lines' GST rates "
                             f"give: {_describe_taxes(expected_taxes)}")


def _check_discounts(invoice: Invoice) -> None:
    if not any(line.kind is LineKind.DISCOUNT for line in invoice.lines):
        return
    by_rate: dict[Decimal, int] = {}
    for line in invoice.lines:
        if line.kind is LineKind.DISCOUNT and (line.amount_minor > 0 or not line.coupon_redemption_id):
            raise _fail(invoice, f"discount line {line.number} is {line.amount_minor} minor units for redemption "
                                 f"{line.coupon_redemption_id!r}; a discount is negative and names its redemption")
        by_rate[line.gst_rate] = by_rate.get(line.gst_rate, 0) + line.amount_minor
    for rate, amount in sorted(by_rate.items()):
        if amount < 0:
            raise _fail(invoice, f"the lines at GST {rate}% sum to {amount} minor units; a discount never takes "
                                 "more than the lines it applies to")


def _check_credits(invoice: Invoice) -> None:
    """Credit lines (after tax, outside the subtotal) follow the lines' numbers, each a negative amount from a
    grant named once, and together never more than the total; the amount due of a new invoice is what is left."""
    if not invoice.credit_lines:
        return
    first = len(invoice.lines) + 1
    numbers = [line.number for line in invoice.credit_lines]
    if numbers != list(range(first, first + len(numbers))):
        raise _fail(invoice, f"credit lines are numbered {numbers}, expected {first} to {first + len(numbers) - 1}")
    grants = [line.credit_grant_id for line in invoice.credit_lines]
    for line in invoice.credit_lines:
        if line.kind is not LineKind.CREDIT or line.amount_minor >= 0 or not line.credit_grant_id:
            raise _fail(invoice, f"credit line {line.number} is {line.kind} of {line.amount_minor} minor units from "
                                 f"grant {line.credit_grant_id!r}; a credit line is negative and names its grant")
    if len(set(grants)) != len(grants):
        raise _fail(invoice, "a grant is spent on more than one credit line")
    if invoice.credits_minor > invoice.total_minor:
        raise _fail(invoice, f"credits of {invoice.credits_minor} minor units exceed the total {invoice.total_minor}")
    if invoice.lines and any(line.kind is LineKind.CREDIT for line in invoice.lines):
        raise _fail(invoice, "a credit line is among the lines; credits pay the total and sit after it")


def check_amount_bounds(invoice: Invoice) -> None:
    """FailedPrecondition naming the first amount past MAX_AMOUNT_MINOR (usage summed over a period can price
    beyond what int64 minor units hold): the invoice is refused for review, never stored or sent truncated."""
    figures = [(f"lines[{line.number}] ({line.description})", line.amount_minor) for line in invoice.lines]
    figures += [(f"tax_lines[{index}]", tax.amount_minor) for index, tax in enumerate(invoice.tax_lines)]
    figures += [("subtotal", invoice.subtotal_minor), ("tax", invoice.tax_minor), ("total", invoice.total_minor)]
    for what, minor in figures:
        if beyond_bound(minor):
            raise FailedPrecondition(
                f"invoice {invoice.id} ({invoice.period_key}): {what} is {minor} minor units of {invoice.currency}, "
                f"past the largest amount an invoice can carry ({MAX_AMOUNT_MINOR}); check the usage behind it"
            )


def _describe_taxes(tax_lines: tuple) -> str:
    return "[" + ", ".join(f"{t.kind} {t.rate}% of {t.taxable_minor} = {t.amount_minor}" for t in tax_lines) + "]"


def check_recomputation(stored: Invoice, recomputed: Invoice) -> None:
    """Raise FailedPrecondition naming the first amount where ``stored`` and ``recomputed`` (the same invoice built
    again from scratch) differ: currency, regime, line count, each line's kind, quantity, unit price and amount,
    the tax lines, subtotal, tax, total."""
    def differ(what: str, mine: object, theirs: object) -> FailedPrecondition:
        return _fail(stored, f"recomputation differs at {what}: stored {mine}, recomputed {theirs}")

    for what in ("currency", "tax_regime", "place_of_supply"):
        if getattr(stored, what) != getattr(recomputed, what):
            raise differ(what, getattr(stored, what), getattr(recomputed, what))
    if len(stored.lines) != len(recomputed.lines):
        raise differ("the number of lines", len(stored.lines), len(recomputed.lines))
    for mine, theirs in zip(stored.lines, recomputed.lines, strict=True):
        for what in ("kind", "metric_code", "quantity", "unit_price", "amount_minor", "gst_rate", "coupon_code",
                     "coupon_redemption_id", "adjusts_period_key", "price_override_id",
                     "price_override_version"):
            if getattr(mine, what) != getattr(theirs, what):
                raise differ(f"line {mine.number} {what}", getattr(mine, what), getattr(theirs, what))
    if len(stored.tax_lines) != len(recomputed.tax_lines):
        raise differ("the number of tax lines", len(stored.tax_lines), len(recomputed.tax_lines))
    for index, (mine, theirs) in enumerate(zip(stored.tax_lines, recomputed.tax_lines, strict=True)):
        if mine != theirs:
            raise differ(f"tax_lines[{index}]", _describe_taxes((mine,)), _describe_taxes((theirs,)))
    for what in ("subtotal_minor", "tax_minor", "total_minor"):
        if getattr(stored, what) != getattr(recomputed, what):
            raise differ(what, getattr(stored, what), getattr(recomputed, what))
