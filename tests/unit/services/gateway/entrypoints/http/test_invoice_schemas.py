"""Invoice and quote protobuf -> JSON: minor units as integers with the same amount as exact decimal text; a
projected invoice's late usage and prepaid credit, in JSON and on the dashboard."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.invoicing.v1 import invoicing_pb2 as pb
from services.gateway.entrypoints.http.invoice_schemas import Invoice, InvoiceRun, ProjectedInvoice
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.http.pricing_schemas import Quote
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.rendering import environment


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(118000, "INR", "1180.00"), (5, "INR", "0.05"), (-5, "INR", "-0.05"), (0, "USD", "0.00"),
     (1234, "JPY", "1234"), (1234, "KWD", "1.234"), (7, "KWD", "0.007"), (-1000, "KWD", "-1.000"),
     (123456789012345678, "INR", "1234567890123456.78")],
)
def test_minor_units_as_decimal_text(minor, currency, text):
    assert minor_to_text(minor, currency) == text


def test_currencies_without_minor_units_have_no_text():
    assert minor_to_text(100, "XAU") is None and minor_to_text(100, "ZZZ") is None


@given(st.integers(min_value=-(10**20), max_value=10**20), st.sampled_from(["INR", "JPY", "KWD"]))
def test_text_is_the_integer_scaled_exactly(minor, currency):
    places = {"INR": 2, "JPY": 0, "KWD": 3}[currency]
    text = minor_to_text(minor, currency)
    assert Decimal(text) == Decimal(minor).scaleb(-places)
    assert len(text.partition(".")[2]) == places


def _invoice() -> pb.Invoice:
    # Worked example: base fee 999.00 + 125,000 API calls at 0.02 = 2500.00; subtotal 3499.00.
    # Intra-state GST: CGST 9 % of 3499.00 = 314.91, SGST the same; tax 629.82; total 4128.82.
    invoice = pb.Invoice(
        id="inv_1", organisation_id="org_1", number="INV/2627/00001", status=pb.INVOICE_STATUS_ISSUED,
        currency="INR", period_key="2026-10", subtotal_minor=349900, tax_minor=62982, total_minor=412882,
        tax_regime=pb.TAX_REGIME_INTRA_STATE, place_of_supply="29", issue_date="2026-11-01", due_date="2026-11-16",
        supplier=pb.Party(name="Billing Co", gstin="29AAAAA0000A1Z5", state_code="29", country="IN"),
        customer=pb.Party(name="Acme", state_code="29", country="IN"), notes=["Thank you"],
        lines=[
            pb.InvoiceLine(number=1, kind=pb.LINE_KIND_BASE_FEE, description="Standard", quantity="1",
                           unit_price="999", amount_minor=99900, gst_rate="18", sac_code="998315"),
            pb.InvoiceLine(number=2, kind=pb.LINE_KIND_USAGE, description="API calls", quantity="125000",
                           unit_price="0.02", amount_minor=250000, metric_code="api_calls",
                           charge_model="per_unit", gst_rate="18", sac_code="998315",
                           breakdown=[pb.TierAmount(description="125000 at 0.02", quantity="125000",
                                                    unit_price="0.02", flat_fee="0", amount="2500.00")]),
        ],
        tax_lines=[pb.TaxLine(kind=pb.TAX_KIND_CGST, rate="9", taxable_minor=349900, amount_minor=31491),
                   pb.TaxLine(kind=pb.TAX_KIND_SGST, rate="9", taxable_minor=349900, amount_minor=31491)],
    )
    invoice.period_start.FromSeconds(1_790_793_000)  # 2026-09-30T18:30:00Z
    return invoice


def test_invoice_amounts_are_integers_and_decimal_text():
    body = Invoice.from_pb(_invoice()).model_dump(mode="json")
    assert (body["subtotal_minor"], body["subtotal"]) == (349900, "3499.00")
    assert (body["tax_minor"], body["tax"], body["total_minor"], body["total"]) == (62982, "629.82", 412882,
                                                                                    "4128.82")
    assert [(line["kind"], line["amount_minor"], line["amount"]) for line in body["lines"]] == [
        ("base_fee", 99900, "999.00"), ("usage", 250000, "2500.00")]
    assert body["lines"][1]["breakdown"] == [{"description": "125000 at 0.02", "quantity": "125000",
                                              "unit_price": "0.02", "flat_fee": "0", "amount": "2500.00",
                                              "from_units": None, "up_to": None}]
    assert [(t["kind"], t["rate"], t["taxable"], t["amount"]) for t in body["tax_lines"]] == [
        ("cgst", "9", "3499.00", "314.91"), ("sgst", "9", "3499.00", "314.91")]
    assert (body["status"], body["tax_regime"], body["issue_date"], body["due_date"]) == (
        "issued", "intra_state", "2026-11-01", "2026-11-16")
    assert body["period_start"] == "2026-09-30T18:30:00Z" and body["period_end"] is None
    assert body["exchange_rate"] is None and body["voided_at"] is None and body["projected"] is False
    assert body["supplier"]["gstin"] == "29AAAAA0000A1Z5" and body["notes"] == ["Thank you"]


def test_an_export_invoice_in_usd_with_its_exchange_rate():
    invoice = pb.Invoice(id="inv_2", currency="USD", status=pb.INVOICE_STATUS_VOID, total_minor=5918,
                         tax_regime=pb.TAX_REGIME_EXPORT, void_reason="wrong address",
                         exchange_rate=pb.ExchangeRate(id="fx_1", base_currency="INR", quote_currency="USD",
                                                       rate="0.011834", source="demo"))
    body = Invoice.from_pb(invoice).model_dump(mode="json")
    assert (body["total"], body["status"], body["tax_regime"], body["void_reason"]) == (
        "59.18", "void", "export", "wrong address")
    assert body["exchange_rate"]["rate"] == "0.011834" and body["issue_date"] is None


def test_invoice_run_counts_and_state():
    run = pb.InvoiceRun(id="run_1", period_key="2026-10", state=pb.INVOICE_RUN_STATE_RUNNING, trigger="api",
                        organisations_total=10, organisations_done=4, invoiced=2, already_invoiced=1, not_due=0,
                        no_subscription=0, failed=1,
                        failures=[pb.InvoiceRunFailure(organisation_id="org_9", message="no USD->INR rate")])
    body = InvoiceRun.from_pb(run).model_dump(mode="json")
    assert (body["state"], body["organisations_done"], body["organisations_total"], body["failed"]) == (
        "running", 4, 10, 1)
    assert body["failures"] == [{"organisation_id": "org_9", "message": "no USD->INR rate"}]
    assert body["finished_at"] is None


def test_quote_lines_rounded_with_text():
    # 1500 units graduated: 1000 at 0.10 = 100, 500 at 0.05 = 25 -> 125; minimum amount 200 -> +75.00.
    reply = pb.QuotePriceResponse(currency="INR", quantity="1500", billable_quantity="1500", amount="125.00",
                                  usage_minor=12500, minimum_spend_minor=7500, maximum_cap_minor=0,
                                  total_minor=20000,
                                  breakdown=[pb.TierAmount(description="first", quantity="1000", unit_price="0.10",
                                                           flat_fee="0", amount="100.00", from_units="0",
                                                           up_to="1000")])
    body = Quote.from_pb(reply).model_dump(mode="json")
    assert (body["usage"], body["minimum_spend"], body["maximum_cap"], body["total"]) == (
        "125.00", "75.00", "0.00", "200.00")
    assert body["breakdown"][0]["from_units"] == "0" and body["breakdown"][0]["up_to"] == "1000"


def test_a_projected_invoice_carries_its_late_usage_and_the_credit_it_would_spend_and_so_does_its_forecast():
    projected = _invoice()
    projected.projected, projected.number, projected.status = True, "", pb.INVOICE_STATUS_DRAFT
    projected.lines.add(number=3, kind=pb.LINE_KIND_USAGE_ADJUSTMENT, description="API calls: late usage of period "
                        "2026-09", quantity="100", unit_price="0.02", amount_minor=200, metric_code="api_calls",
                        adjusts_period_key="2026-09", gst_rate="18", sac_code="998315")
    projected.credit_lines.add(number=4, kind=pb.LINE_KIND_CREDIT, description="Prepaid credit: top-up (crg_1)",
                               quantity="1", unit_price="-1000", amount_minor=-100000, credit_grant_id="crg_1")
    projected.credits_minor, projected.amount_due_minor = 100000, 312882
    reply = pb.GetProjectedInvoiceResponse(invoice=projected)
    reply.forecast.invoice.CopyFrom(projected)
    body = ProjectedInvoice.from_response(reply).model_dump(mode="json")
    for invoice in (body, body["forecast"]["invoice"]):
        assert [(line["kind"], line["adjusts_period_key"], line["amount"]) for line in invoice["lines"][2:]] == [
            ("usage_adjustment", "2026-09", "2.00")]
        assert [(line["kind"], line["credit_grant_id"], line["amount"]) for line in invoice["credit_lines"]] == [
            ("credit", "crg_1", "-1000.00")]
        assert (invoice["credits"], invoice["amount_due"], invoice["projected"]) == ("1000.00", "3128.82", True)


def test_the_dashboard_shows_the_credit_lines_and_what_is_left_to_pay_below_the_total():
    projected = _invoice()
    projected.projected = True
    projected.credit_lines.add(number=3, kind=pb.LINE_KIND_CREDIT, description="Prepaid credit: top-up (crg_1)",
                               quantity="1", unit_price="-1000", amount_minor=-100000, credit_grant_id="crg_1")
    projected.credits_minor, projected.amount_due_minor = 100000, 312882
    template = environment.get_template("customer/_invoice_lines.html")
    show = Presentation.of("IN", "Asia/Kolkata")
    html = template.render(invoice=ProjectedInvoice.from_pb(projected), caption="c", show=show)
    assert "Prepaid credit: top-up (crg_1)" in html and "-₹1,000.00" in html.replace("−", "-")
    assert "Left to pay if the period ended now" in html and "₹3,128.82" in html
    plain = template.render(invoice=Invoice.from_pb(_invoice()), caption="c", show=show)
    assert "credit-line" not in plain and "invoice-amount-due" not in plain
