"""INV-01 documents from issued invoices and credit notes, their checks, the IRN and the time rules."""

from __future__ import annotations

import hashlib
from copy import deepcopy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain import einvoice_checks as checks
from services.invoicing.domain.credit_note import CreditNote, CreditNoteLine, CreditNoteOutcome, CreditNoteReason
from services.invoicing.domain.einvoice import (
    DocumentRefused,
    DocumentType,
    SellerDetails,
    credit_note_document,
    dumps,
    invoice_document,
    irn,
    is_einvoiced,
    loads,
)
from services.invoicing.domain.invoice import (
    ExchangeRate,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    TaxKind,
    TaxLine,
    TaxRegime,
)
from tests.unit.services.invoicing.adapters import invoice_samples as samples

D = Decimal
SELLER = SellerDetails(
    legal_name="Billing Platform Demo Pvt Ltd",
    address1="1 MG Road",
    location="Bengaluru",
    pin=560001,
    state_code="29",
    email="accounts@billing.example",
)
RATE_AT = datetime(2026, 10, 31, tzinfo=UTC)


def codes(document) -> set[str]:
    return {p.code for p in checks.problems(document)}


def rules(document) -> set[str]:
    return {p.rule for p in checks.problems(document)}


def test_intra_state_invoice_is_b2b_with_cgst_and_sgst_per_item_adding_up():
    doc = invoice_document(samples.inr_intra_state(), SELLER)
    assert checks.problems(doc) == []
    assert doc["Version"] == "1.1"
    assert doc["TranDtls"]["SupTyp"] == "B2B" and doc["TranDtls"]["TaxSch"] == "GST"
    assert doc["DocDtls"] == {"Typ": "INV", "No": "INV/2627/00001", "Dt": "01/11/2026"}
    assert doc["BuyerDtls"]["Gstin"] == samples.INTRA_GSTIN and doc["BuyerDtls"]["Pos"] == "29"
    assert doc["BuyerDtls"]["Pin"] == 560025 and doc["BuyerDtls"]["Loc"] == "Bengaluru"
    items = doc["ItemList"]
    assert [i["TotAmt"] for i in items] == [D("4999.00"), D("475.00"), D("69.14")]
    # CGST 498.88 spread over 4999.00 / 475.00 / 69.14 by largest remainder: 449.90, 42.75, 6.22 (+1 paisa to
    # the largest remainder) -- the item sums equal the invoice's tax lines exactly.
    assert sum(i["CgstAmt"] for i in items) == D("498.88") == sum(i["SgstAmt"] for i in items)
    assert all(i["IgstAmt"] == 0 and i["IsServc"] == "Y" and i["HsnCd"] == "998315" for i in items)
    assert doc["ValDtls"]["AssVal"] == D("5543.14")
    assert doc["ValDtls"]["TotInvVal"] == D("6540.90") and doc["ValDtls"]["RndOffAmt"] == 0
    assert "TotInvValFc" not in doc["ValDtls"]
    assert items[0]["Qty"] == D("1.000") and items[0]["UnitPrice"] == D("4999.000")


def test_inter_state_invoice_carries_igst():
    doc = invoice_document(samples.inr_inter_state(), SELLER)
    assert checks.problems(doc) == []
    assert sum(i["IgstAmt"] for i in doc["ItemList"]) == D("997.77")
    assert all(i["CgstAmt"] == 0 for i in doc["ItemList"])
    assert doc["ValDtls"]["TotInvVal"] == D("6540.91")


def test_discount_line_becomes_item_discounts_of_its_rate():
    doc = invoice_document(samples.inr_with_coupon(), SELLER)
    assert checks.problems(doc) == []
    assert len(doc["ItemList"]) == 3  # the coupon line is no item
    assert sum(i["Discount"] for i in doc["ItemList"]) == D("1108.63")
    for item in doc["ItemList"]:
        assert item["AssAmt"] == item["TotAmt"] - item["Discount"]
    assert doc["ValDtls"]["AssVal"] == D("4434.51") and doc["ValDtls"]["TotInvVal"] == D("5232.73")


def test_prepaid_credit_is_not_part_of_the_tax_invoice():
    doc = invoice_document(samples.inr_with_credit(), SELLER)
    assert checks.problems(doc) == []
    assert len(doc["ItemList"]) == 3
    assert doc["ValDtls"]["TotInvVal"] == D("5232.73")  # the total, not the 2,732.73 left to pay


def test_usd_export_without_igst_is_in_inr_at_the_stored_rate():
    invoice = samples.usd_export()  # 1 INR = 0.012031 USD
    doc = invoice_document(invoice, SELLER)
    assert checks.problems(doc) == []
    assert doc["TranDtls"]["SupTyp"] == "EXPWOP"
    buyer = doc["BuyerDtls"]
    assert (buyer["Gstin"], buyer["Pos"], buyer["Stcd"], buyer["Pin"]) == ("URP", "96", "96", 999999)
    # 60.14 / 0.012031 = 4998.753...; 5.71 / 0.012031 = 474.607...
    assert [i["TotAmt"] for i in doc["ItemList"]] == [D("4998.75"), D("474.61")]
    # 65.85 USD / 0.012031 = 5473.36 (5473.3605...): the items make 5473.36 too, so no round-off here.
    assert doc["ValDtls"]["TotInvVal"] == D("5473.36")
    assert doc["ValDtls"]["TotInvValFc"] == D("65.85")
    assert doc["ExpDtls"] == {"ForCur": "USD", "CntCode": "US"}


def test_jpy_export_converts_whole_yen_and_puts_the_difference_in_round_off():
    rate = ExchangeRate("INR", "JPY", D("1.7777"), "RBI", RATE_AT)
    doc = invoice_document(replace(samples.jpy_export(), exchange_rate=rate), SELLER)
    assert checks.problems(doc) == []
    # 7500 / 1.7777 = 4218.931...; 741 / 1.7777 = 416.830...; total 8241 / 1.7777 = 4635.766... -> 4635.77
    assert [i["TotAmt"] for i in doc["ItemList"]] == [D("4218.93"), D("416.83")]
    assert doc["ValDtls"]["TotInvVal"] == D("4635.77")
    assert doc["ValDtls"]["RndOffAmt"] == D("0.01")
    assert doc["ValDtls"]["TotInvValFc"] == D("8241.00")


def test_export_with_payment_of_igst_is_expwp():
    base = samples.usd_export()
    invoice = replace(
        base, tax_lines=(TaxLine(TaxKind.IGST, D(18), 6585, 1185),), tax_minor=1185, total_minor=6585 + 1185
    )
    doc = invoice_document(invoice, SELLER)
    assert doc["TranDtls"]["SupTyp"] == "EXPWP"
    assert checks.problems(doc) == []
    assert doc["ValDtls"]["IgstVal"] == D("984.96")  # 11.85 USD / 0.012031 = 984.9555 -> 984.96, converted once


def test_foreign_currency_without_an_inr_rate_is_refused():
    with pytest.raises(FailedPrecondition, match="without a stored JPY/INR exchange rate"):
        invoice_document(samples.jpy_export(), SELLER)


def test_kwd_export_three_minor_digits():
    rate = ExchangeRate("KWD", "INR", D("271.5"), "RBI", RATE_AT)
    doc = invoice_document(replace(samples.kwd_export(), exchange_rate=rate), SELLER)
    assert checks.problems(doc) == []
    assert [i["TotAmt"] for i in doc["ItemList"]] == [D("4140.38"), D("335184.94")]  # 15.250 x 271.5 = 4140.375


def test_b2c_is_not_einvoiced_b2b_and_exports_are():
    assert not is_einvoiced(TaxRegime.INTRA_STATE, "")
    assert is_einvoiced(TaxRegime.INTER_STATE, samples.INTER_GSTIN)
    assert is_einvoiced(TaxRegime.EXPORT, "")


def test_drafts_are_not_einvoiced():
    with pytest.raises(FailedPrecondition):
        invoice_document(replace(samples.inr_intra_state(), status=InvoiceStatus.DRAFT), SELLER)


def test_irn_is_sha256_of_gstin_financial_year_type_and_number():
    expected = hashlib.sha256(b"29AABCB1234C1ZA2026-27INVINV/2627/00001").hexdigest()
    assert irn(samples.SUPPLIER_GSTIN, date(2026, 11, 1), DocumentType.INVOICE, "INV/2627/00001") == expected
    assert (
        irn(samples.SUPPLIER_GSTIN, date(2027, 3, 31), DocumentType.INVOICE, "x1")
        == hashlib.sha256(b"29AABCB1234C1ZA2026-27INVX1").hexdigest()
    )
    assert (
        irn(samples.SUPPLIER_GSTIN, date(2027, 4, 1), DocumentType.CREDIT_NOTE, "CN/2728/00001")
        == hashlib.sha256(b"29AABCB1234C1ZA2027-28CRNCN/2728/00001").hexdigest()
    )
    assert len(expected) == 64


def credit_note(invoice) -> CreditNote:
    # Half the base fee back: 2,499.50, CGST and SGST 9% each = 224.955 -> 224.96. Total 2,949.42.
    return CreditNote(
        id="cn_1",
        invoice_id=invoice.id,
        organisation_id=invoice.organisation_id,
        number="CN/2627/00001",
        currency="INR",
        issue_date=date(2026, 11, 20),
        reason_code=CreditNoteReason.BILLING_ERROR,
        reason="x",
        outcome=CreditNoteOutcome.CREDIT,
        lines=(CreditNoteLine(1, "Standard plan - base fee", D(0), D("2499.50"), 249950, D(18), "998315"),),
        tax_lines=(TaxLine(TaxKind.CGST, D(9), 249950, 22496), TaxLine(TaxKind.SGST, D(9), 249950, 22496)),
        subtotal_minor=249950,
        tax_minor=44992,
        total_minor=294942,
        invoice_number=invoice.number,
        invoice_issue_date=invoice.issue_date,
        tax_regime=invoice.tax_regime,
        place_of_supply="29",
        supplier=invoice.supplier,
        customer=invoice.customer,
    )


def test_credit_note_is_crn():
    invoice = samples.inr_intra_state()
    doc = credit_note_document(credit_note(invoice), invoice, SELLER)
    assert checks.problems(doc) == []
    assert doc["DocDtls"] == {"Typ": "CRN", "No": "CN/2627/00001", "Dt": "20/11/2026"}
    assert doc["ValDtls"]["TotInvVal"] == D("2949.42")
    assert doc["ItemList"][0]["Qty"] == D("1.000")  # credited by amount


# --- the checks, one per rule -------------------------------------------------------------------------------------


@pytest.fixture
def good():
    return invoice_document(samples.inr_intra_state(), SELLER)


@pytest.mark.parametrize(
    "offset,refused", [("0.99", False), ("1.00", False), ("-1.00", False), ("1.01", True), ("-1.01", True)]
)
def test_total_invoice_value_within_one_rupee(good, offset, refused):
    good["ValDtls"]["TotInvVal"] += D(offset)
    assert ("2189" in codes(good)) is refused


@given(st.integers(min_value=-150, max_value=150))
@settings(max_examples=60, deadline=None)
def test_round_off_accounts_for_the_difference(paise):
    doc = invoice_document(samples.inr_intra_state(), SELLER)
    doc["ValDtls"]["TotInvVal"] += D(paise).scaleb(-2)
    doc["ValDtls"]["RndOffAmt"] = D(paise).scaleb(-2)
    assert "2189" not in codes(doc)


def test_assessable_amount_must_be_total_less_discount(good):
    good["ItemList"][0]["AssAmt"] += D("0.01")
    assert "2193" in codes(good)


def test_total_taxable_value_must_be_the_item_sum(good):
    good["ValDtls"]["AssVal"] -= D("0.01")
    assert "2182" in codes(good)


def test_tax_totals_and_item_value_must_add_up(good):
    good["ValDtls"]["CgstVal"] += D("0.01")
    good["ItemList"][1]["TotItemVal"] += D("0.01")
    assert {"total tax", "item value"} <= rules(good)


def test_igst_within_a_state_is_refused(good):
    good["ItemList"][0]["IgstAmt"] = D("1.00")
    assert "2172" in codes(good)


def test_cgst_across_states_is_refused():
    doc = invoice_document(samples.inr_inter_state(), SELLER)
    doc["ItemList"][0]["CgstAmt"] = D("1.00")
    assert "2172" in codes(doc)


def test_decimal_places(good):
    good["ItemList"][0]["TotAmt"] = D("4999.001")
    good["ItemList"][0]["Qty"] = D("1.0001")
    found = [p for p in checks.problems(good) if p.rule == "decimal places"]
    assert {p.field for p in found} == {"ItemList[0].TotAmt", "ItemList[0].Qty"}
    assert all(p.code == "2140" for p in found)


def test_three_decimals_allowed_for_quantity_unit_price_and_rate(good):
    good["ItemList"][0]["UnitPrice"] = D("4999.000")
    good["ItemList"][0]["GstRt"] = D("18.000")
    assert checks.problems(good) == []


def test_service_flag_follows_the_sac_code(good):
    good["ItemList"][0]["IsServc"] = "N"
    assert "service flag" in rules(good)
    good["ItemList"][0]["HsnCd"] = "12"
    assert "2176" in codes(good)


def test_at_most_a_thousand_items():
    doc = invoice_document(samples.many_lines(120), SELLER)
    assert checks.problems(doc) == []
    item = doc["ItemList"][0]
    doc["ItemList"] = [dict(item, SlNo=str(n)) for n in range(1, 1002)]
    assert "item count" in rules(doc)


def test_document_number_pattern(good):
    for number in ("0INV/1", "-A", "", "A" * 17, "INV 1"):
        doc = deepcopy(good)
        doc["DocDtls"]["No"] = number
        assert "document number" in rules(doc), number
    good["DocDtls"]["No"] = "A" * 16
    assert checks.problems(good) == []


def test_future_document_date(good):
    assert checks.problems(good, today=date(2026, 11, 1)) == []
    assert "2163" in {p.code for p in checks.problems(good, today=date(2026, 10, 31))}


def test_export_buyer_must_be_urp_with_place_96():
    doc = invoice_document(samples.usd_export(), SELLER)
    doc["BuyerDtls"]["Pos"] = "29"
    assert "export buyer" in rules(doc)


def test_b2b_buyer_must_have_a_gstin(good):
    good["BuyerDtls"]["Gstin"] = "URP"
    assert "buyer GSTIN" in rules(good)


def test_supplier_gstin_required(good):
    del good["SellerDtls"]["Gstin"]
    assert "2155" in codes(good)


def test_negative_taxable_value_is_refused():
    base = samples.inr_intra_state()
    big_discount = InvoiceLine(
        number=9,
        kind=LineKind.DISCOUNT,
        description="too much",
        quantity=D(1),
        unit_price=D("-6000"),
        amount_minor=-600000,
        gst_rate=D(18),
        sac_code="998315",
    )
    doc = invoice_document(replace(base, lines=(*base.lines, big_discount)), SELLER)
    assert "non-negative values" in rules(doc) or "2193" in codes(doc)


def test_check_raises_naming_rule_and_code(good):
    good["ValDtls"]["AssVal"] = D(0)
    with pytest.raises(DocumentRefused, match=r"ValDtls.AssVal.*IRP error 2182"):
        checks.check(good)


def test_json_text_keeps_decimals_exact(good):
    text = dumps(good)
    assert '"TotInvVal":6540.90' in text and '"Qty":1.000' in text
    assert loads(text)["ValDtls"]["TotInvVal"] == D("6540.90")
    assert checks.problems(loads(text)) == []


# --- time rules ---------------------------------------------------------------------------------------------------


def test_thirty_day_rule_for_large_suppliers_only():
    dated = date(2026, 11, 1)
    assert checks.reporting_problem(dated, date(2026, 12, 1), checks.TurnoverBand.FROM_10_CRORE) is None
    assert "30 days" in checks.reporting_problem(dated, date(2026, 12, 2), checks.TurnoverBand.FROM_10_CRORE)
    assert checks.reporting_problem(dated, date(2027, 3, 1), checks.TurnoverBand.BELOW_10_CRORE) is None


def test_cancellation_within_24_hours():
    at = datetime(2026, 11, 1, 10, tzinfo=UTC)
    checks.check_cancellable(at, at + timedelta(hours=24))
    with pytest.raises(FailedPrecondition, match="credit note"):
        checks.check_cancellable(at, at + timedelta(hours=24, seconds=1))


def test_cancel_reason_codes():
    assert checks.cancel_reason("2") is checks.CancelReason.DATA_ENTRY_MISTAKE
    with pytest.raises(InvalidArgument):
        checks.cancel_reason("5")


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=20),
    discount_share=st.integers(min_value=0, max_value=100),
    currency_rate=st.sampled_from([("INR", None), ("USD", D("0.012031")), ("JPY", D("1.7777")), ("KWD", D("0.00368"))]),
    regime=st.sampled_from([TaxRegime.INTRA_STATE, TaxRegime.INTER_STATE, TaxRegime.EXPORT]),
)
@settings(max_examples=150, deadline=None)
def test_any_consistent_invoice_makes_an_accepted_document(amounts, discount_share, currency_rate, regime):
    from services.invoicing.domain.gst import tax_lines

    currency, rate = currency_rate
    lines = [
        InvoiceLine(
            number=n,
            kind=LineKind.USAGE,
            description=f"Metric {n}",
            quantity=D(n),
            unit_price=D(1),
            amount_minor=a,
            gst_rate=D(18),
            sac_code="998315",
        )
        for n, a in enumerate(amounts, start=1)
    ]
    off = sum(amounts) * discount_share // 100
    if off:
        lines.append(
            InvoiceLine(
                number=len(lines) + 1,
                kind=LineKind.DISCOUNT,
                description="coupon",
                quantity=D(1),
                unit_price=D(0),
                amount_minor=-off,
                gst_rate=D(18),
                sac_code="998315",
            )
        )
    taxes = tax_lines(lines, regime)
    subtotal = sum(line.amount_minor for line in lines)
    tax = sum(t.amount_minor for t in taxes)
    if subtotal + tax <= 0:
        return
    base = (
        samples.inr_inter_state()
        if regime is TaxRegime.INTER_STATE
        else (samples.inr_intra_state() if regime is TaxRegime.INTRA_STATE else samples.usd_export())
    )
    invoice = replace(
        base,
        currency=currency,
        lines=tuple(lines),
        tax_lines=taxes,
        subtotal_minor=subtotal,
        tax_minor=tax,
        total_minor=subtotal + tax,
        exchange_rate=None if rate is None else ExchangeRate("INR", currency, rate, "RBI", RATE_AT),
    )
    doc = invoice_document(invoice, SELLER)
    assert checks.problems(doc) == []
    assert abs(doc["ValDtls"]["RndOffAmt"]) <= D("1.00")


def test_quantity_and_unit_price_multiply_to_the_item_total():
    doc = invoice_document(samples.inr_intra_state(), SELLER)
    # LLM tokens: 3,456,789 x 0.00002 = 69.14 would print a unit price of 0.000: the item is 1 unit at its total.
    base, calls, tokens = doc["ItemList"]
    assert (base["Qty"], base["UnitPrice"]) == (D("1.000"), D("4999.000"))
    assert (calls["Qty"], calls["UnitPrice"], calls["TotAmt"]) == (D("1.000"), D("475.000"), D("475.00"))
    assert (tokens["Qty"], tokens["UnitPrice"]) == (D("1.000"), D("69.140"))
    many = invoice_document(samples.many_lines(3), SELLER)["ItemList"]
    assert [(i["Qty"], i["UnitPrice"], i["TotAmt"]) for i in many] == [
        (D("10.000"), D("0.100"), D("1.00")),
        (D("20.000"), D("0.100"), D("2.00")),
        (D("30.000"), D("0.100"), D("3.00")),
    ]


@pytest.mark.parametrize(
    ("address", "country", "expected"),
    [
        ("42 Residency Road\nBengaluru 560025", "IN", ("42 Residency Road", "Bengaluru")),
        ("1 MG Road, Bengaluru 560001, Karnataka", "IN", ("1 MG Road", "Bengaluru")),
        ("500 Howard Street\nSan Francisco, CA 94105", "US", ("500 Howard Street", "San Francisco, CA 94105")),
        ("Sharq", "KW", ("Sharq", "Kuwait")),
    ],
)
def test_buyer_address_line_and_location(address, country, expected):
    from services.invoicing.domain.einvoice import _address_parts

    assert _address_parts(address, country) == expected
