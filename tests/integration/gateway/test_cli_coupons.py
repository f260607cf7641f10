"""billing coupons create | list | apply | remove | archive and billing quote with a discount, run with typer's
CliRunner against the in-process gateway and the real invoicing service."""

from __future__ import annotations

import json
import secrets

from tests.integration.gateway.billing_setup import billing, subscribed


async def test_create_apply_list_remove_and_archive_a_coupon(gateway_url, admin_http, invoicing):
    organisation_id = await subscribed(admin_http, invoicing)
    code = f"LAUNCH-{secrets.token_hex(3).upper()}"
    create = ("coupons", "create", "--code", code.lower(), "--name", "Launch offer", "--percent-off", "20",
              "--duration", "repeating", "--periods", "3", "--max-redemptions", "10")
    status, out = await billing(gateway_url, *create, "--json")
    assert status == 0, out
    created = json.loads(out)[0]
    assert (created["code"], created["percent_off"], created["duration_periods"]) == (code, "20", 3)
    status, again = await billing(gateway_url, *create, "--json")
    assert status == 0 and json.loads(again)[0]["id"] == created["id"]  # the derived key replays

    status, table = await billing(gateway_url, "coupons", "list")
    assert status == 0 and code in table and "20% off" in table and "3 periods" in table and "0 of 10" in table

    status, out = await billing(gateway_url, "coupons", "apply", code, "--organisation", organisation_id,
                                "--start-period", "2026-10")
    assert status == 0, out
    assert f"Coupon {code} applied to {organisation_id} from 2026-10" in out
    status, out = await billing(gateway_url, "coupons", "list", "--organisation", organisation_id, "--json")
    [held] = json.loads(out)
    assert (held["coupon"]["code"], held["state"], held["periods_remaining"]) == (code, "active", 3)
    status, out = await billing(gateway_url, "coupons", "apply", code, "--organisation", organisation_id)
    assert status == 1 and f"already has coupon {code}" in out

    status, out = await billing(gateway_url, "coupons", "remove", code.lower(), "--organisation", organisation_id)
    assert status == 0 and f"Coupon {code} removed from {organisation_id}" in out and "removed" in out
    status, out = await billing(gateway_url, "coupons", "remove", code, "--organisation", organisation_id)
    assert status == 1 and f"has no coupon {code} to remove" in out
    status, out = await billing(gateway_url, "coupons", "archive", code)
    assert status == 0 and f"Coupon {code} archived" in out
    status, out = await billing(gateway_url, "coupons", "apply", code, "--organisation", organisation_id)
    assert status == 1 and "archived" in out


async def test_bad_terms_are_one_line_naming_the_option(gateway_url):
    status, out = await billing(gateway_url, "coupons", "create", "--code", "BAD", "--name", "Bad",
                                "--percent-off", "120", "--duration", "once")
    assert status == 1 and "percent_off" in out and "at most 100" in out


async def test_a_quote_with_a_discount(gateway_url, tmp_path):
    charge = tmp_path / "charge.json"
    charge.write_text(json.dumps({"model": "per_unit", "unit_price": "0.05"}))
    status, out = await billing(gateway_url, "quote", "--currency", "INR", "--charge", str(charge), "--quantity",
                                "12345", "--percent-off", "15")
    assert status == 0, out
    assert "discount" in out and "-92.59" in out and "524.66" in out
