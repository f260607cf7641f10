"""billing plans | subscriptions | rates | quote | invoices, run with typer's CliRunner against the in-process
gateway and the real invoicing service."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from billing_cli.connection import CliError
from billing_cli.documents import load_document
from tests.integration.gateway.billing_setup import SEPTEMBER, billing, organisation, plan, subscribed

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def own_catalog(tmp_path: Path) -> tuple[Path, str]:
    """docs/examples/catalog.json with this test's plan codes (codes are global), written to a file."""
    catalog = json.loads((EXAMPLES / "catalog.json").read_text())
    suffix = secrets.token_hex(3)
    for entry in catalog["plans"]:
        entry["code"] = f"{entry['code']}-{suffix}"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path, suffix


async def test_plans_from_the_sample_catalog_file_once_however_often(gateway_url, tmp_path):
    path, suffix = own_catalog(tmp_path)
    code, out = await billing(gateway_url, "plans", "create", str(path), "--json")
    assert code == 0, out
    created = json.loads(out)
    assert [p["code"] for p in created] == [f"free-{suffix}", f"standard-{suffix}", f"enterprise-{suffix}"]
    code, again = await billing(gateway_url, "plans", "create", str(path), "--json")
    assert code == 0 and [p["id"] for p in json.loads(again)] == [p["id"] for p in created]  # derived keys replay

    code, table = await billing(gateway_url, "plans", "list")
    assert code == 0 and f"standard-{suffix}" in table and "enterprise" in table
    code, shown = await billing(gateway_url, "plans", "show", f"standard-{suffix}")
    assert code == 0, shown
    assert "Standard" in shown and "INR 999 per period" in shown
    assert "0-100000 @ 0.02" in shown and "150 per 1000000 units (rounded up)" in shown
    assert "soft" in shown  # the quotas table

    terms = tmp_path / "standard-v2.json"
    standard = next(p for p in created if p["code"] == f"standard-{suffix}")
    terms.write_text(json.dumps({**standard["latest_version"]["terms"], "base_fee": "1099"}))
    code, out = await billing(gateway_url, "plans", "new-version", f"standard-{suffix}", str(terms), "--reason",
                              "new prices", "--json")
    assert code == 0 and json.loads(out)["version"] == 2 and json.loads(out)["terms"]["base_fee"] == "1099"
    code, out = await billing(gateway_url, "plans", "versions", standard["id"], "--json")
    assert [v["version"] for v in json.loads(out)] == [1, 2]
    code, out = await billing(gateway_url, "plans", "show", f"standard-{suffix}", "--version", "1", "--json")
    assert json.loads(out)["terms"]["base_fee"] == "999"


async def test_bad_terms_in_a_file_are_one_line_naming_the_field(gateway_url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"currency": "INR", "charges": [{"metric_code": "api_calls", "charge": {"model": "graduated", '
                   '"tiers": [{"up_to": "100", "unit_price": "1"}, {"up_to": "50", "unit_price": "1"}]}}]}')
    code, out = await billing(gateway_url, "plans", "create", str(bad), "--code", f"bad-{secrets.token_hex(3)}",
                              "--name", "Bad")
    assert code == 1 and out.startswith("400") and "terms.charges[0].charge.tiers[1].up_to" in out
    code, out = await billing(gateway_url, "plans", "create", str(bad))
    assert code == 1 and "--code and --name" in out


def test_files_keep_their_numbers_exact(tmp_path):
    path = tmp_path / "terms.json"
    path.write_text('{"currency": "INR", "base_fee": 999.10, "quotas": [{"limit": 1e6}], "n": 3}')
    assert load_document(path) == {"currency": "INR", "base_fee": "999.10", "quotas": [{"limit": "1E+6"}], "n": 3}
    yaml_file = tmp_path / "terms.yaml"
    yaml_file.write_text("currency: INR\nbase_fee: 999.10\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(CliError, match="PyYAML"):
            load_document(yaml_file)
    else:
        assert load_document(yaml_file) == {"currency": "INR", "base_fee": "999.10"}


async def test_subscriptions_and_rates(gateway_url, admin_http, invoicing):
    organisation_id = await organisation(admin_http, invoicing, since=SEPTEMBER)
    first, second = await plan(admin_http), await plan(admin_http)
    code, out = await billing(gateway_url, "subscriptions", "create", "--organisation", organisation_id, "--plan",
                              first["code"], "--start-date", "2026-10-01", "--json")
    assert code == 0, out
    subscription = json.loads(out)[0]
    assert subscription["state"] == "active" and subscription["plan_version_id"] == first["latest_version"]["id"]
    code, out = await billing(gateway_url, "subscriptions", "list", "--organisation", organisation_id)
    assert code == 0 and subscription["id"] in out
    code, out = await billing(gateway_url, "subscriptions", "change-plan", subscription["id"], "--plan",
                              second["code"], "--effective-date", "2026-10-01")
    assert code == 1 and out.startswith("400") and "effective_date" in out  # not after the current phase's start
    code, out = await billing(gateway_url, "subscriptions", "change-plan", subscription["id"], "--plan",
                              second["code"], "--effective-date", "2026-10-16", "--json")
    assert code == 0, out
    assert json.loads(out)[0]["plan_version_id"] == second["latest_version"]["id"]
    code, out = await billing(gateway_url, "subscriptions", "cancel", subscription["id"], "--json")
    assert code == 0 and json.loads(out)[0]["cancel_at_period_end"] is True
    code, out = await billing(gateway_url, "subscriptions", "create", "--organisation", organisation_id)
    assert code == 1 and "--plan" in out

    code, out = await billing(gateway_url, "rates", "add", "--base", "GBP", "--quote", "INR", "--rate", "106.25",
                              "--source", "cli test", "--effective-at", "2026-03-01T00:00:00Z", "--json")
    assert code == 0 and json.loads(out)[0]["rate"] == "106.25"
    code, out = await billing(gateway_url, "rates", "list", "--base", "GBP", "--quote", "INR")
    assert code == 0 and "106.25" in out and "cli test" in out


async def test_quote_from_the_example_charge_file(gateway_url):
    # 1,500 units: 1,000 x 0.10 + 500 x 0.05 = 125.00.
    code, out = await billing(gateway_url, "quote", "--currency", "INR", "--charge",
                              str(EXAMPLES / "charge-graduated.json"), "--quantity", "1500")
    assert code == 0, out
    assert "125.00" in out and "rounded half-up" in out
    code, out = await billing(gateway_url, "quote", "--currency", "INR", "--charge",
                              str(EXAMPLES / "charge-graduated.json"), "--quantity", "1500", "--json")
    assert json.loads(out)["total_minor"] == 12500


async def test_invoices_run_with_progress_then_list_show_pdf_void_reissue(gateway_url, admin_http, invoicing,
                                                                         tmp_path):
    organisation_id = await subscribed(admin_http, invoicing)
    code, out = await billing(gateway_url, "invoices", "run", "--period", "2026-10", "--organisation",
                              organisation_id, "--poll-interval", "0.05")
    assert code == 0, out
    assert "completed (1/1 organisations)" in out
    assert "invoiced" in out and "already invoiced" in out and "no subscription" in out
    assert "billing invoices list --period 2026-10" in out

    code, out = await billing(gateway_url, "invoices", "run", "--period", "2026-10", "--organisation",
                              organisation_id, "--json")
    assert code == 0 and (json.loads(out)["invoiced"], json.loads(out)["already_invoiced"]) == (0, 1)

    code, out = await billing(gateway_url, "invoices", "list", "--organisation", organisation_id, "--json")
    (invoice,) = json.loads(out)
    code, shown = await billing(gateway_url, "invoices", "show", invoice["id"])
    assert code == 0, shown
    # 999.00 base fee, no usage; CGST 9 % + SGST 9 % of 999.00 = 89.91 each; total 1,178.82.
    assert invoice["number"] in shown and "1178.82 INR" in shown and "CGST 9% on 999.00" in shown

    pdf = tmp_path / "invoice.pdf"
    code, out = await billing(gateway_url, "invoices", "pdf", invoice["id"], "--out", str(pdf))
    assert code == 0 and pdf.read_bytes().startswith(b"%PDF") and str(pdf) in out

    code, out = await billing(gateway_url, "invoices", "void", invoice["id"], "--reason", "Wrong address", "--json")
    assert code == 0 and json.loads(out)[0]["status"] == "void"
    code, out = await billing(gateway_url, "invoices", "reissue", invoice["id"], "--json")
    reissued = json.loads(out)[0]
    assert code == 0 and reissued["number"] != invoice["number"] and reissued["status"] == "issued"

    code, out = await billing(gateway_url, "invoices", "projected", organisation_id)
    assert code == 0 and "Projected invoice for" in out and "so far" in out and "999.00" in out
    # No usage: the forecast of the period's end is the base fee too, and says how it was made.
    assert "Forecast for the end of period" in out and "days gone; projected from" in out
    assert out.count("1178.82 INR") == 3  # the total so far, and both columns of the forecast's total row
    code, out = await billing(gateway_url, "invoices", "projected", organisation_id, "--no-forecast")
    assert code == 0 and "Projected invoice for" in out and "Forecast" not in out

    code, out = await billing(gateway_url, "invoices", "runs", "--json")
    assert code == 0 and any(r["organisation_id"] == organisation_id for r in json.loads(out))


async def test_a_run_with_a_failure_lists_it_and_exits_1(gateway_url, admin_http, invoicing):
    # A CHF plan for an organisation billed in SEK, with no CHF->SEK rate: that organisation fails, clearly.
    organisation_id = await organisation(admin_http, invoicing, billing_currency="SEK", country="SE", state_code="",
                                         timezone="Europe/Stockholm", since=SEPTEMBER)
    chf = await admin_http.post("/api/v1/admin/plans", json={
        "code": f"chf-{secrets.token_hex(3)}", "name": "Swiss", "terms": {"currency": "CHF", "base_fee": "100"}})
    assert chf.status_code == 201, chf.text
    subscription = await admin_http.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_code": chf.json()["code"], "start_date": "2026-10-01"})
    assert subscription.status_code == 201, subscription.text
    code, out = await billing(gateway_url, "invoices", "run", "--period", "2026-10", "--organisation",
                              organisation_id, "--poll-interval", "0.05")
    assert code == 1, out
    assert "First failures" in out and organisation_id in out and "CHF" in out and "SEK" in out
