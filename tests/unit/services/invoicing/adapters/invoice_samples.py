"""Sample invoices for the document renderers, one per case the documents must get right.

Amounts are worked out by hand in the comments; each invoice's lines add up to its subtotal and subtotal + tax to
its total, as the invoice checks require, so a renderer test can assert the exact printed figures.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from services.invoicing.domain.charges import TierAmount
from services.invoicing.domain.invoice import (
    ExchangeRate,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Party,
    TaxKind,
    TaxLine,
    TaxRegime,
)

IST = timezone(timedelta(hours=5, minutes=30), "IST")
# The organisations' zone. Periods are stored in UTC, as the invoice builder makes them: October in Kolkata is
# [30 Sep 18:30 UTC, 31 Oct 18:30 UTC); the documents print it as 1 Oct - 31 Oct given this zone.
ZONE = "Asia/Kolkata"
OCT_START = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
NOV_START = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)

SUPPLIER_GSTIN = "29AABCB1234C1ZA"  # Karnataka; check character computed with gst.gstin_check_character
INTRA_GSTIN = "29AAACR5055K1Z3"  # Karnataka
INTER_GSTIN = "27AAPFU0939F1ZV"  # Maharashtra

SUPPLIER = Party(
    name="Billing Platform Demo Pvt Ltd",
    email="accounts@billing.example",
    address="1 MG Road\nBengaluru 560001, Karnataka",
    country="IN",
    state_code="29",
    gstin=SUPPLIER_GSTIN,
)
EXPORT_NOTE = "Supply meant for export under LUT without payment of IGST"


def _line(number: int, kind: LineKind, description: str, quantity: str, unit_price: str, amount_minor: int, **kw):
    return InvoiceLine(
        number=number,
        kind=kind,
        description=description,
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
        amount_minor=amount_minor,
        period_start=OCT_START,
        period_end=NOV_START,
        gst_rate=Decimal(18),
        sac_code="998315",
        **kw,
    )


# INR lines: base fee 4,999.00; API calls graduated over 1,250,000 calls: 1,000,000 x 0.0004 = 400.0000 and
# 250,000 x 0.0003 = 75.0000, so 475.00; LLM tokens 3,456,789 x 0.00002 = 69.13578 -> 69.14 (half-up).
# Subtotal 4,999.00 + 475.00 + 69.14 = 5,543.14.
INR_LINES = (
    _line(1, LineKind.BASE_FEE, "Standard plan - base fee", "1", "4999", 499900),
    _line(
        2,
        LineKind.USAGE,
        "API calls",
        "1250000",
        "0.00038",
        47500,
        metric_code="api_calls",
        charge_model="graduated",
        breakdown=(
            # As pricing writes a graduated breakdown: tier bounds, from_units exclusive and up_to inclusive.
            TierAmount(
                "tier 1",
                Decimal(1000000),
                Decimal("0.0004"),
                Decimal(0),
                Decimal("400.0000"),
                Decimal(0),
                Decimal(1000000),
            ),
            TierAmount("tier 2", Decimal(250000), Decimal("0.0003"), Decimal(0), Decimal("75.0000"), Decimal(1000000)),
        ),
    ),
    _line(
        3, LineKind.USAGE, "LLM tokens", "3456789", "0.00002", 6914, metric_code="llm_tokens", charge_model="per_unit"
    ),
)


def _invoice(**kw) -> Invoice:
    base = dict(
        id="inv_0001",
        organisation_id="org_0001",
        status=InvoiceStatus.ISSUED,
        currency="INR",
        period_start=OCT_START,
        period_end=NOV_START,
        period_key="2026-10",
        supplier=SUPPLIER,
        number="INV/2627/00001",
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 11, 16),
        created_at=datetime(2026, 11, 1, 0, 5, tzinfo=UTC),
    )
    base.update(kw)
    return Invoice(**base)


def inr_with_credit() -> Invoice:
    """The coupon invoice (total 5,232.73) paid in part by prepaid credit, after tax: 2,000.00 from one grant and
    500.00 from another; 2,732.73 left to pay. GST is unchanged (on 4,434.51)."""
    base = inr_with_coupon()
    credits = tuple(
        InvoiceLine(number=5 + index, kind=LineKind.CREDIT, description=f"Prepaid credit: {what} ({grant})",
                    quantity=Decimal(1), unit_price=Decimal(-minor).scaleb(-2), amount_minor=-minor,
                    credit_grant_id=grant)
        for index, (grant, what, minor) in enumerate([("crg_1", "welcome credit", 200000),
                                                      ("crg_2", "top-up", 50000)])
    )
    return replace(base, credit_lines=credits, amount_due_minor=None)


def inr_intra_state() -> Invoice:
    """Karnataka customer of a Karnataka supplier: CGST 9% + SGST 9% on 5,543.14 = 498.8826 -> 498.88 each.
    Total 5,543.14 + 997.76 = 6,540.90."""
    return _invoice(
        customer=Party(
            name="Rangoli Retail Pvt Ltd",
            email="finance@rangoli.example",
            address="42 Residency Road\nBengaluru 560025",
            country="IN",
            state_code="29",
            gstin=INTRA_GSTIN,
        ),
        lines=INR_LINES,
        tax_lines=(
            TaxLine(TaxKind.CGST, Decimal(9), 554314, 49888),
            TaxLine(TaxKind.SGST, Decimal(9), 554314, 49888),
        ),
        subtotal_minor=554314,
        tax_minor=99776,
        total_minor=654090,
        tax_regime=TaxRegime.INTRA_STATE,
        place_of_supply="29",
    )


def inr_with_coupon() -> Invoice:
    """The intra-state invoice with LAUNCH20 (20% off): 20% of 5,543.14 = 1,108.628 -> 1,108.63 taken off before
    tax, so CGST and SGST are 9% of 4,434.51 = 399.1059 -> 399.11 each. Total 4,434.51 + 798.22 = 5,232.73."""
    discount = InvoiceLine(
        number=4, kind=LineKind.DISCOUNT, description="Launch offer (LAUNCH20): 20% off", quantity=Decimal(1),
        unit_price=Decimal("-1108.63"), amount_minor=-110863, gst_rate=Decimal(18), sac_code="998315",
        coupon_code="LAUNCH20", coupon_redemption_id="cpr_0001",
    )
    return replace(
        inr_intra_state(),
        lines=(*INR_LINES, discount),
        tax_lines=(
            TaxLine(TaxKind.CGST, Decimal(9), 443451, 39911),
            TaxLine(TaxKind.SGST, Decimal(9), 443451, 39911),
        ),
        subtotal_minor=443451,
        tax_minor=79822,
        total_minor=523273,
    )


def inr_inter_state() -> Invoice:
    """Maharashtra customer: IGST 18% on 5,543.14 = 997.7652 -> 997.77. Total 6,540.91. Its plan is priced in USD
    (1 USD = 83.12 INR), so the invoice states the rate."""
    return _invoice(
        id="inv_0002",
        number="INV/2627/00002",
        customer=Party(
            name="Sahyadri Software LLP",
            email="ap@sahyadri.example",
            address="7 FC Road\nPune 411004",
            country="IN",
            state_code="27",
            gstin=INTER_GSTIN,
        ),
        lines=INR_LINES,
        tax_lines=(TaxLine(TaxKind.IGST, Decimal(18), 554314, 99777),),
        subtotal_minor=554314,
        tax_minor=99777,
        total_minor=654091,
        tax_regime=TaxRegime.INTER_STATE,
        place_of_supply="27",
        exchange_rate=ExchangeRate(
            "USD", "INR", Decimal("83.12"), "RBI reference rate", datetime(2026, 10, 31, tzinfo=UTC)
        ),
    )


def usd_export() -> Invoice:
    """US customer, invoiced in USD from an INR plan at 1 INR = 0.012031 USD: base fee 4,999 x 0.012031 =
    60.142969 -> 60.14; API calls 475 x 0.012031 = 5.714725 -> 5.71 (tiers 4.8124 + 0.902325). Total 65.85, no tax."""
    rate = Decimal("0.012031")
    return _invoice(
        id="inv_0003",
        number="INV/2627/00003",
        currency="USD",
        customer=Party(
            name="Acme Analytics, Inc.",
            email="billing@acme.example",
            address="500 Howard Street\nSan Francisco, CA 94105",
            country="US",
        ),
        lines=(
            _line(1, LineKind.BASE_FEE, "Standard plan - base fee", "1", str(4999 * rate), 6014),
            _line(
                2,
                LineKind.USAGE,
                "API calls",
                "1250000",
                "0.00000457178",
                571,
                metric_code="api_calls",
                charge_model="graduated",
                breakdown=(
                    TierAmount(
                        "tier 1",
                        Decimal(1000000),
                        Decimal("0.0004") * rate,
                        Decimal(0),
                        Decimal("400") * rate,
                        Decimal(0),
                        Decimal(1000000),
                    ),
                    TierAmount(
                        "tier 2",
                        Decimal(250000),
                        Decimal("0.0003") * rate,
                        Decimal(0),
                        Decimal("75") * rate,
                        Decimal(1000000),
                    ),
                ),
            ),
        ),
        tax_lines=(),
        subtotal_minor=6585,
        tax_minor=0,
        total_minor=6585,
        tax_regime=TaxRegime.EXPORT,
        place_of_supply="96",
        exchange_rate=ExchangeRate("INR", "USD", rate, "RBI reference rate", datetime(2026, 10, 31, tzinfo=UTC)),
        notes=(EXPORT_NOTE,),
    )


def jpy_export() -> Invoice:
    """JPY has no minor units: base fee 7,500; 12,345 calls x 0.06 = 740.7 -> 741. Total 8,241."""
    return _invoice(
        id="inv_0004",
        number="INV/2627/00004",
        currency="JPY",
        customer=Party(
            name="Sakura Data K.K.", email="keiri@sakura.example", address="1-1 Marunouchi\nTokyo", country="JP"
        ),
        lines=(
            _line(1, LineKind.BASE_FEE, "Standard plan - base fee", "1", "7500", 7500),
            _line(2, LineKind.USAGE, "API calls", "12345", "0.06", 741, metric_code="api_calls"),
        ),
        tax_lines=(),
        subtotal_minor=8241,
        tax_minor=0,
        total_minor=8241,
        tax_regime=TaxRegime.EXPORT,
        place_of_supply="96",
        notes=(EXPORT_NOTE,),
    )


def kwd_export() -> Invoice:
    """KWD has three minor digits: base fee 15.250; 1,234,567 tokens x 0.001 = 1,234.567. Total 1,249.817. The
    customer's name needs more than Latin-1 (Ł)."""
    return _invoice(
        id="inv_0005",
        number="INV/2627/00005",
        currency="KWD",
        customer=Party(
            name="Łódź Gulf Trading W.L.L.", email="ap@gulf.example", address="Sharq\nKuwait City", country="KW"
        ),
        lines=(
            _line(1, LineKind.BASE_FEE, "Standard plan - base fee", "1", "15.25", 15250),
            _line(2, LineKind.USAGE, "LLM tokens", "1234567", "0.001", 1234567, metric_code="llm_tokens"),
        ),
        tax_lines=(),
        subtotal_minor=1249817,
        tax_minor=0,
        total_minor=1249817,
        tax_regime=TaxRegime.EXPORT,
        place_of_supply="96",
        notes=(EXPORT_NOTE,),
    )


def many_lines(count: int = 120) -> Invoice:
    """``count`` usage lines, line i costing i rupees: subtotal = count(count+1)/2 rupees (7,260.00 for 120);
    IGST 18% of 7,260.00 = 1,306.80; total 8,566.80."""
    lines = tuple(
        _line(i, LineKind.USAGE, f"Metric {i:03d} usage", str(i * 10), "0.1", i * 100, metric_code=f"metric_{i:03d}")
        for i in range(1, count + 1)
    )
    subtotal = count * (count + 1) // 2 * 100
    tax = (subtotal * 18 + 50) // 100  # half-up of 18 %
    return replace(
        inr_inter_state(),
        id="inv_0006",
        number="INV/2627/00006",
        lines=lines,
        tax_lines=(TaxLine(TaxKind.IGST, Decimal(18), subtotal, tax),),
        subtotal_minor=subtotal,
        tax_minor=tax,
        total_minor=subtotal + tax,
        exchange_rate=None,
    )


def draft(invoice: Invoice) -> Invoice:
    """The same invoice before issue: no number or dates yet."""
    return replace(invoice, status=InvoiceStatus.DRAFT, number="", issue_date=None, due_date=None)


def voided(invoice: Invoice, reason: str = "Wrong billing address") -> Invoice:
    return replace(invoice, status=InvoiceStatus.VOID, void_reason=reason, voided_at=datetime(2026, 11, 3, tzinfo=IST))
