"""GST regime, place of supply and tax lines: CGST+SGST within the supplier's state, IGST across, zero on export."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.gst import place_of_supply, tax_amount_minor, tax_lines, tax_regime
from services.invoicing.domain.invoice import InvoiceLine, LineKind, TaxKind, TaxLine, TaxRegime


def line(number: int, amount_minor: int, rate: str = "18") -> InvoiceLine:
    return InvoiceLine(number=number, kind=LineKind.USAGE, description="x", quantity=Decimal(1),
                       unit_price=Decimal(0), amount_minor=amount_minor, gst_rate=Decimal(rate))


def test_regimes() -> None:
    assert tax_regime("29", "IN", "29") is TaxRegime.INTRA_STATE
    assert tax_regime("29", "IN", "27") is TaxRegime.INTER_STATE
    assert tax_regime("29", "US", "CA") is TaxRegime.EXPORT
    assert tax_regime("29", "US", "") is TaxRegime.EXPORT
    assert place_of_supply("IN", "27") == "27"
    assert place_of_supply("SG", "") == "96"
    with pytest.raises(InvalidArgument, match="GST state code") as error:
        tax_regime("29", "IN", "")
    assert error.value.field == "state_code"


def test_intra_state_cgst_and_sgst_each_nine_percent() -> None:
    # 1000.00 + 180.00 INR = 118000 paise; 9 % = 10620 each.
    assert tax_lines([line(1, 100000), line(2, 18000)], TaxRegime.INTRA_STATE) == (
        TaxLine(TaxKind.CGST, Decimal(9), 118000, 10620),
        TaxLine(TaxKind.SGST, Decimal(9), 118000, 10620),
    )


def test_inter_state_igst() -> None:
    assert tax_lines([line(1, 118000)], TaxRegime.INTER_STATE) == (TaxLine(TaxKind.IGST, Decimal(18), 118000, 21240),)


def test_export_has_no_tax() -> None:
    assert tax_lines([line(1, 118000)], TaxRegime.EXPORT) == ()


def test_each_component_rounds_half_up_on_its_own() -> None:
    # 1234.50 INR: 9 % is 111.105 -> 111.11 for CGST and again for SGST (222.22 together), whereas 18 % rounded once
    # is 222.21. The components are rounded separately, as the law prints them.
    intra = tax_lines([line(1, 123450)], TaxRegime.INTRA_STATE)
    assert [t.amount_minor for t in intra] == [11111, 11111]
    assert tax_lines([line(1, 123450)], TaxRegime.INTER_STATE)[0].amount_minor == 22221
    # Half-up also away from zero below zero (a credit), and 0.5 paise of 9 % of 0.50 rounds to 5 paise.
    assert tax_amount_minor(-123450, Decimal(9)) == -11111
    assert tax_amount_minor(50, Decimal(9)) == 5


def test_grouped_by_rate_in_rate_order() -> None:
    # 18 % on 100.00 + 50.00, 5 % on 20.00; a 0 % line still shows its taxable amount.
    lines = [line(1, 10000), line(2, 2000, "5"), line(3, 5000), line(4, 700, "0")]
    assert tax_lines(lines, TaxRegime.INTER_STATE) == (
        TaxLine(TaxKind.IGST, Decimal(0), 700, 0),
        TaxLine(TaxKind.IGST, Decimal(5), 2000, 100),
        TaxLine(TaxKind.IGST, Decimal(18), 15000, 2700),
    )
    intra = tax_lines(lines, TaxRegime.INTRA_STATE)
    assert [(t.kind, t.rate, t.amount_minor) for t in intra] == [
        (TaxKind.CGST, Decimal(0), 0), (TaxKind.SGST, Decimal(0), 0),
        (TaxKind.CGST, Decimal("2.5"), 50), (TaxKind.SGST, Decimal("2.5"), 50),
        (TaxKind.CGST, Decimal(9), 1350), (TaxKind.SGST, Decimal(9), 1350),
    ]


@given(st.lists(st.tuples(st.integers(0, 10**12), st.sampled_from(["0", "5", "12", "18", "28"])), max_size=8))
def test_taxable_amounts_cover_the_lines(items: list[tuple[int, str]]) -> None:
    lines = [line(i, amount, rate) for i, (amount, rate) in enumerate(items, start=1)]
    subtotal = sum(amount for amount, _ in items)
    igst = tax_lines(lines, TaxRegime.INTER_STATE)
    assert sum(t.taxable_minor for t in igst) == subtotal
    intra = tax_lines(lines, TaxRegime.INTRA_STATE)
    for kind in (TaxKind.CGST, TaxKind.SGST):
        assert sum(t.taxable_minor for t in intra if t.kind is kind) == subtotal
    # Each half rounded on its own is within one minor unit of the full rate rounded once.
    for full, (cgst, sgst) in zip(igst, zip(intra[::2], intra[1::2], strict=True), strict=True):
        assert abs(cgst.amount_minor + sgst.amount_minor - full.amount_minor) <= 1
