"""How the CLI states a plan's base fee and its billing interval."""

from __future__ import annotations

from billing_cli.catalog import _base_fee_cell, describe_base_fee


def test_a_monthly_plan_reads_as_before() -> None:
    terms = {"currency": "INR", "base_fee": "999", "billing_interval": "month", "base_fee_timing": "in_arrears"}
    assert describe_base_fee(terms) == "INR 999 per period"
    assert _base_fee_cell(terms) == "999"


def test_a_yearly_plan_states_its_year_its_timing_and_its_discount() -> None:
    terms = {"currency": "INR", "base_fee": "10000", "billing_interval": "year", "base_fee_timing": "in_advance",
             "annual_discount_percent": "10"}
    assert describe_base_fee(terms) == (
        "INR 10000 per month, billed per year in advance: 108000 a year (10% annual discount)"
    )
    assert _base_fee_cell(terms) == "10000/month, per year in advance"


def test_a_quarterly_plan_in_kwd_keeps_its_three_decimals() -> None:
    terms = {"currency": "KWD", "base_fee": "12.345", "billing_interval": "quarter"}
    assert describe_base_fee(terms) == "KWD 12.345 per month, billed per quarter in arrears: 37.035 a quarter"
