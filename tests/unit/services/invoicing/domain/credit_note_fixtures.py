"""Issued invoices to credit, built from (kind, quantity, unit price, amount, GST rate) lines with the law's tax
lines (``domain/gst.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from services.invoicing.domain import gst
from services.invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, LineKind, Party, TaxRegime

SUPPLIER = Party(name="Billing Co", country="IN", state_code="29", gstin="29AABCB1234C1ZA")
CUSTOMER = Party(name="Acme", country="IN", state_code="29")


def invoice_of(
    lines: Sequence[tuple[LineKind, str, str, int, str]], *, currency: str = "INR",
    regime: TaxRegime = TaxRegime.INTRA_STATE, status: InvoiceStatus = InvoiceStatus.ISSUED, paid: int = 0,
) -> Invoice:
    built = tuple(
        InvoiceLine(number=index, kind=kind, description=f"{kind.value} {index}", quantity=Decimal(quantity),
                    unit_price=Decimal(unit_price), amount_minor=amount, gst_rate=Decimal(rate), sac_code="998315")
        for index, (kind, quantity, unit_price, amount, rate) in enumerate(lines, start=1)
    )
    taxes = gst.tax_lines(built, regime)
    subtotal = sum(line.amount_minor for line in built)
    tax = sum(t.amount_minor for t in taxes)
    return Invoice(
        id="inv_1", organisation_id="org_1", status=status, currency=currency,
        period_start=datetime(2026, 10, 1, tzinfo=UTC), period_end=datetime(2026, 11, 1, tzinfo=UTC),
        period_key="2026-10", lines=built, tax_lines=taxes, subtotal_minor=subtotal, tax_minor=tax,
        total_minor=subtotal + tax, tax_regime=regime, place_of_supply="29", supplier=SUPPLIER, customer=CUSTOMER,
        number="INV/2627/00001", issue_date=date(2026, 11, 1), amount_paid_minor=paid,
        amount_due_minor=max(subtotal + tax - paid, 0),
    )


def ten_thousand_rupees(regime: TaxRegime = TaxRegime.INTER_STATE, paid: int = 0) -> Invoice:
    """The docs' example: a base fee of ₹10,000.00 at 18% GST, ₹11,800.00 in all."""
    return invoice_of([(LineKind.BASE_FEE, "1", "10000", 1_000_000, "18")], regime=regime, paid=paid)
