"""billing invoices projected without a server: the prepaid credit the period close would spend, and the late usage
it would bill, as the operator reads them."""

from __future__ import annotations

from tests.unit.billing_cli.recorder import billing


def line(number: int, kind: str, description: str, amount: str, **fields) -> dict:
    return {"number": number, "kind": kind, "description": description, "quantity": "1", "unit_price": amount,
            "amount_minor": int(amount.replace(".", "").replace("-", "")) * (-1 if amount.startswith("-") else 1),
            "amount": amount, "metric_code": "", "charge_model": "", "plan_version_id": "", "period_start": None,
            "period_end": None, "gst_rate": "18", "sac_code": "998314", "adjusts_period_key": "", **fields}


def invoice(total: str, credit: str, due: str, *, projected: bool = True) -> dict:
    minor = int(credit.replace(".", ""))
    return {
        "id": "projected", "organisation_id": "org_1", "number": "", "status": "draft", "currency": "INR",
        "period_key": "2027-01", "period_start": None, "period_end": None,
        "lines": [line(1, "base_fee", "Standard", "1000.00"),
                  line(2, "usage_adjustment", "API calls: late usage of period 2026-12", "50.00",
                       metric_code="api_calls", adjusts_period_key="2026-12")],
        "tax_lines": [], "subtotal_minor": 105000, "subtotal": "1050.00", "tax_minor": 0, "tax": "0.00",
        "total_minor": 105000, "total": total, "amount_due_minor": 0, "amount_due": due,
        "credit_lines": [line(3, "credit", "Prepaid credit: granted credit (crg_1)", f"-{credit}",
                              credit_grant_id="crg_1")] if minor else [],
        "credits_minor": minor, "credits": credit, "tax_regime": "intra_state", "place_of_supply": "29",
        "supplier": None, "customer": {"name": "Acme"}, "exchange_rate": None, "issue_date": None, "due_date": None,
        "void_reason": "", "voided_at": None, "replaces_invoice_id": "", "created_at": None, "notes": [],
        "projected": projected,
    }


def test_the_credit_lines_the_late_usage_and_what_is_left_to_pay(gateway):
    forecast = {"method": "daily_trend", "as_of": None, "days_in_period": 31, "days_elapsed": "4.5",
                "days_observed": 4, "window_days": 7, "metrics": [],
                "invoice": invoice("2000.00", "0.00", "2000.00")}
    gateway.answer(200, {**invoice("1050.00", "300.00", "750.00"), "forecast": forecast})
    code, out = billing("invoices", "projected", "org_1")
    assert code == 0, out
    assert "API calls: late usage of period 2026-12" in out and "Prepaid credit: granted credit (crg_1)" in out
    assert "-300.00" in out and "left to pay if the period closed now" in out and "750.00 INR" in out
    assert "prepaid credit" in out and "2000.00 INR" in out  # the forecast's row: nothing spent of its total


def test_without_credit_the_totals_read_as_before(gateway):
    gateway.answer(200, {**invoice("1050.00", "0.00", "1050.00"), "forecast": None})
    code, out = billing("invoices", "projected", "org_1", "--no-forecast")
    assert code == 0 and "left to pay" not in out and "prepaid credit" not in out
